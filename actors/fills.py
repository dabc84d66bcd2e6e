"""One fill as the journal, the ledger and the reconciliation see it: exact and venue-neutral."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from nautilus_trader.model.enums import liquidity_side_to_str
from nautilus_trader.model.enums import order_side_to_str
from nautilus_trader.model.events import OrderFilled


def money_decimal(money: object) -> Decimal:
    """Money as an exact Decimal at its currency's precision ('1.00 USD' -> Decimal('1.00'))."""
    return Decimal(str(money).split()[0])


@dataclass(frozen=True)
class FillRecord:
    ts_ns: int
    strategy: str
    instrument_id: str
    side: str  # BUY or SELL
    quantity: Decimal
    price: Decimal
    commission: Decimal
    currency: str
    client_order_id: str
    venue_order_id: str
    trade_id: str
    liquidity_side: str
    broker: str

    @property
    def symbol(self) -> str:
        return self.instrument_id.split(".")[0]

    @property
    def cash_flow(self) -> Decimal:
        """What the fill does to cash: proceeds of a sale, cost of a buy, less commission."""
        sign = Decimal(-1) if self.side == "BUY" else Decimal(1)
        return sign * self.quantity * self.price - self.commission


def fill_from_event(event: OrderFilled, broker: str) -> FillRecord:
    return FillRecord(
        ts_ns=event.ts_event,
        strategy=event.strategy_id.value,
        instrument_id=event.instrument_id.value,
        side=order_side_to_str(event.order_side),
        quantity=Decimal(str(event.last_qty)),
        price=Decimal(str(event.last_px)),
        commission=money_decimal(event.commission),
        currency=event.commission.currency.code,
        client_order_id=event.client_order_id.value,
        venue_order_id=event.venue_order_id.value if event.venue_order_id else "",
        trade_id=event.trade_id.value,
        liquidity_side=liquidity_side_to_str(event.liquidity_side),
        broker=broker,
    )
