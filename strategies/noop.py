"""A strategy that subscribes to bars and does nothing: the benchmark's baseline."""

from __future__ import annotations

from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy


class NoOpConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    bar_type: BarType


class NoOp(Strategy):
    """Receives every bar of `bar_type` and places no order."""

    def __init__(self, config: NoOpConfig) -> None:
        super().__init__(config)
        self.bars_seen = 0

    def on_start(self) -> None:
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.bars_seen += 1

    def on_stop(self) -> None:
        # No order to cancel, nothing to release.
        return
