"""
The lot book: every share the core-RSI strategy holds belongs to a lot, in exact decimals.

A lot is one buy decision (one signal): its id, kind (core-building, core or trading), fill
time, average fill price, quantity, the buy commission, and every sale from it with its price.
A core-building lot becomes a core lot when its profit-target sale fills (the rest "joins the
core"). Realised P&L is net of commissions: each sale carries its own commission and the
share of the buy commission of the shares it sold.

Persistence: the book holds the lots in memory; given a `publish` callable it hands every
change, as it happens, to it as a record of strategies/records.py (a buy fill or a change of
kind: the lot's state; a sale; a cost-basis reduction), which the strategy publishes for the
journal to write. `LotBook.restore` rebuilds a book from what the journal saved. Backtests
publish nothing, so one run never sees another's lots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from enum import StrEnum

from strategies.records import CostBasisRecord
from strategies.records import LotChange
from strategies.records import LotRecord
from strategies.records import LotSaleRecord
from strategies.records import SavedLots

ZERO = Decimal(0)


class LotKind(StrEnum):
    CORE_BUILDING = "core-building"
    CORE = "core"
    TRADING = "trading"


@dataclass(frozen=True)
class LotSale:
    ts_ns: int
    quantity: Decimal
    price: Decimal
    commission: Decimal
    buy_commission: Decimal  # the share of the lot's buy commission these shares carry
    kind: LotKind  # the lot's kind when it sold: P&L is reported by this kind
    reason: str
    cost_price: Decimal  # the lot's average fill price

    @property
    def gross_pnl(self) -> Decimal:
        return (self.price - self.cost_price) * self.quantity

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.commission - self.buy_commission


@dataclass
class Lot:
    lot_id: str
    instrument_id: str
    kind: LotKind
    opened_ns: int
    quantity: Decimal = ZERO
    price: Decimal = ZERO  # average fill price of the buy
    commission: Decimal = ZERO
    sales: list[LotSale] = field(default_factory=list)
    open_quantity: Decimal = ZERO  # bought less sold, kept up to date by the book

    @property
    def sold(self) -> Decimal:
        return self.quantity - self.open_quantity

    @property
    def realised_pnl(self) -> Decimal:
        return sum((s.net_pnl for s in self.sales), ZERO)

    @property
    def is_open(self) -> bool:
        return self.open_quantity > 0


class LotError(ValueError):
    """An operation the book refuses: an unknown lot, a sale larger than what is open."""


class LotBook:
    """
    The lots of one strategy in one instrument, with the core's cost-basis reduction.

    publish: receives each change as a record (None: the book is not persisted).
    """

    def __init__(
        self,
        instrument_id: str,
        strategy: str = "",
        publish: Callable[[LotChange], None] | None = None,
    ) -> None:
        self.instrument_id = instrument_id
        self.strategy = strategy
        self.publish = publish
        self.lots: dict[str, Lot] = {}
        self.cost_basis_reduction = ZERO
        self.reductions: list[tuple[int, Decimal]] = []  # (ts_ns, amount) booked by this run
        # Closed lots pile up over a year; strategies ask about the open ones on every bar.
        self._open: dict[str, Lot] = {}

    @classmethod
    def restore(
        cls,
        instrument_id: str,
        strategy: str,
        saved: SavedLots,
        publish: Callable[[LotChange], None] | None = None,
    ) -> LotBook:
        """The book as the journal saved it (only this strategy's lots in this instrument)."""
        book = cls(instrument_id, strategy, publish)
        mine = saved.of(strategy, instrument_id)
        for r in mine.lots:
            book.lots[r.lot_id] = Lot(
                r.lot_id, instrument_id, LotKind(r.kind), r.opened_ns, r.quantity, r.price,
                r.commission, open_quantity=r.quantity,
            )
        for s in sorted(mine.sales, key=lambda s: (s.lot_id, s.seq)):
            lot = book.lots.get(s.lot_id)
            if lot is None or s.seq != len(lot.sales):
                raise LotError(
                    f"saved sale {s.seq} of lot {s.lot_id} ({strategy}, {instrument_id}) does not "
                    f"follow the saved lot's {len(lot.sales) if lot else 'missing'} sales",
                )
            lot.sales.append(
                LotSale(s.ts_ns, s.quantity, s.price, s.commission, s.buy_commission,
                        LotKind(s.kind), s.reason, s.cost_price),
            )
            lot.open_quantity -= s.quantity
        book.cost_basis_reduction = sum((r.amount for r in mine.reductions), ZERO)
        book._open = {lot.lot_id: lot for lot in book.lots.values() if lot.is_open}
        return book

    def _save(self, lot: Lot) -> None:
        if self.publish is not None:
            self.publish(
                LotRecord(self.strategy, self.instrument_id, lot.lot_id, lot.kind.value,
                          lot.opened_ns, lot.quantity, lot.price, lot.commission),
            )

    def _save_sale(self, lot: Lot) -> None:
        if self.publish is not None:
            s = lot.sales[-1]
            self.publish(
                LotSaleRecord(self.strategy, self.instrument_id, lot.lot_id, len(lot.sales) - 1,
                              s.ts_ns, s.quantity, s.price, s.commission, s.buy_commission,
                              s.kind.value, s.reason, s.cost_price),
            )

    def get(self, lot_id: str) -> Lot:
        try:
            return self.lots[lot_id]
        except KeyError:
            raise LotError(f"lot {lot_id!r} is not in the book of {self.instrument_id}") from None

    def add_buy_fill(
        self,
        lot_id: str,
        kind: LotKind,
        ts_ns: int,
        quantity: Decimal,
        price: Decimal,
        commission: Decimal,
    ) -> Lot:
        """A buy fill: opens the lot, or adds to it at the volume-weighted average price."""
        if quantity <= 0:
            raise LotError(f"lot {lot_id}: a buy fill needs a positive quantity, got {quantity}")
        lot = self.lots.get(lot_id)
        if lot is None:
            lot = Lot(lot_id, self.instrument_id, kind, ts_ns)
            self.lots[lot_id] = lot
        elif lot.sales:
            raise LotError(f"lot {lot_id}: cannot add a buy after sales from it")
        total = lot.quantity + quantity
        lot.price = (lot.price * lot.quantity + price * quantity) / total
        lot.quantity = total
        lot.open_quantity = total
        lot.commission += commission
        self._open[lot_id] = lot
        self._save(lot)
        return lot

    def record_sale(
        self,
        lot_id: str,
        ts_ns: int,
        quantity: Decimal,
        price: Decimal,
        commission: Decimal,
        reason: str,
    ) -> LotSale:
        lot = self.get(lot_id)
        if quantity <= 0 or quantity > lot.open_quantity:
            raise LotError(
                f"lot {lot_id}: cannot sell {quantity}, it has {lot.open_quantity} open",
            )
        sale = LotSale(
            ts_ns,
            quantity,
            price,
            commission,
            buy_commission=lot.commission * quantity / lot.quantity,
            kind=lot.kind,
            reason=reason,
            cost_price=lot.price,
        )
        lot.sales.append(sale)
        lot.open_quantity -= quantity
        if not lot.is_open:
            self._open.pop(lot_id, None)
        self._save_sale(lot)
        return sale

    def convert(self, lot_id: str, kind: LotKind) -> Lot:
        lot = self.get(lot_id)
        lot.kind = kind
        self._save(lot)
        return lot

    def book_cost_basis_reduction(self, ts_ns: int, amount: Decimal, source_lot: str) -> None:
        """Trading profit credited against the core's cost basis."""
        self.cost_basis_reduction += amount
        self.reductions.append((ts_ns, amount))
        if self.publish is not None:
            self.publish(CostBasisRecord(self.strategy, self.instrument_id, ts_ns, amount, source_lot))

    def open_lots(self, kind: LotKind | None = None) -> list[Lot]:
        """Open lots, oldest first (the order sales are taken from)."""
        return sorted(
            (lot for lot in self._open.values() if kind is None or lot.kind == kind),
            key=lambda lot: (lot.opened_ns, lot.lot_id),
        )

    def open_quantity(self, kind: LotKind | None = None) -> Decimal:
        return sum(
            (lot.open_quantity for lot in self._open.values() if kind is None or lot.kind == kind),
            ZERO,
        )

    def realised_by_kind(self) -> dict[str, Decimal]:
        totals = {kind.value: ZERO for kind in LotKind}
        for lot in self.lots.values():
            for sale in lot.sales:
                totals[sale.kind.value] += sale.net_pnl
        return totals

    def core_cost_basis(self) -> Decimal:
        """What the open core shares cost, less the trading profit booked against them."""
        cost = sum((lot.open_quantity * lot.price for lot in self.open_lots(LotKind.CORE)), ZERO)
        return cost - self.cost_basis_reduction
