"""
An Interactive Brokers-like commission for US stocks (IBKR Pro fixed pricing).

Per share (default $0.005), at least a minimum per order (default $1.00) and at most a share
of the trade value (default 1%). The minimum is per order, not per fill: an order filled in
parts pays the minimum once, as IB charges it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP
from decimal import Decimal

from nautilus_trader.backtest.config import FeeModelConfig
from nautilus_trader.backtest.models import FeeModel
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Money
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.model.orders import Order

CENT = Decimal("0.01")


class PerShareFeeModelConfig(FeeModelConfig, frozen=True):
    per_share: str = "0.005"
    minimum: str = "1.00"
    max_fraction_of_value: str = "0.01"


def per_share_commission(
    filled_qty: Decimal,
    value: Decimal,
    per_share: Decimal,
    minimum: Decimal,
    max_fraction: Decimal,
) -> Decimal:
    """Commission for an order's cumulative filled quantity and value, rounded to the cent."""
    fee = max(filled_qty * per_share, minimum)
    fee = min(fee, value * max_fraction)
    return fee.quantize(CENT, rounding=ROUND_HALF_UP)


class PerShareFeeModel(FeeModel):
    """Charges each fill the order's cumulative commission less what it has paid already."""

    def __init__(self, config: PerShareFeeModelConfig | None = None) -> None:
        config = config or PerShareFeeModelConfig()
        self.per_share = Decimal(config.per_share)
        self.minimum = Decimal(config.minimum)
        self.max_fraction = Decimal(config.max_fraction_of_value)
        # Per order: (quantity filled, value filled, commission charged) so far.
        self._charged: dict[ClientOrderId, tuple[Decimal, Decimal, Decimal]] = {}

    def get_commission(
        self,
        order: Order,
        fill_qty: Quantity,
        fill_px: Price,
        instrument: Instrument,
    ) -> Money:
        qty, value, paid = self._charged.get(order.client_order_id, (Decimal(0),) * 3)
        qty += fill_qty.as_decimal()
        value += fill_qty.as_decimal() * fill_px.as_decimal()
        total = per_share_commission(qty, value, self.per_share, self.minimum, self.max_fraction)
        self._charged[order.client_order_id] = (qty, value, total)
        return Money(total - paid, instrument.quote_currency)
