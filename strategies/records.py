"""
What strategies and risk actors tell the journal, as plain messages on the message bus.

Strategies never import the journal: they publish a ``SignalRecord`` on ``journal.signal`` or
a ``RiskRecord`` on ``journal.risk`` (helpers below) and whichever journal runs records them.
Exit reasons travel as order tags (``exit:stop_loss`` ...) so the journal can say how each
round trip closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Protocol

SIGNAL_TOPIC = "journal.signal"
RISK_TOPIC = "journal.risk"

# Order tag -> how a round trip closed. A closing order carries one of these tags.
EXIT_REASONS = {
    "exit:stop_loss": "stop-loss",
    "exit:target": "target",
    "exit:time": "time exit",
    "signal": "signal",
    "exit:signal": "signal",
    "exit:kill_switch": "kill switch",
    "exit:manual": "manual",
}
RISK_KINDS = ("refusal", "halt", "resume", "limit", "kill_switch", "unresolved_order", "control")


@dataclass(frozen=True)
class SignalRecord:
    """A strategy's decision with the indicator values behind it (values as text: exact)."""

    ts_ns: int
    strategy: str
    instrument_id: str
    signal_type: str
    indicators: dict[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class RiskRecord:
    """A refusal, halt or other risk decision; kind is one of RISK_KINDS."""

    ts_ns: int
    source: str
    kind: str
    detail: str
    strategy: str = ""
    instrument_id: str = ""

    def __post_init__(self) -> None:
        if self.kind not in RISK_KINDS:
            raise ValueError(f"kind must be one of {', '.join(RISK_KINDS)}, got {self.kind!r}")


class _Publisher(Protocol):
    def publish(self, topic: str, msg: object) -> None: ...


def publish_signal(msgbus: _Publisher, record: SignalRecord) -> None:
    msgbus.publish(topic=SIGNAL_TOPIC, msg=record)


def publish_risk(msgbus: _Publisher, record: RiskRecord) -> None:
    msgbus.publish(topic=RISK_TOPIC, msg=record)


def exit_reason(tags: list[str] | tuple[str, ...] | None) -> str:
    """How a round trip closed, from its closing order's tags ('unspecified' if untagged)."""
    for tag in tags or ():
        if tag in EXIT_REASONS:
            return EXIT_REASONS[tag]
    return "unspecified"
