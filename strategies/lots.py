"""
The lot book: every share the core-RSI strategy holds belongs to a lot, in exact decimals.

A lot is one buy decision (one signal): its id, kind (core-building, core or trading), fill
time, average fill price, quantity, the buy commission, and every sale from it with its price.
A core-building lot becomes a core lot when its profit-target sale fills (the rest "joins the
core"). Realised P&L is net of commissions: each sale carries its own commission and the
share of the buy commission of the shares it sold.

Persistence: `SqliteLotStore` writes each change as it happens to a small SQLite file (WAL
journal, one transaction per change), so a live node that restarts reloads its lots. Backtests
keep the book in memory (no store), so one run never sees another's lots. The journal issue
can later take the storage over behind the same two calls (`save_lot`, `add_cost_basis`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from enum import StrEnum
from pathlib import Path

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


class SqliteLotStore:
    """Lots in a SQLite file (WAL), written as fills happen; Decimals stored as text."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS lots (
        lot_id TEXT PRIMARY KEY, instrument_id TEXT NOT NULL, kind TEXT NOT NULL,
        opened_ns INTEGER NOT NULL, quantity TEXT NOT NULL, price TEXT NOT NULL,
        commission TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS lot_sales (
        lot_id TEXT NOT NULL REFERENCES lots(lot_id), seq INTEGER NOT NULL,
        ts_ns INTEGER NOT NULL, quantity TEXT NOT NULL, price TEXT NOT NULL,
        commission TEXT NOT NULL, buy_commission TEXT NOT NULL, kind TEXT NOT NULL,
        reason TEXT NOT NULL, cost_price TEXT NOT NULL, PRIMARY KEY (lot_id, seq));
    CREATE TABLE IF NOT EXISTS cost_basis_reductions (
        instrument_id TEXT NOT NULL, ts_ns INTEGER NOT NULL, amount TEXT NOT NULL,
        source_lot TEXT NOT NULL);
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(self.SCHEMA)

    def save_lot(self, lot: Lot) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT INTO lots VALUES (?,?,?,?,?,?,?) ON CONFLICT(lot_id) DO UPDATE SET "
                "kind=excluded.kind, quantity=excluded.quantity, price=excluded.price, "
                "commission=excluded.commission",
                (
                    lot.lot_id,
                    lot.instrument_id,
                    lot.kind.value,
                    lot.opened_ns,
                    str(lot.quantity),
                    str(lot.price),
                    str(lot.commission),
                ),
            )
            self._conn.executemany(
                "INSERT OR REPLACE INTO lot_sales VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        lot.lot_id,
                        seq,
                        s.ts_ns,
                        str(s.quantity),
                        str(s.price),
                        str(s.commission),
                        str(s.buy_commission),
                        s.kind.value,
                        s.reason,
                        str(s.cost_price),
                    )
                    for seq, s in enumerate(lot.sales)
                ],
            )

    def add_cost_basis(
        self, instrument_id: str, ts_ns: int, amount: Decimal, source_lot: str
    ) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT INTO cost_basis_reductions VALUES (?,?,?,?)",
                (instrument_id, ts_ns, str(amount), source_lot),
            )

    def load(self, instrument_id: str) -> tuple[list[Lot], Decimal]:
        lots = {}
        for row in self._conn.execute(
            "SELECT lot_id, kind, opened_ns, quantity, price, commission FROM lots "
            "WHERE instrument_id=? ORDER BY opened_ns, lot_id",
            (instrument_id,),
        ):
            lot_id, kind, opened_ns, quantity, price, commission = row
            lots[lot_id] = Lot(
                lot_id,
                instrument_id,
                LotKind(kind),
                opened_ns,
                Decimal(quantity),
                Decimal(price),
                Decimal(commission),
                open_quantity=Decimal(quantity),
            )
        for row in self._conn.execute(
            "SELECT s.lot_id, s.ts_ns, s.quantity, s.price, s.commission, s.buy_commission, "
            "s.kind, s.reason, s.cost_price FROM lot_sales s JOIN lots l USING (lot_id) "
            "WHERE l.instrument_id=? ORDER BY s.lot_id, s.seq",
            (instrument_id,),
        ):
            lot_id, ts_ns, qty, price, commission, buy_commission, kind, reason, cost = row
            lots[lot_id].sales.append(
                LotSale(
                    ts_ns,
                    Decimal(qty),
                    Decimal(price),
                    Decimal(commission),
                    Decimal(buy_commission),
                    LotKind(kind),
                    reason,
                    Decimal(cost),
                ),
            )
            lots[lot_id].open_quantity -= Decimal(qty)
        total = sum(
            (
                Decimal(a)
                for (a,) in self._conn.execute(
                    "SELECT amount FROM cost_basis_reductions WHERE instrument_id=?",
                    (instrument_id,),
                )
            ),
            ZERO,
        )
        return list(lots.values()), total

    def close(self) -> None:
        self._conn.close()


class LotBook:
    """The lots of one instrument, with the core's cost-basis reduction; optionally persisted."""

    def __init__(self, instrument_id: str, store: SqliteLotStore | None = None) -> None:
        self.instrument_id = instrument_id
        self.store = store
        self.lots: dict[str, Lot] = {}
        self.cost_basis_reduction = ZERO
        self.reductions: list[tuple[int, Decimal]] = []  # (ts_ns, amount) booked by this run
        if store is not None:
            lots, self.cost_basis_reduction = store.load(instrument_id)
            self.lots = {lot.lot_id: lot for lot in lots}
        # Closed lots pile up over a year; strategies ask about the open ones on every bar.
        self._open: dict[str, Lot] = {lot.lot_id: lot for lot in self.lots.values() if lot.is_open}

    def _save(self, lot: Lot) -> None:
        if self.store is not None:
            self.store.save_lot(lot)

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
        self._save(lot)
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
        if self.store is not None:
            self.store.add_cost_basis(self.instrument_id, ts_ns, amount, source_lot)

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
