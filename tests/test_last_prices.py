"""LastPrices gives the Price Nautilus's cache.price(LAST) gives, as the cache's data changes."""

from __future__ import annotations

from nautilus_trader.cache.cache import Cache
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.enums import PriceType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import TradeId
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity

from strategies.account import LastPrices

SPY = InstrumentId.from_str("SPY.SIM")
QQQ = InstrumentId.from_str("QQQ.SIM")


def _bar(bar_type: str, close: str, ts_ns: int) -> Bar:
    price = Price.from_str(close)
    return Bar(BarType.from_str(bar_type), price, price, price, price, Quantity.from_int(100), ts_ns, ts_ns)


def test_same_price_as_the_cache_through_every_change_of_its_bar_types() -> None:
    cache = Cache()
    prices = LastPrices(cache)

    def both(instrument_id: InstrumentId) -> tuple[Price | None, Price | None]:
        return prices.price(instrument_id), cache.price(instrument_id, PriceType.LAST)

    assert both(SPY) == (None, None)
    # An internal bar type never marks: still no price.
    cache.add_bar(_bar("SPY.SIM-5-MINUTE-LAST-INTERNAL", "500.05", 1))
    assert both(SPY) == (None, None)
    cache.add_bar(_bar("SPY.SIM-1-MINUTE-LAST-EXTERNAL", "500.10", 2))
    assert both(SPY) == (Price.from_str("500.10"), Price.from_str("500.10"))
    # A shorter external interval arrives later: the cache now marks at it, and so must we.
    cache.add_bar(_bar("SPY.SIM-1-SECOND-LAST-EXTERNAL", "500.20", 3))
    assert both(SPY) == (Price.from_str("500.20"), Price.from_str("500.20"))
    cache.add_bar(_bar("SPY.SIM-1-MINUTE-LAST-EXTERNAL", "500.30", 4))
    assert both(SPY) == (Price.from_str("500.20"), Price.from_str("500.20"))
    # A bid bar is not a last price; another instrument's bars do not mark this one.
    cache.add_bar(_bar("SPY.SIM-1-MILLISECOND-BID-EXTERNAL", "499.00", 5))
    cache.add_bar(_bar("QQQ.SIM-1-MINUTE-LAST-EXTERNAL", "400.00", 5))
    assert both(SPY) == (Price.from_str("500.20"), Price.from_str("500.20"))
    assert both(QQQ) == (Price.from_str("400.00"), Price.from_str("400.00"))
    # A trade tick wins over any bar.
    cache.add_trade_tick(
        TradeTick(SPY, Price.from_str("501.00"), Quantity.from_int(10), AggressorSide.BUYER,
                  TradeId("1"), 6, 6),
    )
    assert both(SPY) == (Price.from_str("501.00"), Price.from_str("501.00"))
    assert both(QQQ) == (Price.from_str("400.00"), Price.from_str("400.00"))
