"""What the risk layer did, one line per halt or reduce-only (backtesting/risk_summary.py)."""

from __future__ import annotations

import pandas as pd

from backtesting.risk_summary import risk_actions
from risk.messages import ControlAction
from risk.messages import RiskControl


def ns(text: str) -> int:
    return pd.Timestamp(text, tz="America/New_York").value


DRAWDOWN = "drawdown 10.20% from peak 104000.00 (equity 93392.00) reached the 10% limit"


def test_reduce_only_to_the_end_counts_the_orders_it_refused() -> None:
    controls = [(ns("2023-01-06 10:15"), RiskControl(ControlAction.REDUCE, DRAWDOWN, "kill_switch"))]
    denials = [
        (ns("2023-01-05 11:00"), "PreTradeGate trading_halted: before the restriction"),  # not counted
        (ns("2023-01-06 10:15"), "PreTradeGate trading_halted: trading is REDUCING (reduce-only)"),
        (ns("2023-03-01 10:00"), "PreTradeGate trading_halted: trading is REDUCING (reduce-only)"),
        (ns("2023-03-01 10:01"), "PreTradeGate symbol_cap: another rule"),  # not counted
    ]
    assert risk_actions(controls, denials) == [
        f"Risk: kill_switch went reduce-only from 2023-01-06 10:15 ET to the end of the run: {DRAWDOWN}; "
        "2 orders refused meanwhile",
    ]


def test_a_halt_until_its_resume_and_the_gates_own_follow_up_is_not_a_second_halt() -> None:
    halt = RiskControl(ControlAction.HALT, "day loss 6.60%", "kill_switch", exit_positions=True)
    controls = [
        (ns("2024-03-05 12:53"), halt),
        (ns("2024-03-05 12:54"), RiskControl(ControlAction.HALT, "positions closed", "pre_trade_gate")),
        (ns("2024-03-06 09:31"), RiskControl(ControlAction.RESUME, "new session 2024-03-06", "kill_switch")),
        (ns("2024-03-07 10:00"), RiskControl(ControlAction.HALT, "3 critical errors", "error_monitor")),
    ]
    denials = [(ns("2024-03-05 13:00"), "PreTradeGate trading_halted: trading is HALTED")]
    assert risk_actions(controls, denials) == [
        "Risk: kill_switch halted trading from 2024-03-05 12:53 ET to 2024-03-06 09:31 ET: day loss "
        "6.60%; open orders cancelled; positions closed; 1 order refused meanwhile",
        "Risk: error_monitor halted trading from 2024-03-07 10:00 ET to the end of the run: "
        "3 critical errors; open orders cancelled; 0 orders refused meanwhile",
    ]
