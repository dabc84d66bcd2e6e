"""The error handler: classification, the backoff schedule, the JSON log, the critical limit."""

from __future__ import annotations

import json
import socket
from decimal import Decimal as D

import pytest
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import TradingState

from actors.error_monitor import REPORT_ENDPOINT
from actors.error_monitor import ErrorMonitor
from actors.error_monitor import ErrorMonitorConfig
from actors.error_monitor import ErrorReport
from catalog.instruments import make_instrument
from config.risk import RiskConfig
from risk.errors import BrokerError
from risk.errors import ConfigError
from risk.errors import ErrorCategory
from risk.errors import ErrorHandler
from risk.errors import classify
from risk.errors import is_transient
from tests.risk_support import build_engine
from tests.risk_support import minute_bars

NOW_NS = 1_709_649_060_000_000_000  # 2024-03-05 14:31 UTC


def handler(tmp_path, **kwargs) -> ErrorHandler:
    defaults = dict(
        log_path=tmp_path / "unresolved_orders.log", retry_limit=3, critical_limit=3,
        now_ns=lambda: NOW_NS,
    )
    defaults.update(kwargs)
    return ErrorHandler(**defaults)


def read_log(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(("error", "category", "transient"), [
    (ConnectionResetError("peer reset"), ErrorCategory.NETWORK, True),
    (TimeoutError("no reply in 10s"), ErrorCategory.NETWORK, True),
    (socket.gaierror("name resolution"), ErrorCategory.NETWORK, True),
    (BrokerError("pacing violation", code=420, transient=True), ErrorCategory.BROKER, True),
    (BrokerError("order rejected: no permissions", code=201), ErrorCategory.BROKER, False),
    (ConfigError("IB_PORT: not a number"), ErrorCategory.CONFIG, False),
    (ZeroDivisionError("division by zero"), ErrorCategory.LOGIC, False),
])
def test_classification(error, category, transient):
    assert classify(error) == category
    assert is_transient(error) is transient


def test_the_json_line_of_an_unresolved_error(tmp_path):
    errors = handler(tmp_path)

    def broken():
        raise ZeroDivisionError("division by zero")

    try:
        broken()
    except ZeroDivisionError as exc:
        errors.report(exc, {"strategy_id": "MACross-SPY", "instrument_id": "SPY.SIM"})
    [record] = read_log(errors.log_path)
    assert record["ts"] == "2024-03-05T14:31:00+00:00"
    assert {k: record[k] for k in ("kind", "category", "severity", "transient", "attempts", "message", "exception")} == {
        "kind": "error", "category": "logic", "severity": "critical", "transient": False,
        "attempts": 1, "message": "division by zero", "exception": "ZeroDivisionError",
    }
    assert record["context"] == {"strategy_id": "MACross-SPY", "instrument_id": "SPY.SIM"}
    assert record["traceback"].startswith("Traceback (most recent call last):")
    assert "in broken" in record["traceback"] and record["traceback"].rstrip().endswith("ZeroDivisionError: division by zero")


def test_critical_errors_alert_and_the_limit_fires_once(tmp_path):
    alerts, limits = [], []
    errors = handler(tmp_path, on_critical=alerts.append, on_limit=limits.append)
    errors.report(BrokerError("pacing", transient=True), {})  # transient, not exhausted: error
    errors.report(ConfigError("bad"), {})
    errors.report(BrokerError("no permissions", code=201), {})
    assert limits == []
    errors.report(TimeoutError("gone"), {}, attempts=4)  # retries exhausted: critical
    errors.report(ValueError("again"), {})
    assert [a["category"] for a in alerts] == ["config", "broker", "network", "logic"]
    assert limits == [3]
    severities = [r["severity"] for r in read_log(errors.log_path)]
    assert severities == ["error", "critical", "critical", "critical", "critical"]
    assert read_log(errors.log_path)[2]["broker_code"] == 201


def _monitor_engine(tmp_path, bars, risk, strategy_config):
    monitor = ErrorMonitor(ErrorMonitorConfig(risk=risk, log_path=str(tmp_path / "unresolved_orders.log")))
    engine, gate, strategy = build_engine(bars, risk, strategy_config=strategy_config, extra_actors=[monitor])
    return engine, monitor, strategy


PERMISSIVE = RiskConfig(symbol_cap_pct=D(100), max_risk_per_trade_pct=D(100), max_open_risk_pct=D(100),
                        min_volume_threshold=D(0), critical_error_limit=2)


def test_rejected_orders_and_partial_fills_land_in_the_log(tmp_path):
    instrument = make_instrument("SPY")
    # Bar volume 40: the venue fills a limit for 80 in pieces of 10 (the bar's four prices
    # each carry a quarter of its volume): partial fills. A post-only limit at the close
    # would take liquidity: the venue rejects it.
    bars = minute_bars(instrument, [100.0] * 3, "2024-03-05 09:31", volume=40)
    engine, monitor, strategy = _monitor_engine(
        tmp_path, bars, PERMISSIVE, {"first_quantity": 80, "limit_at_close": True},
    )
    engine.run()
    records = read_log(tmp_path / "unresolved_orders.log")
    partials = [r for r in records if r["kind"] == "partial_fill"]
    assert [(r["message"], r["ts"]) for r in partials] == [
        ("filled 10 of 80", "2024-03-05T14:31:00+00:00"), ("filled 20 of 80", "2024-03-05T14:31:00+00:00"),
        ("filled 30 of 80", "2024-03-05T14:32:00+00:00"), ("filled 40 of 80", "2024-03-05T14:33:00+00:00"),
    ]
    partial = partials[0]
    assert partial["context"]["client_order_id"] == "O-20240305-143100-001-000-1"
    assert partial["context"]["last_qty"] == "10" and partial["context"]["last_px"] == "100.00"

    engine2, monitor2, _ = _monitor_engine(
        tmp_path / "second", minute_bars(instrument, [100.0] * 2, "2024-03-05 09:31"), PERMISSIVE,
        {"first_quantity": 5, "each_quantity": 5, "limit_at_close": True, "post_only": True},
    )
    engine2.run()
    rejected = [r for r in read_log(tmp_path / "second" / "unresolved_orders.log") if r["kind"] == "order_rejected"]
    assert len(rejected) == 2
    assert "POST_ONLY" in rejected[0]["message"].upper()


def test_past_the_critical_limit_trading_halts_and_positions_exit(tmp_path):
    instrument = make_instrument("SPY")
    bars = minute_bars(instrument, [100.0] * 4, "2024-03-05 09:31")
    engine, monitor, strategy = _monitor_engine(tmp_path, bars, PERMISSIVE, {"first_quantity": 50})

    def report_twice(bar):
        # Two logic errors on the second bar, reported as an adapter would; the limit is 2.
        # The strategy's own buy of that bar is still in flight when the halt comes: its fill
        # is closed as it arrives, then the engine halts.
        if strategy.bars == 2:
            for n in range(2):
                monitor.msgbus.send(REPORT_ENDPOINT, ErrorReport(RuntimeError(f"bug {n}"), {"bar": 2}))

    original = strategy.on_bar

    def on_bar(bar):
        original(bar)
        report_twice(bar)

    strategy.on_bar = on_bar
    engine.run()
    assert engine.kernel.risk_engine.trading_state == TradingState.HALTED
    assert engine.portfolio.is_flat(instrument.id)
    assert monitor.handler.critical_count == 2 and monitor.handler.limit_reached
    records = read_log(tmp_path / "unresolved_orders.log")
    assert [(r["message"], r["severity"], r["context"]) for r in records] == [
        ("bug 0", "critical", {"bar": 2}), ("bug 1", "critical", {"bar": 2}),
    ]
    assert len(strategy.denied) == 2  # the buys on bars 3 and 4
    # The exit of the 50 shares held, then of the share whose buy was in flight at the halt.
    exits = [(o.quantity.as_decimal(), o.status, o.tags) for o in engine.cache.orders() if o.side == OrderSide.SELL]
    assert exits == [(D(50), OrderStatus.FILLED, ["risk-exit", "exit:risk_halt"]), (D(1), OrderStatus.FILLED, ["risk-exit", "exit:risk_halt"])]
