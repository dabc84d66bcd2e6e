"""
The simulated venue's fill rules on hand-built bars: limits fill at their limit (touch, trade
through, gap), market-type orders slip one tick with --slippage 1.0.

Each run: a flat 10:00 bar at 100.50, on which one order is sent, then one 10:01 bar. The fill
model is the one every backtest and live replay builds (backtesting.builder.fill_model_config).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from nautilus_trader.backtest.config import FillModelFactory
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from backtesting.builder import fill_model_config
from backtesting.fills import MarketSlippageFillModelConfig
from tests.session_harness import Row
from tests.session_harness import bar_type
from tests.session_harness import et
from tests.session_harness import fills
from tests.session_harness import minute_frame
from tests.session_harness import run_engine

DAY = dt.date(2024, 3, 5)
FLAT: Row = (100.50, 100.50, 100.50, 100.50, 1000)


class OneOrderConfig(StrategyConfig, frozen=True):
    """
    Sends one order (kind: limit, market or stop_market) on the first bar it sees; a sell once
    a market buy of the same 10 shares has filled.
    """

    instrument_id: InstrumentId
    bar_type: BarType
    kind: str
    side: str
    price: str = ""  # the limit price or the stop's trigger


class OneOrder(Strategy):
    def __init__(self, config: OneOrderConfig) -> None:
        super().__init__(config)
        self._sent = False

    def on_start(self) -> None:
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        if self._sent:
            return
        self._sent = True
        if self.config.side == "SELL":  # a cash account sells only shares it holds: buy them first
            instrument = self.cache.instrument(self.config.instrument_id)
            self.submit_order(
                self.order_factory.market(
                    self.config.instrument_id, OrderSide.BUY, instrument.make_qty(10), tags=["holding"],
                ),
            )
        else:
            self._send()

    def on_order_filled(self, event: OrderFilled) -> None:
        if self.cache.order(event.client_order_id).tags == ["holding"]:
            self._send()

    def _send(self) -> None:
        instrument = self.cache.instrument(self.config.instrument_id)
        common = {
            "instrument_id": self.config.instrument_id,
            "order_side": OrderSide[self.config.side],
            "quantity": instrument.make_qty(10),
            "tags": [self.config.kind],
        }
        if self.config.kind == "limit":
            order = self.order_factory.limit(
                price=instrument.make_price(Decimal(self.config.price)), time_in_force=TimeInForce.GTC, **common,
            )
        elif self.config.kind == "stop_market":
            order = self.order_factory.stop_market(
                trigger_price=instrument.make_price(Decimal(self.config.price)), time_in_force=TimeInForce.GTC, **common,
            )
        else:
            order = self.order_factory.market(**common)
        self.submit_order(order)


def fill_prices(kind: str, side: str, price: str, second: Row, slippage: float = 1.0) -> list[tuple[str, Decimal]]:
    """(fill minute ET, fill price) of the one order, with the backtests' fill model."""
    strategy = OneOrder(
        OneOrderConfig(
            instrument_id=bar_type("SPY").instrument_id, bar_type=bar_type("SPY"), kind=kind, side=side, price=price,
        ),
    )
    model = FillModelFactory.create(fill_model_config(slippage))
    engine = run_engine([strategy], {"SPY": minute_frame(DAY, "10:00", [FLAT, second])}, fill_model=model)
    result = fills(engine)
    result = result[result.tags == kind]  # not the holding a sell starts from
    return [(t.strftime("%H:%M"), p) for t, p in zip(result.time, result.price, strict=True)]


@pytest.mark.parametrize(
    ("case", "side", "limit", "second"),
    [
        ("buy, trades through", "BUY", "100.00", (100.50, 100.60, 99.90, 100.20, 1000)),
        ("buy, touch", "BUY", "100.00", (100.50, 100.60, 100.00, 100.20, 1000)),
        ("buy, gap below", "BUY", "100.00", (99.50, 99.80, 99.40, 99.60, 1000)),
        ("sell, trades through", "SELL", "101.00", (100.50, 101.10, 100.40, 100.60, 1000)),
        ("sell, touch", "SELL", "101.00", (100.50, 101.00, 100.40, 100.60, 1000)),
        ("sell, gap above", "SELL", "101.00", (101.50, 101.70, 101.40, 101.60, 1000)),
    ],
)
def test_resting_limit_fills_at_its_limit_never_a_tick_through(case: str, side: str, limit: str, second: Row) -> None:
    # The stock FillModel with prob_slippage=1 filled these a tick through: 100.01 and 100.99.
    assert fill_prices("limit", side, limit, second) == [("10:01", Decimal(limit))], case


def test_limit_the_bar_stops_short_of_does_not_fill() -> None:
    assert fill_prices("limit", "BUY", "100.00", (100.50, 100.60, 100.01, 100.20, 1000)) == []
    assert fill_prices("limit", "SELL", "101.00", (100.50, 100.99, 100.40, 100.60, 1000)) == []


def test_marketable_limit_fills_at_the_market_without_slippage() -> None:
    # A buy limit at 101.00 sent when the last trade is 100.50 takes 100.50 (better than its limit).
    assert fill_prices("limit", "BUY", "101.00", FLAT) == [("10:00", Decimal("100.50"))]
    assert fill_prices("limit", "SELL", "100.00", FLAT) == [("10:00", Decimal("100.50"))]


def test_market_orders_slip_one_tick_against_the_trader() -> None:
    assert fill_prices("market", "BUY", "", FLAT) == [("10:00", Decimal("100.51"))]
    assert fill_prices("market", "SELL", "", FLAT) == [("10:00", Decimal("100.49"))]
    assert fill_prices("market", "BUY", "", FLAT, slippage=0.0) == [("10:00", Decimal("100.50"))]


def test_stop_market_slips_one_tick_past_its_trigger() -> None:
    # The 10:01 bar trades down through the 100.00 stop: it fills at the trigger, a tick worse.
    assert fill_prices("stop_market", "SELL", "100.00", (100.50, 100.60, 99.90, 100.20, 1000)) == [
        ("10:01", Decimal("99.99")),
    ]


def test_stop_market_the_bar_opens_beyond_fills_at_the_open_a_tick_worse() -> None:
    assert fill_prices("stop_market", "SELL", "100.00", (99.50, 99.80, 99.40, 99.60, 1000)) == [
        ("10:01", Decimal("99.49")),
    ]


def test_slippage_probability_outside_0_to_1_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="prob_slippage: expected a probability 0..1, got 1.5"):
        MarketSlippageFillModelConfig(prob_slippage=1.5)
