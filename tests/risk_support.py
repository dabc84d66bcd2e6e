"""
Hand-built backtests for the risk-layer tests: one SIM venue, one cash account, minute bars
built from a list of closes, the gate (and optionally the kill switch / other actors) installed
in front of the RiskEngine, and a simple always-buy strategy.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.engine import BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import RiskEngineConfig
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import OmsType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.identifiers import ExecAlgorithmId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Money
from nautilus_trader.model.objects import Price
from nautilus_trader.trading.strategy import Strategy

from actors.pre_trade_gate import PreTradeGate
from actors.pre_trade_gate import PreTradeGateConfig
from actors.pre_trade_gate import install_risk_layer
from catalog.instruments import BACKTEST_VENUE
from catalog.instruments import make_instrument
from catalog.store import bar_type_for
from catalog.store import bars_from_frame
from config.risk import RiskConfig


def minute_bars(instrument, closes: list[float], start: str, volume: float = 100_000) -> list[Bar]:
    """Minute bars stamped at their close, opening at the previous close (first at its own)."""
    index = pd.date_range(pd.Timestamp(start, tz="America/New_York"), periods=len(closes), freq="1min")
    index = index.tz_convert("UTC")
    opens = [closes[0], *closes[:-1]]
    frame = pd.DataFrame(
        {
            "open": opens,
            "high": [max(o, c) for o, c in zip(opens, closes, strict=True)],
            "low": [min(o, c) for o, c in zip(opens, closes, strict=True)],
            "close": closes,
            "volume": [volume] * len(closes),
        },
        index=index,
    )
    return bars_from_frame(instrument, bar_type_for(instrument.id, "1min"), frame)


class AlwaysBuyConfig(StrategyConfig, frozen=True):
    """Buys `first_quantity` on the first bar, then `each_quantity` at market on every bar."""

    instrument_id: InstrumentId
    bar_type: BarType
    first_quantity: int = 100
    each_quantity: int = 1
    resting_limit_price: str | None = None  # a buy limit placed on the first bar, far away
    stop_price: str | None = None  # tag the orders with this stop
    sell_on_bar: int | None = None  # on this bar sell `sell_quantity` instead of buying
    sell_on_bars: list[int] = []  # the same on several bars
    sell_quantity: int = 100
    exec_algorithm: str | None = None  # route the orders through this execution algorithm
    exec_algorithm_params: dict[str, int | str] | None = None
    limit_at_close: bool = False  # buy with a limit at the bar's close instead of at market
    bracket_offset: str | None = None  # buy in a bracket: stop-loss and take-profit this far away
    post_only: bool = False  # the limit must not take liquidity (at the close it would: rejected)


class AlwaysBuy(Strategy):
    def __init__(self, config: AlwaysBuyConfig) -> None:
        super().__init__(config)
        self.bars = 0
        self.denied: list[OrderDenied] = []

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1
        if self.bars == self.config.sell_on_bar or self.bars in self.config.sell_on_bars:
            self.submit_order(
                self.order_factory.market(
                    self.config.instrument_id, OrderSide.SELL, self.instrument.make_qty(self.config.sell_quantity),
                ),
            )
            return
        quantity = self.config.first_quantity if self.bars == 1 else self.config.each_quantity
        tags = [f"stop={self.config.stop_price}"] if self.config.stop_price else None
        if self.config.bracket_offset:
            offset = Decimal(self.config.bracket_offset)
            self.submit_order_list(
                self.order_factory.bracket(
                    self.config.instrument_id, OrderSide.BUY, self.instrument.make_qty(quantity),
                    sl_trigger_price=self.instrument.make_price(bar.close.as_decimal() - offset),
                    tp_price=self.instrument.make_price(bar.close.as_decimal() + offset),
                ),
            )
            return
        algorithm = ExecAlgorithmId(self.config.exec_algorithm) if self.config.exec_algorithm else None
        if self.config.limit_at_close:
            self.submit_order(
                self.order_factory.limit(
                    self.config.instrument_id, OrderSide.BUY, self.instrument.make_qty(quantity), bar.close,
                    tags=tags, post_only=self.config.post_only, exec_algorithm_id=algorithm,
                    exec_algorithm_params=self.config.exec_algorithm_params,
                ),
            )
            return
        self.submit_order(
            self.order_factory.market(
                self.config.instrument_id, OrderSide.BUY, self.instrument.make_qty(quantity), tags=tags,
                exec_algorithm_id=algorithm, exec_algorithm_params=self.config.exec_algorithm_params,
            ),
        )
        if self.bars == 1 and self.config.resting_limit_price:
            self.submit_order(
                self.order_factory.limit(
                    self.config.instrument_id, OrderSide.BUY, self.instrument.make_qty(10),
                    Price.from_str(self.config.resting_limit_price), time_in_force=TimeInForce.GTC,
                ),
            )

    def on_order_denied(self, event: OrderDenied) -> None:
        self.denied.append(event)


def build_engine(
    bars: list[Bar],
    risk: RiskConfig,
    capital: Decimal = Decimal("100000"),
    strategy_config: dict | None = None,
    extra_actors: list = (),
    symbol: str = "SPY",
    risk_engine: RiskEngineConfig | None = None,
    exec_algorithms: list = (),
    window_on_data_time: bool = False,
) -> tuple[BacktestEngine, PreTradeGate, AlwaysBuy]:
    instrument = make_instrument(symbol)
    engine = BacktestEngine(
        BacktestEngineConfig(
            trader_id="TESTER-001",
            logging=LoggingConfig(log_level="ERROR", bypass_logging=True),
            risk_engine=risk_engine or RiskEngineConfig(),
        ),
    )
    engine.add_venue(
        venue=BACKTEST_VENUE,
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        base_currency=USD,
        starting_balances=[Money(capital, USD)],
    )
    engine.add_instrument(instrument)
    engine.add_data(bars)
    bar_type = bar_type_for(instrument.id, "1min")
    gate = PreTradeGate(PreTradeGateConfig(risk=risk, bar_types=[bar_type], window_on_data_time=window_on_data_time))
    engine.add_actor(gate)
    for actor in extra_actors:
        engine.add_actor(actor)
    strategy = AlwaysBuy(
        AlwaysBuyConfig(instrument_id=instrument.id, bar_type=bar_type, **(strategy_config or {})),
    )
    engine.add_strategy(strategy)
    for algorithm in exec_algorithms:
        engine.add_exec_algorithm(algorithm)
    install_risk_layer(engine.kernel)
    return engine, gate, strategy
