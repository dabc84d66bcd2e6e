"""
FIFO share lots in exact Decimal: what each sale costs and which commissions it carries.

The journal, the GnuCash ledger and the reconciliation all match sales to lots here, so the
three agree on realised P&L by construction of the rule and disagree only if their data do.
A lot is keyed by (strategy, symbol): two strategies holding the same symbol keep separate
cost bases. Accounts are long only; a sale of more shares than are held is refused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal

ZERO = Decimal(0)
CENT = Decimal("0.01")


class LotError(ValueError):
    """A sale the open lots cannot cover (long-only accounts never go short)."""


@dataclass
class Lot:
    """Shares bought by one fill that are still held, with the part of its commission left."""

    lot_id: str
    strategy: str
    symbol: str
    opened_ns: int
    price: Decimal
    quantity: Decimal
    commission: Decimal


@dataclass(frozen=True)
class LotClosing:
    """The part of one lot a sale consumed."""

    lot_id: str
    quantity: Decimal
    price: Decimal
    commission: Decimal  # the lot's entry commission carried by these shares
    opened_ns: int


@dataclass(frozen=True)
class Sale:
    """A sale matched against lots: one round trip, gross and net of both sides' charges."""

    strategy: str
    symbol: str
    quantity: Decimal
    exit_price: Decimal
    exit_commission: Decimal
    closings: tuple[LotClosing, ...] = field(default_factory=tuple)

    @property
    def cost(self) -> Decimal:
        return sum((c.quantity * c.price for c in self.closings), ZERO)

    @property
    def proceeds(self) -> Decimal:
        return self.quantity * self.exit_price

    @property
    def gross_pnl(self) -> Decimal:
        return self.proceeds - self.cost

    @property
    def charges(self) -> Decimal:
        return sum((c.commission for c in self.closings), ZERO) + self.exit_commission

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.charges

    @property
    def net_pnl_pct(self) -> Decimal:
        return (self.net_pnl / self.cost * 100).quantize(CENT) if self.cost else ZERO

    @property
    def entry_price(self) -> Decimal:
        """Average cost per share sold (4 places: a display figure, never summed)."""
        return (self.cost / self.quantity).quantize(Decimal("0.0001"))

    @property
    def entry_ns(self) -> int:
        return self.closings[0].opened_ns


class LotBook:
    """Open lots per (strategy, symbol), oldest first."""

    def __init__(self, lots: Iterable[Lot] = ()) -> None:
        self._lots: dict[tuple[str, str], deque[Lot]] = {}
        for lot in sorted(lots, key=lambda lot: lot.opened_ns):
            self._lots.setdefault((lot.strategy, lot.symbol), deque()).append(lot)

    def buy(self, lot: Lot) -> None:
        if lot.quantity <= 0:
            raise LotError(f"lot {lot.lot_id}: a buy needs a positive quantity, got {lot.quantity}")
        self._lots.setdefault((lot.strategy, lot.symbol), deque()).append(lot)

    def held(self, strategy: str, symbol: str) -> Decimal:
        return sum((lot.quantity for lot in self._lots.get((strategy, symbol), ())), ZERO)

    def open_lots(self) -> list[Lot]:
        return [lot for lots in self._lots.values() for lot in lots]

    def positions(self) -> dict[str, Decimal]:
        """Shares held per symbol, all strategies together, zero positions left out."""
        out: dict[str, Decimal] = {}
        for (_, symbol), lots in self._lots.items():
            out[symbol] = out.get(symbol, ZERO) + sum((lot.quantity for lot in lots), ZERO)
        return {symbol: qty for symbol, qty in out.items() if qty != 0}

    def sell(
        self,
        strategy: str,
        symbol: str,
        quantity: Decimal,
        price: Decimal,
        commission: Decimal,
        reference: str,
    ) -> Sale:
        """Consume the oldest lots first; an entry commission is split pro rata to the cent."""
        held = self.held(strategy, symbol)
        if quantity > held:
            raise LotError(
                f"{reference}: {strategy} sells {quantity} {symbol} but holds {held}; "
                "long-only accounts never go short",
            )
        lots = self._lots.get((strategy, symbol), deque())
        remaining = quantity
        closings = []
        while remaining > 0:
            lot = lots[0]
            take = min(remaining, lot.quantity)
            if take == lot.quantity:
                share = lot.commission
            else:
                share = (lot.commission * take / lot.quantity).quantize(CENT)
            closings.append(LotClosing(lot.lot_id, take, lot.price, share, lot.opened_ns))
            lot.quantity -= take
            lot.commission -= share
            remaining -= take
            if lot.quantity == 0:
                lots.popleft()
        return Sale(strategy, symbol, quantity, price, commission, tuple(closings))
