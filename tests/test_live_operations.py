"""
The node side of the dashboard's commands (livenode/operations.py) on a real engine: a running
MACross takes new periods (its new averages warmed from the cached 5-minute bars, hand-checked),
refuses bad values naming the field, pauses and resumes; changes persist for the next start.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.engine import BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import OmsType
from nautilus_trader.model.objects import Money

from catalog.instruments import BACKTEST_VENUE
from catalog.instruments import make_instrument
from livenode.control import validate_command
from livenode.operations import CommandRefused
from livenode.operations import Operations
from strategies.ma_cross import MACross
from strategies.ma_cross import MACrossConfig
from tests.risk_support import minute_bars

# 60 minutes -> twelve 5-minute bars closing at 100, 101, ..., 111 (each bar's last minute).
CLOSES = [100.0 + i // 5 for i in range(60)]


@pytest.fixture
def running(tmp_path: Path) -> tuple[BacktestEngine, MACross, Operations]:
    instrument = make_instrument("SPY")
    engine = BacktestEngine(BacktestEngineConfig(
        trader_id="TESTER-001", logging=LoggingConfig(log_level="ERROR", bypass_logging=True)))
    engine.add_venue(venue=BACKTEST_VENUE, oms_type=OmsType.NETTING, account_type=AccountType.CASH,
                     base_currency=USD, starting_balances=[Money(Decimal(100000), USD)])
    engine.add_instrument(instrument)
    engine.add_data(minute_bars(instrument, CLOSES, "2024-03-05 09:30"))
    strategy = MACross(MACrossConfig(
        instrument_id=instrument.id,
        bar_type=BarType.from_str(f"{instrument.id}-5-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL"),
        fast_period=3, slow_period=6, regular_hours_only=False,
    ))
    engine.add_strategy(strategy)
    engine.run()
    operations = Operations(engine.kernel, tmp_path, [f"{instrument.id}-1-MINUTE-LAST-EXTERNAL"])
    yield engine, strategy, operations
    engine.dispose()


def command(**fields: object):
    return validate_command({"actor": "tester", "sent_at": 1.0, "expires_s": 60, **fields})


def ema(values: list[float], period: int) -> float:
    alpha = 2 / (period + 1)
    value = values[0]
    for x in values[1:]:
        value = alpha * x + (1 - alpha) * value
    return value


def test_new_periods_take_effect_warmed_from_the_cached_bars(running, tmp_path: Path) -> None:
    engine, strategy, operations = running
    assert str(strategy.fast) == "ExponentialMovingAverage(3)"
    detail = operations.apply(command(command="set_parameters", strategy="MACross-000",
                                      parameters={"fast_period": 2, "slow_period": 4}))
    assert detail == "set MACross-000 fast_period=2, slow_period=4"
    assert (str(strategy.fast), str(strategy.slow)) == ("ExponentialMovingAverage(2)", "ExponentialMovingAverage(4)")
    assert strategy.params.fast_period == 2 and strategy.config.fast_period == 3  # config stays frozen
    closes = [100.0 + i for i in range(12)]  # the twelve cached 5-minute closes, oldest first
    assert strategy.fast.initialized and strategy.fast.value == pytest.approx(ema(closes, 2))
    assert strategy.slow.value == pytest.approx(ema(closes, 4))
    assert json.loads((tmp_path / "parameters.json").read_text()) == {
        "MACross-000": {"fast_period": 2, "slow_period": 4},
    }
    snap = operations.snapshot()
    [entry] = snap["strategies"]
    assert entry["parameters"]["fast_period"] == 2
    assert entry["indicators_in_use"]["fast"] == "ExponentialMovingAverage(2)"
    assert entry["schema"]["fast_period"] == {"type": "integer", "exclusiveMinimum": 0}


@pytest.mark.parametrize(("parameters", "message"), [
    ({"fast_period": 9}, "parameters.fast_period: fast_period must be less than slow_period, got 9 >= 6"),
    ({"fast_period": 0}, "parameters.fast_period: Expected `int` >= 1"),
    ({"average": "MEDIAN"}, "parameters.average: average must be one of SIMPLE, EXPONENTIAL"),
    ({"bar_type": "x"}, "parameters.bar_type: not a parameter MACross-000 can change while it runs"),
])
def test_bad_values_are_refused_naming_the_field(running, parameters: dict, message: str) -> None:
    _, strategy, operations = running
    with pytest.raises(CommandRefused) as refused:
        operations.apply(command(command="set_parameters", strategy="MACross-000", parameters=parameters))
    assert str(refused.value).startswith(message)
    assert strategy.params.fast_period == 3 and str(strategy.fast) == "ExponentialMovingAverage(3)"


def test_pause_and_resume_need_the_gate_and_name_the_strategy(running) -> None:
    _, strategy, operations = running
    with pytest.raises(CommandRefused, match="strategy: this node has no pre-trade gate"):
        operations.apply(command(command="pause_strategy", strategy="MACross-000"))
    with pytest.raises(CommandRefused, match="strategy: no strategy 'Nope' in this node; its strategies are MACross-000"):
        operations.apply(command(command="pause_strategy", strategy="Nope"))


def test_persisted_parameters_are_restored(running, tmp_path: Path) -> None:
    _, strategy, operations = running
    (tmp_path / "parameters.json").write_text(json.dumps({"MACross-000": {"position_fraction": 0.5},
                                                          "MACross-OTHER": {"fast_period": 1}}))
    assert operations.restore_parameters() == ["MACross-000: {'position_fraction': 0.5}"]
    assert strategy.params.position_fraction == 0.5


def test_a_paused_strategy_sends_no_new_exposure_and_its_exits_pass(tmp_path: Path) -> None:
    """
    AlwaysBuy buys 10 shares on its first bar, 1 on every later bar, and sells 5 on bar 15.
    Paused after bar 10: bars 11-20 give nine buys the gate denies (strategy_paused) and the
    sell, an exit, which fills; resumed, bars 21-30 buy again (ten fills).
    """
    from config.risk import RiskConfig
    from tests.risk_support import build_engine

    instrument = make_instrument("SPY")
    bars = minute_bars(instrument, [100.0] * 30, "2024-03-05 09:30")
    engine, gate, strategy = build_engine(
        bars[:10], RiskConfig(symbol_cap_pct=Decimal(100), min_volume_threshold=Decimal(0)),
        strategy_config={"first_quantity": 10, "each_quantity": 1, "sell_on_bar": 15, "sell_quantity": 5},
    )
    engine.run(streaming=True)
    operations = Operations(engine.kernel, tmp_path, [str(bars[0].bar_type)])
    sid = str(strategy.id)
    assert [o.status_string() for o in engine.cache.orders(strategy_id=strategy.id)] == ["FILLED"] * 10
    assert operations.apply(command(command="pause_strategy", strategy=sid)).startswith(f"paused {sid}")
    assert gate.snapshot()["paused_strategies"] == {sid: "operator:tester: operator"}
    assert operations.snapshot()["strategies"][0]["state"] == "PAUSED"
    with pytest.raises(CommandRefused, match="is already paused"):
        operations.apply(command(command="pause_strategy", strategy=sid))

    def orders_after(n: int) -> list[tuple[str, str]]:
        ordered = sorted(engine.cache.orders(strategy_id=strategy.id), key=lambda o: o.ts_init)
        return [(o.side_string(), o.status_string()) for o in ordered[n:]]

    engine.clear_data()
    engine.add_data(bars[10:20])
    engine.run(streaming=True)
    during = orders_after(10)
    assert during == [("BUY", "DENIED")] * 4 + [("SELL", "FILLED")] + [("BUY", "DENIED")] * 5
    assert {r.rule for _, _, r in list(gate.refusals)[-9:]} == {"strategy_paused"}
    operations.apply(command(command="resume_strategy", strategy=sid))
    assert gate.snapshot()["paused_strategies"] == {}
    engine.clear_data()
    engine.add_data(bars[20:])
    engine.run(streaming=True)
    engine.end()
    assert orders_after(20) == [("BUY", "FILLED")] * 10
    engine.dispose()


def test_a_new_rsi_threshold_is_used_by_the_running_core_strategy(tmp_path: Path) -> None:
    """
    Closes 100, 102, 101, 102 give RSI(2) 100, 50, 75 (tests/test_core_rsi.py): never below
    the default buy_rsi 30, so no signal. Raised to 60 after the second bar, the running
    strategy sees 50 (below: armed) then 75 (above: the cross) and buys at 102.
    """
    from catalog.store import bars_from_frame
    from strategies.core_rsi import CoreRSI
    from strategies.core_rsi import CoreRSIConfig
    from tests.engine_harness import make_engine
    from tests.scenario import MINUTE_BARS
    from tests.scenario import SPY
    from tests.scenario import bars_frame

    rows = [(f"2024-04-01 14:0{m}", c) for m, c in enumerate([100, 102, 101, 102])]
    engine, _ = make_engine(bars_frame(rows[:2]))
    strategy = CoreRSI(CoreRSIConfig(instrument_id=SPY, bar_type=MINUTE_BARS, rsi_period=2,
                                     fixed_bankroll=Decimal("100000")))
    engine.add_strategy(strategy)
    engine.run(streaming=True)
    operations = Operations(engine.kernel, tmp_path, [str(MINUTE_BARS)])
    with pytest.raises(CommandRefused, match="parameters.buy_rsi: buy_rsi is on the 0-100 RSI scale, got 160"):
        operations.apply(command(command="set_parameters", strategy=str(strategy.id),
                                 parameters={"buy_rsi": 160}))
    operations.apply(command(command="set_parameters", strategy=str(strategy.id),
                             parameters={"buy_rsi": 60.0}))
    assert strategy.signals.buy_cross.level == 60.0 and strategy.params.buy_rsi == 60.0
    engine.clear_data()
    engine.add_data(bars_from_frame(engine.cache.instrument(SPY), MINUTE_BARS, bars_frame(rows)[2:]))
    engine.run(streaming=True)
    engine.end()
    assert [pd_ts.isoformat() for pd_ts in map(_utc, strategy.record.buy_signals)] == [
        "2024-04-01T14:03:00+00:00",
    ]
    fills = [(o.side_string(), str(o.filled_qty), str(o.avg_px)) for o in engine.cache.orders() if o.filled_qty.as_decimal() > 0]
    assert fills == [("BUY", "9", "102.0")]  # 1% of 100,000 at 102: 9 shares
    snap = operations.snapshot()
    assert snap["strategies"][0]["parameters"]["buy_rsi"] == 60.0
    assert snap["strategies"][0]["indicators_in_use"] == {"buy_rsi": "60.0", "exit_rsi": "75.0"}
    # One core-building lot: 9 shares at 102 (1% of 100,000), its target not reached yet.
    assert snap["strategies"][0]["progress"] == {
        "core_pct_of_target": 0.0, "cycles": "1/20", "core-building_lots": 1, "core_lots": 0,
        "trading_lots": 0,
    }
    engine.dispose()


def _utc(ts_ns: int):
    import pandas as pd

    return pd.Timestamp(ts_ns, tz="UTC")
