"""
The simulated venue's fill rules: slippage on market-type orders only, limits at their limit.

Nautilus 1.231's stock FillModel applies `prob_slippage` inside the matching engine's
`apply_fills` to every fill of every order type, so with slippage on, a buy limit at 471.79
fills at 471.80, one tick through its own limit, which no exchange does. Its hooks give no
order to `is_slipped()`, but the matching engine asks `get_orderbook_for_fill_simulation()`
about the order first, for every market and limit fill (determine_market_fills_with_simulation
and determine_limit_fills_with_simulation in backtest/engine.pyx). This model notes the order
type there, returns None so Nautilus's own price and volume logic stands, and slips only when
that order is a market-type order.
"""

from __future__ import annotations

import random

from nautilus_trader.backtest.models import FillModel
from nautilus_trader.config import NautilusConfig
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Price
from nautilus_trader.model.orders import Order

# Orders that take whatever the market gives, so a fill can be a tick worse than the last price.
SLIPPING_ORDER_TYPES = frozenset(
    {
        OrderType.MARKET,
        OrderType.STOP_MARKET,
        OrderType.MARKET_IF_TOUCHED,
        OrderType.TRAILING_STOP_MARKET,
    },
)


class MarketSlippageFillModelConfig(NautilusConfig, frozen=True):
    """
    Fill rules of the simulated venue.

    - prob_slippage: the probability (0..1) that a fill of a market, stop-market,
      market-if-touched or trailing-stop-market order is one tick worse for the trader than
      the price Nautilus fills it at. Limit-priced orders (limit, stop-limit, limit-if-touched)
      never slip: they fill at their limit or better.
    - random_seed: seeds the draws when 0 < prob_slippage < 1, so identical inputs give
      identical fills.

    A resting limit fills at its limit when the market reaches it, a touch included (Nautilus's
    prob_fill_on_limit = 1); docs/backtests.md states the rule on bars.
    """

    prob_slippage: float = 1.0
    random_seed: int = 42

    def __post_init__(self) -> None:
        if not 0.0 <= self.prob_slippage <= 1.0:
            raise ValueError(f"prob_slippage: expected a probability 0..1, got {self.prob_slippage}")


class MarketSlippageFillModel(FillModel):
    """Slips market-type orders with probability prob_slippage; limit fills stay at the limit."""

    def __init__(self, config: MarketSlippageFillModelConfig | None = None) -> None:
        config = config or MarketSlippageFillModelConfig()
        # The base class never slips (prob_slippage=0): is_slipped below decides, per order.
        super().__init__(prob_fill_on_limit=1.0, prob_slippage=0.0, random_seed=config.random_seed)
        self.market_slippage = config.prob_slippage
        self._draws = random.Random(config.random_seed)  # own stream: no module-level state
        self._order_type: OrderType | None = None

    def get_orderbook_for_fill_simulation(
        self,
        instrument: Instrument,
        order: Order,
        best_bid: Price,
        best_ask: Price,
    ) -> OrderBook | None:
        # Called for the order about to be filled, before its fills are applied; None keeps
        # Nautilus's standard fill price and volume.
        self._order_type = order.order_type
        return None

    def is_slipped(self) -> bool:
        if self._order_type is None:
            # Nautilus changed the order of its calls: slipping blind could move a limit fill.
            raise RuntimeError("MarketSlippageFillModel.is_slipped: no order seen for this fill")
        if self._order_type not in SLIPPING_ORDER_TYPES:
            return False
        if self.market_slippage in (0.0, 1.0):
            return self.market_slippage == 1.0
        return self._draws.random() < self.market_slippage
