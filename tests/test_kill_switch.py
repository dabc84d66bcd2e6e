"""The kill switch in hand-built backtests: a crash day, the next session, manual reset, reduce-only."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D

import pandas as pd
import pytest
from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import TradingState

from actors.kill_switch import KillSwitch
from actors.kill_switch import KillSwitchConfig
from actors.kill_switch import KillSwitchState
from catalog.instruments import make_instrument
from catalog.store import bar_type_for
from config.risk import RiskConfig
from tests.risk_support import build_engine
from tests.risk_support import minute_bars

PERMISSIVE = dict(
    symbol_cap_pct=D(100), max_risk_per_trade_pct=D(100), max_open_risk_pct=D(100),
    min_volume_threshold=D(0),
)
CRASH_CLOSES = [100.0] * 5 + [96.0, 94.0, 92.0, 91.0, 90.0, 89.0, 88.0]
INSTRUMENT = make_instrument("SPY")
BAR_TYPE = bar_type_for(INSTRUMENT.id, "1min")


def run_scenario(bars, risk: RiskConfig, event_log=None, state_path=None, **strategy):
    kill_switch = KillSwitch(KillSwitchConfig(risk=risk, bar_types=[BAR_TYPE], event_log=event_log,
                                              state_path=state_path))
    engine, gate, strat = build_engine(bars, risk, strategy_config=strategy, extra_actors=[kill_switch])
    engine.run()
    return engine, gate, strat, kill_switch


def ts(local: str) -> int:
    return pd.Timestamp(local, tz="America/New_York").value


def test_crash_day_halts_on_the_crossing_bar_cancels_and_flattens(tmp_path):
    # Bar 1 buys 800 at 100, bars 2-7 buy 1 share each at their closes.
    # Bar 7 (09:37, close 94): cash 100,000 - 80,000 - 400 - 96 = 19,504; 805 x 94 = 75,670;
    #   equity 95,174, a 4.826% loss: below the 5% limit.
    # Bar 8 (09:38, close 92): cash 19,410 (bar 7's share filled at 94); 806 x 92 = 74,152;
    #   equity 93,562, a 6.438% loss: the halt.
    risk = RiskConfig(**PERMISSIVE)
    bars = minute_bars(INSTRUMENT, CRASH_CLOSES, "2024-03-05 09:31")
    log = tmp_path / "kill_switch.jsonl"
    engine, gate, strategy, kill_switch = run_scenario(
        bars, risk, event_log=str(log), first_quantity=800, resting_limit_price="50.00",
    )
    halt_ts = ts("2024-03-05 09:38")
    [event] = kill_switch.events
    assert (event.ts_ns, event.action, event.equity, event.loss_pct) == (halt_ts, "HALT", "93562.00", "6.44")
    assert json.loads(log.read_text())["reason"] == (
        "day loss 6.44% (equity 93562.00 vs session start 100000.00) reached DAILY_LOSS_LIMIT 5%"
    )

    orders = engine.cache.orders()
    resting = [o for o in orders if o.has_price]
    assert [(o.status, o.ts_last) for o in resting] == [(OrderStatus.CANCELED, halt_ts)]
    exits = [o for o in orders if o.side == OrderSide.SELL]
    assert [(o.quantity.as_decimal(), o.status, o.tags) for o in exits] == [(D(806), OrderStatus.FILLED, ["risk-exit", "exit:kill_switch"])]
    assert engine.portfolio.is_flat(INSTRUMENT.id)
    # The exit filled at the crash bar's close: the account ends at exactly the halt equity.
    assert engine.portfolio.account(INSTRUMENT.id.venue).balance_total().as_decimal() == D("93562.00")

    buy_fills = [f for f in engine.cache.orders() if f.side == OrderSide.BUY and f.status == OrderStatus.FILLED]
    assert max(o.ts_last for o in buy_fills) < halt_ts  # nothing bought on or after the halt bar
    # The buys from the halt bar on (09:38 .. 09:42) were all denied, naming the kill switch.
    assert len(strategy.denied) == 5
    assert all(str(d.reason).startswith("PreTradeGate trading_halted: trading is HALTED (kill_switch: day loss 6.44%")
               for d in strategy.denied)

    # The Nautilus engine itself is HALTED: an order sent straight to its RiskEngine, past the
    # gate, is denied by Nautilus.
    risk_engine = engine.kernel.risk_engine
    assert risk_engine.trading_state == TradingState.HALTED
    order = strategy.order_factory.market(INSTRUMENT.id, OrderSide.BUY, INSTRUMENT.make_qty(1))
    risk_engine.execute(SubmitOrder(strategy.trader_id, strategy.id, order, order.init_id, strategy.clock.timestamp_ns()))
    assert order.status == OrderStatus.DENIED
    assert engine.cache.order(order.client_order_id).last_event.reason == "TradingState.HALTED"

    snapshot = gate.snapshot()
    assert snapshot["trading_state"] == "HALTED" and snapshot["engine_trading_state"] == "HALTED"
    assert snapshot["holds"] == {"kill_switch": {"action": "HALT", "reason": event.reason}}
    assert [r["rule"] for r in snapshot["recent_refusals"]] == ["trading_halted"] * 5


def _two_days(day1: list[float], day2: list[float]):
    return (minute_bars(INSTRUMENT, day1, "2024-03-05 09:31")
            + minute_bars(INSTRUMENT, day2, "2024-03-06 09:31"))


def test_a_halt_lifts_at_the_next_session():
    risk = RiskConfig(**PERMISSIVE)
    engine, gate, strategy, kill_switch = run_scenario(_two_days(CRASH_CLOSES, [88.0] * 3), risk, first_quantity=800)
    assert [e.action for e in kill_switch.events] == ["HALT", "RESUME"]
    assert kill_switch.events[1].ts_ns == ts("2024-03-06 09:31")
    assert engine.kernel.risk_engine.trading_state == TradingState.ACTIVE
    day2_buys = [o for o in engine.cache.orders()
                 if o.side == OrderSide.BUY and o.status == OrderStatus.FILLED and o.ts_last >= ts("2024-03-06 09:31")]
    assert len(day2_buys) == 3


def test_a_manual_halt_waits_for_the_reset():
    risk = RiskConfig(resume_next_session=False, **PERMISSIVE)
    engine, gate, strategy, kill_switch = run_scenario(_two_days(CRASH_CLOSES, [88.0] * 3), risk, first_quantity=800)
    assert [e.action for e in kill_switch.events] == ["HALT"]
    assert engine.kernel.risk_engine.trading_state == TradingState.HALTED
    assert len(strategy.denied) == 5 + 3
    kill_switch.reset("operator checked the book")
    assert engine.kernel.risk_engine.trading_state == TradingState.ACTIVE
    assert kill_switch.events[-1].action == "RESUME" and kill_switch.events[-1].reason == "operator checked the book"


def test_a_drawdown_from_the_peak_switches_to_reduce_only():
    # Bar 1 buys 500 at 100, bars 2-4 one share each (fills at 102, 104, 101).
    # Bar 3 (close 104): cash 100,000 - 50,000 - 102 = 49,898; 501 x 104 = 52,104: peak 102,002.
    # Bar 5 (close 99.9): cash 49,693; 503 x 99.9 = 50,249.7: equity 99,942.70, a 2.019%
    #   drawdown from the peak -> REDUCING at the 2% limit (the day loss is only 0.06%).
    # The buys on bars 5, 6 and 8 are refused; the sell on bar 7 reduces the position and passes.
    risk = RiskConfig(max_drawdown_pct=D(2), **PERMISSIVE)
    closes = [100.0, 102.0, 104.0, 101.0, 99.9, 99.5, 99.0, 99.0]
    engine, gate, strategy, kill_switch = run_scenario(
        minute_bars(INSTRUMENT, closes, "2024-03-05 09:31"), risk,
        first_quantity=500, sell_on_bar=7, sell_quantity=200,
    )
    [event] = kill_switch.events
    assert (event.ts_ns, event.action, event.equity, event.reference_equity, event.loss_pct) == (
        ts("2024-03-05 09:35"), "REDUCE", "99942.70", "102002.00", "2.02",
    )
    assert engine.kernel.risk_engine.trading_state == TradingState.REDUCING
    assert [d.ts_init for d in strategy.denied] == [ts("2024-03-05 09:35"), ts("2024-03-05 09:36"), ts("2024-03-05 09:38")]
    assert all("trading_halted: trading is REDUCING (reduce-only: kill_switch: drawdown 2.02%" in str(d.reason)
               for d in strategy.denied)
    sells = [o for o in engine.cache.orders() if o.side == OrderSide.SELL]
    assert [(o.quantity.as_decimal(), o.status) for o in sells] == [(D(200), OrderStatus.FILLED)]
    assert engine.portfolio.net_position(INSTRUMENT.id) == D(303)


# -- a restart in the middle of a session (live: KillSwitchConfig.state_path) ----------------


def saved(path, **fields) -> None:
    state = dict(session_date=dt.date(2024, 3, 5), session_start_equity=D("105000"),
                 peak_equity=D("105000"), halted=False, reducing=False, reason="") | fields
    path.write_text(KillSwitchState(**state).to_json())


def test_a_restart_keeps_the_sessions_start_equity(tmp_path):
    # Before the restart the account was worth 105,000 at the session's start; it restarts at
    # 100,000 (a 4.76% loss already taken). Bar 1 buys 800 at 100, bars 2-5 one share each.
    # Bar 5 (09:35, close 100): cash 19,700, 803 x 100: equity 100,000, a 4.76% day loss.
    # Bar 6 (09:36, close 96): cash 19,600, 804 x 96 = 77,184: equity 96,784, 7.82% of
    #   105,000: the halt, two bars before a switch that forgot the morning would halt (09:38).
    state = tmp_path / "kill_switch.json"
    saved(state)
    risk = RiskConfig(**PERMISSIVE)
    bars = minute_bars(INSTRUMENT, CRASH_CLOSES, "2024-03-05 09:31")
    _, _, _, kill_switch = run_scenario(bars, risk, state_path=str(state), first_quantity=800)
    [event] = kill_switch.events
    assert (event.ts_ns, event.action, event.equity, event.reference_equity, event.loss_pct) == (
        ts("2024-03-05 09:36"), "HALT", "96784.00", "105000.00", "7.82",
    )
    # the file now holds the halt, for the next restart
    after = KillSwitchState.read(state)
    assert (after.session_date, after.session_start_equity, after.halted) == (
        dt.date(2024, 3, 5), D("105000"), True,
    )
    assert after.reason == event.reason


def test_a_halt_survives_a_restart_in_the_same_session(tmp_path):
    state = tmp_path / "kill_switch.json"
    saved(state, halted=True, reason="day loss 5.10% (...) reached DAILY_LOSS_LIMIT 5%")
    risk = RiskConfig(**PERMISSIVE)
    bars = minute_bars(INSTRUMENT, [100.0] * 3, "2024-03-05 10:00")
    engine, gate, strategy, kill_switch = run_scenario(bars, risk, state_path=str(state))
    assert engine.kernel.risk_engine.trading_state == TradingState.HALTED
    assert len(strategy.denied) == 3 and engine.cache.orders_open() == []
    assert all("restored after a restart: day loss 5.10%" in str(d.reason) for d in strategy.denied)
    assert kill_switch.events == []


def test_a_halt_saved_yesterday_lifts_at_todays_session(tmp_path):
    state = tmp_path / "kill_switch.json"
    saved(state, session_date=dt.date(2024, 3, 4), halted=True, reason="day loss 6.00%")
    risk = RiskConfig(**PERMISSIVE)
    bars = minute_bars(INSTRUMENT, [100.0] * 3, "2024-03-05 09:31")
    engine, _, strategy, kill_switch = run_scenario(bars, risk, state_path=str(state))
    assert [(e.action, e.ts_ns) for e in kill_switch.events] == [("RESUME", ts("2024-03-05 09:31"))]
    assert engine.kernel.risk_engine.trading_state == TradingState.ACTIVE
    assert strategy.denied == []
    after = KillSwitchState.read(state)
    assert (after.session_date, after.session_start_equity, after.halted) == (
        dt.date(2024, 3, 5), D("100000"), False,
    )


@pytest.mark.parametrize(("text", "message"), [
    ("{", "kill switch state is not JSON"),
    ('{"session_date": "2024-03-05"}', "key 'session_start_equity': missing"),
    ('{"session_date": "5.3.2024", "session_start_equity": "1"}', "key 'session_date': Invalid"),
    ('{"session_date": null, "session_start_equity": "lots", "peak_equity": null}',
     "key 'session_start_equity'"),
    ('{"session_date": null, "session_start_equity": null, "peak_equity": null, '
     '"halted": "no", "reducing": false, "reason": ""}',
     "key 'halted': expected true or false, got 'no'"),
])
def test_a_damaged_state_file_is_refused_by_name(tmp_path, text, message):
    state = tmp_path / "kill_switch.json"
    state.write_text(text)
    with pytest.raises(ValueError) as caught:
        KillSwitchState.read(state)
    assert str(caught.value).startswith(f"{state}: ")
    assert message in str(caught.value)
