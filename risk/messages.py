"""
Messages the risk layer passes over the Nautilus message bus.

Actors never hold references to one another: the kill switch, the watchdog and the error
handler ask the pre-trade gate to change the trading state by sending a ``RiskControl`` to
the ``CONTROL_ENDPOINT``; anyone with something to tell a person publishes an ``Alert`` on an
``alerts.<kind>`` topic, where the email actor (and later the dashboard) pick it up.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

CONTROL_ENDPOINT = "PreTradeGate.control"
ALERT_TOPIC_PREFIX = "alerts."


class AlertKind(StrEnum):
    SIGNAL = "signal"
    FILL = "fill"
    CANCEL = "cancel"
    EXIT = "exit"
    REBALANCE = "rebalance"
    KILL_SWITCH = "kill_switch"
    CRITICAL = "critical"
    CIRCUIT_BREAKER = "circuit_breaker"
    WATCHDOG = "watchdog"


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    subject: str
    body: str
    ts_ns: int
    critical: bool = False

    @property
    def topic(self) -> str:
        return f"{ALERT_TOPIC_PREFIX}{self.kind.value}"


class ControlAction(StrEnum):
    HALT = "HALT"  # Nautilus TradingState.HALTED: no new orders at all
    REDUCE = "REDUCE"  # TradingState.REDUCING: only orders that reduce a position
    RESUME = "RESUME"  # lifts the source's own HALT / REDUCE
    PAUSE = "PAUSE"  # no new exposure in one instrument until `until_ns` (circuit breakers)
    PAUSE_STRATEGY = "PAUSE_STRATEGY"  # no new exposure from one strategy (its exits pass)
    RESUME_STRATEGY = "RESUME_STRATEGY"  # lifts PAUSE_STRATEGY


@dataclass(frozen=True)
class RiskControl:
    action: ControlAction
    reason: str
    source: str
    # On HALT: cancel every open order and close every position before the state changes.
    exit_positions: bool = False
    cancel_orders: bool = True
    instrument_id: str = ""  # PAUSE only
    until_ns: int = 0  # PAUSE only
    strategy_id: str = ""  # PAUSE_STRATEGY / RESUME_STRATEGY only
