"""
One vocabulary of exit reasons (strategies.records.ExitReason): how tags read back, and that
the backtest's round trips (trades.csv, the report) show the same label the journal does.
The per-strategy checks sit with each strategy's tests (their exit orders' tags).
"""

from __future__ import annotations

from decimal import Decimal as D

import pandas as pd
import pytest

from actors.pre_trade_gate import halt_exit_reason
from backtesting.metrics import compute_metrics
from backtesting.results import round_trips
from strategies.records import ExitReason
from strategies.records import exit_reason
from strategies.records import exit_tag


def test_every_reason_reads_back_from_its_tag_as_its_label() -> None:
    assert {r: exit_reason(["lot=trading", exit_tag(r)]) for r in ExitReason} == {
        ExitReason.STOP_LOSS: "stop-loss",
        ExitReason.TRAILING_STOP: "trailing stop",
        ExitReason.TARGET: "target",
        ExitReason.WINDOW_END: "window end",
        ExitReason.VWAP_TOUCH: "VWAP touch",
        ExitReason.TIMEOUT: "timeout",
        ExitReason.SIGNAL: "signal",
        ExitReason.CORE_EXIT: "core exit",
        ExitReason.REBALANCE_TRIM: "rebalance trim",
        ExitReason.KILL_SWITCH: "kill switch",
        ExitReason.RISK_HALT: "risk halt",
        ExitReason.MANUAL: "manual",
    }
    assert exit_reason(["signal"]) == exit_reason(None) == "unspecified"


def test_an_exit_tag_outside_the_vocabulary_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="order tag 'exit:stop' is no exit reason; known: exit:stop_loss, "):
        exit_reason(["exit:stop"])


def test_halt_exits_say_who_halted() -> None:
    assert halt_exit_reason("kill_switch") == ExitReason.KILL_SWITCH
    assert halt_exit_reason("operator") == ExitReason.MANUAL  # run_live flatten / stop
    assert halt_exit_reason("error_monitor") == ExitReason.RISK_HALT


def _fill(n: int, side: str, qty: int, price: str, tags: str) -> dict[str, object]:
    return {
        "ts_event": pd.Timestamp(f"2024-01-0{n + 2} 15:00", tz="UTC"), "strategy_id": "S-1",
        "instrument_id": "SPY.SIM", "client_order_id": f"O-{n}", "trade_id": f"T-{n}", "side": side,
        "quantity": D(qty), "price": D(price), "commission": D("1.00"), "tags": tags,
    }


def test_round_trips_and_metrics_show_each_exits_reason() -> None:
    fills = pd.DataFrame(
        [
            _fill(0, "BUY", 10, "100", "lot=core-building"),
            _fill(1, "SELL", 7, "101", "target=core-building,exit:target"),
            _fill(2, "SELL", 2, "99", "risk-exit,exit:kill_switch"),
            _fill(3, "SELL", 1, "99", "lot=core-building"),
        ],
    )
    trades = round_trips(fills)
    assert list(trades["exit_reason"]) == ["target", "kill switch", "unspecified"]
    equity = pd.Series([10_000.0, 10_000.0], index=pd.DatetimeIndex(fills["ts_event"].iloc[[0, 3]]))
    metrics = compute_metrics(equity, trades, fills, D("10000"), D("10000"), pd.Series([True, True]))
    assert metrics["exits_by_reason"] == {"target": 1, "kill switch": 1, "unspecified": 1}
