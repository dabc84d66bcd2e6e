"""Account figures a strategy or a risk actor sizes from: equity marked to market, exact."""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.cache.base import CacheFacade
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AggregationSource
from nautilus_trader.model.enums import PriceType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Price
from nautilus_trader.portfolio.base import PortfolioFacade


def account_equity(portfolio: PortfolioFacade, cache: CacheFacade, venue: Venue) -> Decimal:
    """
    Cash plus open positions on the venue's account, each marked at its last price (the last
    trade, else the last bar's close, as the cache knows it); a position whose instrument has
    no price yet is marked at its average open price.
    """
    return MarkedEquity(portfolio, cache, venue).value()


class MarkedEquity:
    """
    `account_equity` for a check that runs on every bar: cash and the open quantities are
    re-read only after the account or a position changed (the owner calls `invalidate` from
    its `events.account.*` / `events.position.*` handlers); the marks are the cache's last
    prices at each call. Same figures as `account_equity`, without walking the cache per bar.
    """

    def __init__(self, portfolio: PortfolioFacade, cache: CacheFacade, venue: Venue) -> None:
        self._portfolio = portfolio
        self._cache = cache
        self._venue = venue
        self._prices = LastPrices(cache)
        self._stale = True
        self._cash = Decimal(0)
        # instrument -> (signed quantity, average open price for an instrument not yet priced)
        self._held: dict[InstrumentId, tuple[Decimal, Decimal]] = {}

    def invalidate(self, _event: object = None) -> None:
        self._stale = True

    def value(self) -> Decimal:
        if self._stale:
            self._refresh()
        equity = self._cash
        for instrument_id, (quantity, avg_open) in self._held.items():
            price = self._prices.price(instrument_id)
            equity += quantity * (price.as_decimal() if price is not None else avg_open)
        return equity

    def _refresh(self) -> None:
        account = self._portfolio.account(self._venue)
        if account is None:
            raise RuntimeError(f"no account registered for venue {self._venue}")
        cash = account.balance_total(USD)
        self._cash = cash.as_decimal() if cash is not None else Decimal(0)
        held: dict[InstrumentId, tuple[Decimal, Decimal]] = {}
        for position in self._cache.positions_open(venue=self._venue):
            quantity, _ = held.get(position.instrument_id, (Decimal(0), Decimal(0)))
            held[position.instrument_id] = (
                quantity + position.signed_decimal_qty(),
                Decimal(str(position.avg_px_open)),
            )
        self._held = held
        self._stale = False


class LastPrices:
    """
    `cache.price(instrument_id, PriceType.LAST)`, the same Price, for a caller on every bar.

    Nautilus answers that query with the last trade tick, else the close of the instrument's
    EXTERNAL LAST bar type with the shortest interval; finding that bar type filters and sorts
    every bar type the cache holds (about 8 us a call, most of a per-bar equity check). The
    choice only changes when the cache's set of bar types does, so it is kept per instrument
    until `cache.bar_types()` differs (the cache returns the same key objects each time, so the
    comparison is by identity and cheap).
    """

    def __init__(self, cache: CacheFacade) -> None:
        self._cache = cache
        self._seen_bar_types: list[BarType] = []
        self._marking: dict[InstrumentId, BarType | None] = {}

    def price(self, instrument_id: InstrumentId) -> Price | None:
        trade = self._cache.trade_tick(instrument_id)
        if trade is not None:
            return trade.price
        bar_types = self._cache.bar_types()
        if bar_types != self._seen_bar_types:
            self._seen_bar_types = bar_types
            self._marking.clear()
        if instrument_id in self._marking:
            bar_type = self._marking[instrument_id]
        else:
            candidates = self._cache.bar_types(instrument_id, PriceType.LAST, AggregationSource.EXTERNAL)
            bar_type = self._marking[instrument_id] = candidates[0] if candidates else None
        if bar_type is None:
            return None
        bar = self._cache.bar(bar_type)
        return bar.close if bar is not None else None
