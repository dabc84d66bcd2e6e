"""A tiny hand-built catalog and a running simulator for the IB Gateway simulator tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from adapters.ib_gateway_sim.market import Market
from adapters.ib_gateway_sim.market import ReplayClock
from adapters.ib_gateway_sim.server import Gateway
from adapters.ib_gateway_sim.server import GatewayConfig
from catalog.instruments import make_instrument
from catalog.store import bar_type_for
from catalog.store import bars_from_frame
from catalog.store import open_catalog
from catalog.store import quotes_from_frame
from catalog.store import write_instrument

OPEN = pd.Timestamp("2024-01-02 09:30", tz="America/New_York").tz_convert("UTC")
# SPY quotes step up a cent every 10 s from 470.00/470.02; AAPL from 185.00/185.02
BASES = {"SPY": 470.00, "AAPL": 185.00}


def build_catalog(path: Path, minutes: int = 30) -> Path:
    catalog = open_catalog(path)
    for symbol, base in BASES.items():
        instrument = make_instrument(symbol)
        write_instrument(catalog, instrument)
        index = pd.date_range(OPEN, periods=minutes * 6, freq="10s")
        step = np.arange(len(index)) * 0.01
        quotes = pd.DataFrame(
            {
                "bid": np.round(base + step, 2),
                "ask": np.round(base + 0.02 + step, 2),
                "bid_size": 300.0,
                "ask_size": 200.0,
            },
            index=index,
        )
        catalog.write_data(quotes_from_frame(instrument, quotes))
        closes = pd.date_range(OPEN + pd.Timedelta(minutes=1), periods=minutes, freq="1min")
        minute = np.arange(minutes) * 0.06
        bars = pd.DataFrame(
            {
                "open": np.round(base + 0.01 + minute, 2),
                "high": np.round(base + 0.08 + minute, 2),
                "low": np.round(base + 0.00 + minute, 2),
                "close": np.round(base + 0.06 + minute, 2),
                "volume": 1000.0,
            },
            index=closes,
        )
        bar_type = bar_type_for(instrument.id, "1min")
        catalog.write_data(bars_from_frame(instrument, bar_type, bars))
    return path


def make_gateway(catalog_path: Path, start: pd.Timestamp) -> Gateway:
    market = Market.from_catalog(catalog_path)
    # speed 0: the replay clock only moves when a test moves it
    return Gateway(market, ReplayClock(start.value, 0.0), GatewayConfig(pump_interval_seconds=0.01))


# -- a tiny strategy for the TradingNode test ------------------------------------------------

from nautilus_trader.config import StrategyConfig  # noqa: E402
from nautilus_trader.model.data import Bar  # noqa: E402
from nautilus_trader.model.data import BarType  # noqa: E402
from nautilus_trader.model.data import QuoteTick  # noqa: E402
from nautilus_trader.model.enums import OrderSide  # noqa: E402
from nautilus_trader.model.events import OrderFilled  # noqa: E402
from nautilus_trader.model.events import OrderRejected  # noqa: E402
from nautilus_trader.model.identifiers import InstrumentId  # noqa: E402
from nautilus_trader.model.objects import Quantity  # noqa: E402
from nautilus_trader.trading.strategy import Strategy  # noqa: E402


class BuyOnceConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    bar_type: BarType
    quantity: int = 3


class BuyOnce(Strategy):
    """Subscribes to quotes and bars and buys once at market on the first quote."""

    def __init__(self, config: BuyOnceConfig) -> None:
        super().__init__(config)
        self.quotes: list[QuoteTick] = []
        self.bars: list[Bar] = []
        self.fills: list[OrderFilled] = []
        self.rejections: list[OrderRejected] = []

    def on_start(self) -> None:
        self.subscribe_quote_ticks(self.config.instrument_id)
        self.subscribe_bars(self.config.bar_type)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self.quotes.append(tick)
        if len(self.quotes) == 1:
            self.buy()

    def buy(self) -> None:
        order = self.order_factory.market(
            self.config.instrument_id,
            OrderSide.BUY,
            Quantity.from_int(self.config.quantity),
        )
        self.submit_order(order)

    def on_bar(self, bar: Bar) -> None:
        self.bars.append(bar)

    def on_order_filled(self, event: OrderFilled) -> None:
        self.fills.append(event)

    def on_order_rejected(self, event: OrderRejected) -> None:
        self.rejections.append(event)
