"""
Position sizing and the stop arithmetic the pre-trade gate checks with.

Strategies size with ``position_size`` and the gate's max-risk rule measures an order with
``order_risk``; both go through ``stop_distance``, so a size this module proposes is one the
gate accepts. An order's stop travels with it as a tag ``stop=<price>`` (``stop_tag``), or as
the stop-market child of a bracket order list.
"""

from __future__ import annotations

from decimal import ROUND_DOWN
from decimal import Decimal
from decimal import InvalidOperation

from config.risk import RiskConfig

HUNDRED = Decimal(100)
STOP_TAG_PREFIX = "stop="


def stop_tag(stop_price: Decimal) -> str:
    """The order tag that carries an entry's protective stop price to the gate."""
    return f"{STOP_TAG_PREFIX}{stop_price}"


def stop_from_tags(tags: list[str] | None) -> Decimal | None:
    for tag in tags or ():
        if tag.startswith(STOP_TAG_PREFIX):
            text = tag[len(STOP_TAG_PREFIX):]
            try:
                value = Decimal(text)
            except InvalidOperation:
                raise ValueError(f"order tag {tag!r}: stop price {text!r} is not a number") from None
            if not value.is_finite() or value <= 0:
                raise ValueError(f"order tag {tag!r}: stop price must be positive")
            return value
    return None


def stop_distance(price: Decimal, stop_price: Decimal | None, config: RiskConfig) -> Decimal:
    """Distance per share to the stop; the configured default when the order has none."""
    if stop_price is None:
        return price * config.default_stop_pct / HUNDRED
    return abs(price - stop_price)


def order_risk(quantity: Decimal, price: Decimal, stop_price: Decimal | None, config: RiskConfig) -> Decimal:
    """Money lost if the order fills at `price` and exits at its stop."""
    return quantity * stop_distance(price, stop_price, config)


def position_size(
    equity: Decimal,
    price: Decimal,
    stop_price: Decimal | None,
    config: RiskConfig,
    risk_pct: Decimal | None = None,
) -> Decimal:
    """
    Whole shares = equity x risk% / stop distance, capped so the position stays inside the
    symbol cap. `risk_pct` defaults to (and may not exceed) max_risk_per_trade_pct.
    """
    pct = config.max_risk_per_trade_pct if risk_pct is None else min(risk_pct, config.max_risk_per_trade_pct)
    if equity <= 0 or price <= 0:
        return Decimal(0)
    distance = stop_distance(price, stop_price, config)
    if distance <= 0:
        raise ValueError(f"stop price {stop_price} equals the entry price {price}: no risk distance")
    by_risk = equity * pct / HUNDRED / distance
    by_cap = equity * config.symbol_cap_pct / HUNDRED / price
    return min(by_risk, by_cap).to_integral_value(rounding=ROUND_DOWN)
