"""The gate inside a running engine: strategy orders, execution-algorithm children, the second line."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pandas as pd

import pytest
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.config import RiskEngineConfig
from nautilus_trader.examples.algorithms.twap import TWAPExecAlgorithm
from nautilus_trader.examples.algorithms.twap import TWAPExecAlgorithmConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.identifiers import ClientOrderId

from actors.pre_trade_gate import GateNotInstalledError
from actors.pre_trade_gate import PreTradeGate
from actors.pre_trade_gate import PreTradeGateConfig
from actors.pre_trade_gate import day_trades_from_orders
from catalog.instruments import make_instrument
from catalog.store import bar_type_for
from config.risk import RiskConfig
from tests.risk_support import AlwaysBuy
from tests.risk_support import build_engine
from tests.risk_support import minute_bars

INSTRUMENT = make_instrument("SPY")


def test_a_strategy_order_over_the_symbol_cap_is_denied_with_the_numbers():
    # Default limits: 800 x $100 = $80,000 is 80% of $100,000, over the 10% cap. The later
    # 1-share buys ($100 each, 0.1%) pass.
    bars = minute_bars(INSTRUMENT, [100.0] * 4, "2024-03-05 09:31")
    engine, gate, strategy = build_engine(bars, RiskConfig(), strategy_config={"first_quantity": 800})
    engine.run()
    [denied] = strategy.denied
    assert denied.reason == (
        "PreTradeGate symbol_cap: SPY.SIM would hold $0.00 + $80,000.00 = $80,000.00, 80% of "
        "equity $100,000.00, above the symbol cap 10% ($10,000.00)"
    )
    filled = [o for o in engine.cache.orders() if o.status == OrderStatus.FILLED]
    assert [o.quantity.as_decimal() for o in filled] == [D(1), D(1), D(1)]
    assert [r.rule for _, _, r in gate.refusals] == ["symbol_cap"]


def test_execution_algorithm_children_pass_the_gate():
    # The strategy hands each order to TWAP, which spawns children (ids ending -E1 ...) and
    # finally releases the primary itself for the last slice: every one of them reaches the
    # gate through RiskEngine.execute and is refused here.
    bars = minute_bars(INSTRUMENT, [100.0] * 4, "2024-03-05 09:31")
    engine, gate, strategy = build_engine(
        bars, RiskConfig(disable_all_trades=True),
        strategy_config={"first_quantity": 4, "each_quantity": 2, "exec_algorithm": "TWAP",
                         "exec_algorithm_params": {"horizon_secs": 60, "interval_secs": 30}},
        exec_algorithms=[TWAPExecAlgorithm(TWAPExecAlgorithmConfig())],
    )
    engine.run()
    refused_ids = [order_id for _, order_id, _ in gate.refusals]
    assert refused_ids[:2] == ["O-20240305-143100-001-000-1-E1", "O-20240305-143100-001-000-1"]
    assert {r.rule for _, _, r in gate.refusals} == {"trading_disabled"}
    assert not [o for o in engine.cache.orders() if o.status == OrderStatus.FILLED]


def test_the_nautilus_risk_engine_is_the_second_line():
    # The gate accepts 90 x $100 = $9,000 (9%, under the 10% cap); Nautilus's own
    # max_notional_per_order of $5,000 refuses it behind the gate (a limit order, priced by
    # its own limit; the market order's case is the next test).
    bars = minute_bars(INSTRUMENT, [100.0] * 2, "2024-03-05 09:31")
    engine, gate, strategy = build_engine(
        bars, RiskConfig(), strategy_config={"first_quantity": 90, "limit_at_close": True},
        risk_engine=RiskEngineConfig(max_notional_per_order={"SPY.SIM": 5000}),
    )
    engine.run()
    assert not gate.refusals
    [denied] = strategy.denied
    assert denied.reason == "NOTIONAL_EXCEEDS_MAX_PER_ORDER: max_notional=5000.00 USD, notional=9000.00 USD"


def test_the_second_line_holds_for_market_orders_on_bars_alone():
    # Nautilus prices a MARKET order from the cache's last quote or trade tick; on bars alone
    # it skipped its notional check with a warning, so 90 x $100 at market went through its
    # $5,000 cap. The gate puts each bar's close in the cache as the last trade.
    bars = minute_bars(INSTRUMENT, [100.0] * 2, "2024-03-05 09:31")
    engine, gate, strategy = build_engine(
        bars, RiskConfig(), strategy_config={"first_quantity": 90},
        risk_engine=RiskEngineConfig(max_notional_per_order={"SPY.SIM": 5000}),
    )
    engine.run()
    assert not gate.refusals
    [denied] = strategy.denied
    assert denied.reason == "NOTIONAL_EXCEEDS_MAX_PER_ORDER: max_notional=5000.00 USD, notional=9000.00 USD"
    assert engine.cache.trade_tick(INSTRUMENT.id).price.as_double() == 100.0


def _run_60_then_40_shares_at_100(**strategy_config: str) -> tuple[BacktestEngine, AlwaysBuy]:
    """Two $100 bars: a 60-share entry, then 40-share ones; only the risk-per-trade limit binds."""
    bars = minute_bars(INSTRUMENT, [100.0] * 2, "2024-03-05 09:31")
    risk = RiskConfig(symbol_cap_pct=D(100), max_open_risk_pct=D(100))
    engine, _gate, strategy = build_engine(
        bars, risk, strategy_config={"first_quantity": 60, "each_quantity": 40, **strategy_config},
    )
    engine.run()
    return engine, strategy


def test_orders_carry_their_stop_as_a_tag():
    # 40 shares with stop 50 from 100: risk $2,000 (2%) passes; 60 x 50 = $3,000 (3%) does not.
    engine, strategy = _run_60_then_40_shares_at_100(stop_price="50")
    [denied] = strategy.denied
    assert denied.reason.startswith("PreTradeGate max_risk_per_trade: risk 60 x 50 (stop 50 from 100")
    assert [o.quantity.as_decimal() for o in engine.cache.orders() if o.status == OrderStatus.FILLED] == [D(40)]


def test_a_bracket_is_judged_with_its_stop_loss_child():
    # Bracket entries at 100 with the stop-loss 50 below: 60 shares risk $3,000 (3%, refused,
    # the whole bracket denied); 40 shares risk $2,000 (2%) pass, the children go to work.
    engine, strategy = _run_60_then_40_shares_at_100(bracket_offset="50")
    assert len(strategy.denied) == 3  # entry, stop-loss and take-profit of the first bracket
    assert {d.reason for d in strategy.denied} == {
        "PreTradeGate max_risk_per_trade: risk 60 x 50 (stop 50 from 100) = $3,000.00 is 3% of "
        "equity $100,000.00, above MAX_RISK_PER_TRADE 2.5% ($2,500.00)",
    }
    second = [o for o in engine.cache.orders() if o.status != OrderStatus.DENIED]
    assert sorted((o.order_type.name, o.status.name) for o in second) == [
        ("LIMIT", "ACCEPTED"), ("MARKET", "FILLED"), ("STOP_MARKET", "ACCEPTED"),
    ]


def test_a_gate_that_was_never_installed_refuses_to_start():
    from nautilus_trader.backtest.engine import BacktestEngine
    from nautilus_trader.backtest.engine import BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig

    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(bypass_logging=True)))
    gate = PreTradeGate(PreTradeGateConfig(bar_types=[bar_type_for(INSTRUMENT.id, "1min")]))
    engine.add_actor(gate)
    with pytest.raises(GateNotInstalledError, match="install_risk_layer"):
        gate.on_start()
    engine.dispose()


def test_the_pattern_day_trader_rule_in_a_backtest_and_the_count_rebuilt_from_the_cache():
    # Three sessions of 4, 4 and 2 bars. Days 1 and 2 buy on their first bars and sell 2 shares
    # on their third (bars 3 and 7 of the run): one day trade each. With $20,000 (under
    # $25,000; prices are flat and fees zero) and a limit of 2 day trades in 5 business days,
    # every buy after the second day trade is refused: day 2's last bar and all of day 3.
    bars = (minute_bars(INSTRUMENT, [100.0] * 4, "2024-03-04 09:31")
            + minute_bars(INSTRUMENT, [100.0] * 4, "2024-03-05 09:31")
            + minute_bars(INSTRUMENT, [100.0] * 2, "2024-03-06 09:31"))
    risk = RiskConfig(symbol_cap_pct=D(100), max_open_risk_pct=D(100), pdt_max_day_trades=2)
    engine, gate, strategy = build_engine(
        bars, risk, capital=D("20000"),
        strategy_config={"first_quantity": 5, "sell_on_bars": [3, 7], "sell_quantity": 2},
    )
    engine.run()
    assert gate.day_trades.count(dt.date(2024, 3, 6), 5) == 2
    assert [d.ts_init for d in strategy.denied] == [
        pd.Timestamp(local, tz="America/New_York").value
        for local in ("2024-03-05 09:34", "2024-03-06 09:31", "2024-03-06 09:32")
    ]
    assert {d.reason for d in strategy.denied} == {
        "PreTradeGate pattern_day_trader: equity $20,000.00 is under $25,000.00 and 2 day trades "
        "were made in the last 5 business days (limit 2)",
    }
    # A restarted live node rebuilds the count from the orders its cache restores.
    rebuilt = day_trades_from_orders(engine.cache.orders())
    assert [rebuilt.count(dt.date(2024, 3, d), 5) for d in (4, 5, 6)] == [1, 2, 2]


# -- the entry window (TRADING_START / TRADING_END) ---------------------------------------------


def _window(start: str, end: str, **fields) -> RiskConfig:
    return RiskConfig(trading_start=dt.time.fromisoformat(start), trading_end=dt.time.fromisoformat(end), **fields)


def _ny(local: str) -> int:
    return pd.Timestamp(local, tz="America/New_York").value


def test_entries_start_at_trading_start_in_exchange_time_across_the_dst_change():
    # Friday 2024-03-08 is EST (UTC-5), Monday 2024-03-11 EDT (UTC-4): 09:29 and 09:30 New York
    # are 14:29 / 14:30 UTC on the first day and 13:29 / 13:30 UTC on the second. A window kept
    # in UTC (14:30) would refuse Monday's 13:30 UTC buy; the gate takes it.
    bars = (minute_bars(INSTRUMENT, [100.0] * 2, "2024-03-08 09:29")
            + minute_bars(INSTRUMENT, [100.0] * 2, "2024-03-11 09:29"))
    engine, gate, strategy = build_engine(bars, _window("09:30", "16:00"), strategy_config={"first_quantity": 1})
    engine.run()
    assert [d.ts_init for d in strategy.denied] == [
        pd.Timestamp("2024-03-08 14:29", tz="UTC").value, pd.Timestamp("2024-03-11 13:29", tz="UTC").value,
    ]
    assert [d.reason for d in strategy.denied] == [
        f"PreTradeGate trading_window: entry at 09:29 ET is before TRADING_START 09:30 (session "
        f"{day} opens 09:30, window starts 09:30)" for day in ("2024-03-08", "2024-03-11")
    ]
    filled = [o.ts_last for o in engine.cache.orders() if o.status == OrderStatus.FILLED]
    assert filled == [pd.Timestamp("2024-03-08 14:30", tz="UTC").value, pd.Timestamp("2024-03-11 13:30", tz="UTC").value]


def test_an_entry_after_trading_end_is_refused_and_an_exit_passes_and_is_journaled(tmp_path):
    # Window 09:30-15:45. Buys at 15:44 and 15:45 (the end is inclusive) fill; the buy at 15:46
    # is refused; the sale of 2 held shares at 15:47, outside the window, is an exit and fills.
    from actors.journal import Journal
    from actors.journal import JournalConfig
    from actors.journal_store import JournalStore

    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    journal = Journal(JournalConfig(mode="backtest", database_url=url, records_dir=str(tmp_path), run_id="window"))
    bars = minute_bars(INSTRUMENT, [100.0] * 4, "2024-03-05 15:44")
    engine, gate, strategy = build_engine(
        bars, _window("09:30", "15:45"), extra_actors=[journal],
        strategy_config={"first_quantity": 5, "sell_on_bars": [4], "sell_quantity": 2},
    )
    engine.run()
    reason = ("trading_window: entry at 15:46 ET is after TRADING_END 15:45 (session 2024-03-05 "
              "closes 16:00, window ends 15:45)")
    [denied] = strategy.denied
    assert (denied.ts_init, denied.reason) == (_ny("2024-03-05 15:46"), f"PreTradeGate {reason}")
    filled = [(o.side.name, o.quantity.as_decimal(), o.ts_last) for o in engine.cache.orders()
              if o.status == OrderStatus.FILLED]
    assert filled == [("BUY", D(5), _ny("2024-03-05 15:44")), ("BUY", D(1), _ny("2024-03-05 15:45")),
                      ("SELL", D(2), _ny("2024-03-05 15:47"))]
    assert [str(r) for _, _, r in gate.refusals] == [reason]
    engine.dispose()  # the journal writes its records as the engine stops
    store = JournalStore(url)
    refusals = [r["detail"] for r in store.rows("risk_events", "window") if r["kind"] == "refusal"]
    store.close()
    assert len(refusals) == 1 and refusals[0].endswith(f": PreTradeGate {reason}")


def test_the_window_ends_at_an_early_close_and_days_without_a_session_take_no_entries():
    # Thanksgiving 2024-11-28 has no session; Friday 2024-11-29 closes at 13:00, so a
    # 09:30-15:45 window ends at 13:00 there: 12:59 and 13:00 fill, 13:01 is refused.
    bars = (minute_bars(INSTRUMENT, [100.0], "2024-11-28 10:00")
            + minute_bars(INSTRUMENT, [100.0] * 3, "2024-11-29 12:59"))
    engine, gate, strategy = build_engine(bars, _window("09:30", "15:45"), strategy_config={"first_quantity": 1})
    engine.run()
    assert [(d.ts_init, d.reason) for d in strategy.denied] == [
        (_ny("2024-11-28 10:00"), "PreTradeGate trading_window: entry at 10:00 ET on 2024-11-28 "
                                  "(Thursday): no NYSE session that day"),
        (_ny("2024-11-29 13:01"), "PreTradeGate trading_window: entry at 13:01 ET is after TRADING_END "
                                  "15:45 (session 2024-11-29 closes 13:00, window ends 13:00)"),
    ]
    filled = [o.ts_last for o in engine.cache.orders() if o.status == OrderStatus.FILLED]
    assert filled == [_ny("2024-11-29 12:59"), _ny("2024-11-29 13:00")]


def test_a_replay_judges_the_window_on_the_datas_time_not_the_clock():
    # A live replay's clock runs ahead of its data. Here each bar reaches the node (ts_init,
    # the clock) two minutes after it happened (ts_event): 09:29 and 09:30 New York data seen
    # at 09:31 and 09:32. On the clock both buys are inside the window; on the data's time, as
    # a replay gate judges, the 09:29 one is refused.
    late = 2 * 60 * 1_000_000_000
    bars = [Bar(b.bar_type, b.open, b.high, b.low, b.close, b.volume, b.ts_event, b.ts_init + late)
            for b in minute_bars(INSTRUMENT, [100.0] * 2, "2024-03-05 09:29")]
    for on_data, refused in ((False, []), (True, [_ny("2024-03-05 09:31")])):
        engine, gate, strategy = build_engine(bars, _window("09:30", "16:00"), window_on_data_time=on_data,
                                              strategy_config={"first_quantity": 1})
        engine.run()
        assert [d.ts_init for d in strategy.denied] == refused
        engine.dispose()
    assert strategy.denied[0].reason.startswith("PreTradeGate trading_window: entry at 09:29 ET is before")


def test_without_a_window_the_gate_takes_entries_at_any_hour():
    # RiskConfig's default (backtests): no window, so an 18:00 buy passes the gate.
    bars = minute_bars(INSTRUMENT, [100.0], "2024-03-05 18:00")
    engine, gate, strategy = build_engine(bars, RiskConfig(), strategy_config={"first_quantity": 1})
    engine.run()
    assert not strategy.denied and not gate.refusals


def test_a_bid_chaser_buy_denied_as_it_is_placed_ends_and_the_next_one_works():
    # The strategy's first order goes to the bid chaser at 09:29, outside the window: the gate
    # denies its child inside submit_order, before Nautilus has subscribed the algorithm to
    # the strategy's order events. The chaser still ends the sequence and closes the primary
    # (CANCELED, not left open for ever); the 09:30 order's child is accepted and fills at once
    # (its limit is that bar's close, the fallback bid).
    from strategies.bid_chaser import BidChaser
    from strategies.bid_chaser import BidChaserConfig

    bars = minute_bars(INSTRUMENT, [100.0] * 2, "2024-03-05 09:29")
    chaser = BidChaser(BidChaserConfig())
    engine, gate, strategy = build_engine(
        bars, _window("09:30", "16:00"), exec_algorithms=[chaser],
        strategy_config={"first_quantity": 1, "limit_at_close": True, "exec_algorithm": "BidChaser",
                         "exec_algorithm_params": {"mode": "chase", "fallback_bar_type": str(bars[0].bar_type)}},
    )
    engine.run()
    [denied] = strategy.denied
    assert denied.reason.startswith("PreTradeGate trading_window: entry at 09:29 ET is before TRADING_START")
    first_primary = engine.cache.order(ClientOrderId(denied.client_order_id.value.removesuffix("-E1")))
    assert first_primary.status == OrderStatus.CANCELED
    children = [o for o in engine.cache.orders() if o.exec_spawn_id not in (None, o.client_order_id)]
    assert sorted((o.client_order_id.value, o.status.name, o.ts_last) for o in children) == [
        ("O-20240305-142900-001-000-1-E1", "DENIED", _ny("2024-03-05 09:29")),
        ("O-20240305-143000-001-000-2-E1", "FILLED", _ny("2024-03-05 09:30")),
    ]
