"""
What strategies and risk actors tell the journal, as plain messages on the message bus.

Strategies never import the journal: they publish a ``SignalRecord`` on ``journal.signal`` or
a ``RiskRecord`` on ``journal.risk`` (helpers below) and whichever journal runs records them.
Exit reasons travel as order tags (``exit:stop_loss`` ..., ``ExitReason``) so the journal,
the backtest's trades and the report can say how each round trip closed.

A strategy whose lots must survive a restart (core RSI, live) publishes each change of its
lot book on ``journal.lots`` (``LotRecord``, ``LotSaleRecord``, ``CostBasisRecord``); the
journal writes it into its database. At start the journal puts every saved lot into the
Nautilus Cache under ``SAVED_LOTS_KEY`` (``encode_saved_lots``), before any strategy starts,
and keeps that entry current; the strategy rebuilds its book from it (``decode_saved_lots``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from enum import StrEnum
from typing import Any
from typing import Protocol

SIGNAL_TOPIC = "journal.signal"
RISK_TOPIC = "journal.risk"
LOTS_TOPIC = "journal.lots"
# Cache key of the journal's saved lots (every strategy's); written at every journal start,
# an empty set included, so a missing entry means no journal loaded them.
SAVED_LOTS_KEY = "journal.saved_lots"


class ExitReason(StrEnum):
    """
    Why shares were sold: the one vocabulary every strategy and the risk layer use.

    A selling order carries ``exit_tag(reason)`` among its tags (``exit:stop_loss`` ...);
    ``exit_reason`` reads it back as the label the journal, trades.csv, the report and the
    dashboard show. A sale without one is shown as ``unspecified``.
    """

    STOP_LOSS = "stop_loss"  # a protective stop triggered
    TRAILING_STOP = "trailing_stop"
    TARGET = "target"  # a profit target filled
    WINDOW_END = "window_end"  # the strategy's trading window closed
    VWAP_TOUCH = "vwap_touch"  # the price came back to the session VWAP
    TIMEOUT = "timeout"  # held for the strategy's maximum time
    SIGNAL = "signal"  # the strategy's exit signal (MA cross down)
    CORE_EXIT = "core_exit"  # core RSI selling its core on the weekly-RSI exit
    REBALANCE_TRIM = "rebalance_trim"  # a holding above its share of the bankroll, trimmed
    KILL_SWITCH = "kill_switch"  # the kill switch halted trading and closed positions
    RISK_HALT = "risk_halt"  # another risk halt closed positions (error monitor, node stop)
    MANUAL = "manual"  # an operator closed it

    @property
    def label(self) -> str:
        """What records and reports show: the value in words ('window end', 'stop-loss')."""
        return _LABELS.get(self, self.value.replace("_", " "))


_LABELS = {ExitReason.STOP_LOSS: "stop-loss", ExitReason.VWAP_TOUCH: "VWAP touch"}


EXIT_TAG_PREFIX = "exit:"
UNSPECIFIED_EXIT = "unspecified"


def exit_tag(reason: ExitReason) -> str:
    """The order tag that says why a sale happens."""
    return EXIT_TAG_PREFIX + reason.value


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


@dataclass(frozen=True)
class LotRecord:
    """A lot's state after a buy fill or a change of kind (the journal upserts it)."""

    strategy: str
    instrument_id: str
    lot_id: str
    kind: str
    opened_ns: int
    quantity: Decimal
    price: Decimal  # average fill price of the buy
    commission: Decimal


@dataclass(frozen=True)
class LotSaleRecord:
    """One sale from a lot; seq is its position among the lot's sales (0, 1, ...)."""

    strategy: str
    instrument_id: str
    lot_id: str
    seq: int
    ts_ns: int
    quantity: Decimal
    price: Decimal
    commission: Decimal
    buy_commission: Decimal
    kind: str  # the lot's kind when it sold
    reason: str
    cost_price: Decimal


@dataclass(frozen=True)
class CostBasisRecord:
    """Trading profit booked against the core's cost basis."""

    strategy: str
    instrument_id: str
    ts_ns: int
    amount: Decimal
    source_lot: str


LotChange = LotRecord | LotSaleRecord | CostBasisRecord


@dataclass(frozen=True)
class SavedLots:
    """Lots as the journal saved them; sales in (lot, seq) order, reductions in booking order."""

    lots: tuple[LotRecord, ...] = ()
    sales: tuple[LotSaleRecord, ...] = ()
    reductions: tuple[CostBasisRecord, ...] = ()

    def of(self, strategy: str, instrument_id: str) -> SavedLots:
        def mine(r: LotChange) -> bool:
            return r.strategy == strategy and r.instrument_id == instrument_id

        return SavedLots(
            tuple(filter(mine, self.lots)),
            tuple(filter(mine, self.sales)),
            tuple(filter(mine, self.reductions)),
        )


_DECIMALS = {
    name
    for cls in (LotRecord, LotSaleRecord, CostBasisRecord)
    for name, kind in cls.__annotations__.items()
    if kind == "Decimal"
}


def _fields_from_json(cls: type, row: dict[str, Any]) -> Any:
    return cls(**{k: Decimal(v) if k in _DECIMALS else v for k, v in row.items()})


def encode_saved_lots(saved: SavedLots) -> bytes:
    """JSON with every Decimal as its exact text."""

    def rows(records: tuple[LotChange, ...]) -> list[dict[str, Any]]:
        return [{k: str(v) if k in _DECIMALS else v for k, v in asdict(r).items()} for r in records]

    return json.dumps(
        {"lots": rows(saved.lots), "sales": rows(saved.sales), "reductions": rows(saved.reductions)},
    ).encode()


def decode_saved_lots(data: bytes) -> SavedLots:
    raw = json.loads(data)
    return SavedLots(
        tuple(_fields_from_json(LotRecord, r) for r in raw["lots"]),
        tuple(_fields_from_json(LotSaleRecord, r) for r in raw["sales"]),
        tuple(_fields_from_json(CostBasisRecord, r) for r in raw["reductions"]),
    )


class _Publisher(Protocol):
    def publish(self, topic: str, msg: object) -> None: ...


def publish_signal(msgbus: _Publisher, record: SignalRecord) -> None:
    msgbus.publish(topic=SIGNAL_TOPIC, msg=record)


def publish_risk(msgbus: _Publisher, record: RiskRecord) -> None:
    msgbus.publish(topic=RISK_TOPIC, msg=record)


def publish_lot_change(msgbus: _Publisher, record: LotChange) -> None:
    msgbus.publish(topic=LOTS_TOPIC, msg=record)


def exit_reason_of(tags: list[str] | tuple[str, ...] | None) -> ExitReason | None:
    """The ExitReason an order's tags carry, or None."""
    for tag in tags or ():
        if tag.startswith(EXIT_TAG_PREFIX):
            return ExitReason(tag.removeprefix(EXIT_TAG_PREFIX))
    return None


def exit_reason(tags: list[str] | tuple[str, ...] | None) -> str:
    """How a round trip closed, from its closing order's tags ('unspecified' if untagged)."""
    for tag in tags or ():
        if tag.startswith(EXIT_TAG_PREFIX):
            try:
                return ExitReason(tag.removeprefix(EXIT_TAG_PREFIX)).label
            except ValueError:
                known = ", ".join(exit_tag(r) for r in ExitReason)
                raise ValueError(f"order tag {tag!r} is no exit reason; known: {known}") from None
    return UNSPECIFIED_EXIT
