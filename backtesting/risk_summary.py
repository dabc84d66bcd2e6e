"""
What the risk layer did to a run, in one line per restriction: who imposed it (the kill
switch, the error monitor, ...), from when to when in New York time, why, and how many orders
the gate refused while it held. The summary prints these under its figures and the report
puts them at its top, beside risk_events.json's detail.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from risk.messages import ControlAction
from risk.messages import RiskControl
from strategies.sessions import EXCHANGE_TZ

# The gate's own follow-up (HALTED once a halt's exits are done) is part of the halt it follows.
GATE_SOURCE = "pre_trade_gate"
# The rule the gate refuses orders under while trading is halted or reduce-only.
HALTED_RULE = "trading_halted"
RESTRICTIONS = {ControlAction.HALT: "halted trading", ControlAction.REDUCE: "went reduce-only"}


@dataclass(frozen=True)
class Restriction:
    """A HALT or REDUCE from one source, until its RESUME (or a stricter step), or the end."""

    source: str
    control: RiskControl
    start_ns: int
    end_ns: int | None  # None: still in force when the run ended


def _et(ts_ns: int) -> str:
    return pd.Timestamp(ts_ns, tz="UTC").tz_convert(EXCHANGE_TZ).strftime("%Y-%m-%d %H:%M ET")


def restrictions(controls: list[tuple[int, RiskControl]]) -> list[Restriction]:
    """
    Each source's HALT and REDUCE periods, in the order they began. A source holds one
    restriction at a time (as the gate keeps it): a new HALT or REDUCE ends its previous one,
    its RESUME ends it.
    """
    done: list[Restriction] = []
    holding: dict[str, tuple[int, RiskControl]] = {}
    for ts, control in controls:
        if control.source == GATE_SOURCE:
            continue
        if control.action in (ControlAction.HALT, ControlAction.REDUCE, ControlAction.RESUME):
            if control.source in holding:
                start, held = holding.pop(control.source)
                done.append(Restriction(control.source, held, start, ts))
            if control.action != ControlAction.RESUME:
                holding[control.source] = (ts, control)
    done += [Restriction(source, held, start, None) for source, (start, held) in holding.items()]
    return sorted(done, key=lambda r: r.start_ns)


def risk_actions(controls: list[tuple[int, RiskControl]], denials: list[tuple[int, str]]) -> list[str]:
    """
    One line per restriction. `denials`: (time, reason) of every order the run denied; those
    the gate refused as halted or reduce-only while the restriction held are counted.
    """
    lines = []
    for r in restrictions(controls):
        until = _et(r.end_ns) if r.end_ns is not None else "the end of the run"
        refused = sum(
            1 for ts, reason in denials
            if f"{HALTED_RULE}:" in reason and ts >= r.start_ns and (r.end_ns is None or ts < r.end_ns)
        )
        steps = [
            *(["open orders cancelled"] if r.control.action == ControlAction.HALT and r.control.cancel_orders else []),
            *(["positions closed"] if r.control.exit_positions else []),
        ]
        closed = "".join(f"; {step}" for step in steps)
        lines.append(
            f"Risk: {r.source} {RESTRICTIONS[r.control.action]} from {_et(r.start_ns)} to {until}: "
            f"{r.control.reason}{closed}; {refused} order{'' if refused == 1 else 's'} refused meanwhile",
        )
    return lines
