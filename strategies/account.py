"""Account figures a strategy sizes from: equity marked to market, in exact decimals."""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.model.currencies import USD
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.portfolio.base import PortfolioFacade


def account_equity(portfolio: PortfolioFacade, venue: Venue) -> Decimal:
    """Cash plus the market value of open positions on the venue's account (USD)."""
    account = portfolio.account(venue)
    if account is None:
        raise RuntimeError(f"no account registered for venue {venue}")
    cash = account.balance_total(USD)
    equity = cash.as_decimal() if cash is not None else Decimal(0)
    # Long-only cash accounts: the net exposure is the marked value of the shares held.
    exposures = portfolio.net_exposures(venue) or {}
    if USD in exposures:
        equity += exposures[USD].as_decimal()
    return equity
