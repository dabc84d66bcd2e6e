"""Account figures a strategy or a risk actor sizes from: equity marked to market, exact."""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.cache.base import CacheFacade
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import PriceType
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.portfolio.base import PortfolioFacade


def account_equity(portfolio: PortfolioFacade, cache: CacheFacade, venue: Venue) -> Decimal:
    """
    Cash plus open positions on the venue's account, each marked at its last price (the last
    trade, else the last bar's close, as the cache knows it); a position whose instrument has
    no price yet is marked at its average open price.
    """
    account = portfolio.account(venue)
    if account is None:
        raise RuntimeError(f"no account registered for venue {venue}")
    cash = account.balance_total(USD)
    equity = cash.as_decimal() if cash is not None else Decimal(0)
    for position in cache.positions_open(venue=venue):
        price = cache.price(position.instrument_id, PriceType.LAST)
        mark = price.as_decimal() if price is not None else Decimal(str(position.avg_px_open))
        equity += position.signed_decimal_qty() * mark
    return equity
