"""
Opening-range breakout, long only, 09:30-10:20 ET over a watchlist.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import msgspec
import pandas as pd
from nautilus_trader.config import PositiveInt
from nautilus_trader.model.data import Bar

from strategies.allocation import allocation_problems
from strategies.allocation import default_allocation_weights
from strategies.allocation import weights_for
from strategies.session_strategy import SessionStrategy
from strategies.session_strategy import SessionStrategyConfig
from strategies.sessions import Session


class OpeningRangeConfig(SessionStrategyConfig, frozen=True):
    """
    range_minutes: length of the opening range from the 09:30 open.
    breakout_buffer: how far above the range high a close must be (fraction of the high).
    volume_multiple: the breakout bar's volume must be at least this multiple of the average
        volume of the opening-range bars.
    allocation_weights: n candidates -> weights of the strategy's capital, best-ranked first.
    """

    range_minutes: PositiveInt = 20
    breakout_buffer: Decimal = Decimal("0.002")
    volume_multiple: Decimal = Decimal("1.5")
    allocation_weights: dict[int, tuple[Decimal, ...]] = msgspec.field(default_factory=default_allocation_weights)

    def validation_problems(self) -> list[str]:
        problems = super().validation_problems()
        problems += allocation_problems(self.allocation_weights)
        if not 0 <= self.breakout_buffer < 1:
            problems.append(f"breakout_buffer: must be in [0, 1), got {self.breakout_buffer}")
        if self.volume_multiple < 0:
            problems.append(f"volume_multiple: must be >= 0, got {self.volume_multiple}")
        if self.range_minutes >= 50:
            problems.append(f"range_minutes: must end before the 10:20 window end, got {self.range_minutes}")
        return problems


@dataclass
class OpeningRange:
    high: Decimal = Decimal(0)
    low: Decimal = Decimal(0)
    volume: Decimal = Decimal(0)
    dollar_volume: Decimal = Decimal(0)
    bars: int = 0

    def add(self, bar: Bar) -> None:
        high, low, volume = bar.high.as_decimal(), bar.low.as_decimal(), bar.volume.as_decimal()
        self.high = high if self.bars == 0 else max(self.high, high)
        self.low = low if self.bars == 0 else min(self.low, low)
        self.volume += volume
        self.dollar_volume += volume * bar.close.as_decimal()
        self.bars += 1

    @property
    def average_volume(self) -> Decimal:
        return self.volume / self.bars


class OpeningRangeBreakout(SessionStrategy):
    """
    Rules (exchange time, each session, cut at an early close):

    - Opening range: for each watchlist symbol, the high, the low and the average bar volume
      of the bars stamped in (09:30, 09:30 + range_minutes] (bars are stamped at their close).
    - Candidates: at the first bar after the range, the symbols that have a range and pass the
      candidate filters are ranked by opening-range dollar volume (largest first); the top n
      (n at most the largest allocation row) get allocation_weights[n] of the strategy's
      capital (capital_fraction of account equity at that moment), in rank order.
    - Entry: a candidate's bar closing before 10:20 with close >= range high * (1 + buffer)
      and volume >= volume_multiple * the range's average bar volume buys its weight's
      capital at market. One entry per symbol per session (and the shared blocklist).
    - Exit: a stop-market sell at 2% below the fill price; whatever is still held at 10:20 is
      sold at market (hard exit).
    """

    ENTRY_WINDOW = ("09:30", "10:20")
    EXIT_TIME = "10:20"

    def __init__(self, config: OpeningRangeConfig) -> None:
        super().__init__(config)
        self.ranges: dict[str, OpeningRange] = {}
        self.budgets: dict[str, Decimal] | None = None
        self.range_end_ns = 0

    def on_session_start(self, session: Session) -> None:
        self.ranges = {symbol: OpeningRange() for symbol in self.config.watchlist}
        self.budgets = None
        self.range_end_ns = (session.open + pd.Timedelta(minutes=self.config.range_minutes)).value

    def on_session_bar(self, symbol: str, bar: Bar) -> None:
        if symbol not in self.ranges:
            return
        if bar.ts_event <= self.range_end_ns:
            self.ranges[symbol].add(bar)
            return
        if self.budgets is None:
            self.budgets = self.rank_candidates()
        if symbol in self.budgets and self.in_entry_window(bar.ts_event) and self._is_breakout(symbol, bar):
            budget = self.budgets.pop(symbol)
            self.enter(symbol, "bullish", "breakout", budget, bar.ts_event)

    def rank_candidates(self) -> dict[str, Decimal]:
        passing = []
        for symbol, opening in self.ranges.items():
            reason = "no opening-range bars" if opening.bars == 0 else self.rejection(symbol)
            if reason is not None:
                self.log.info(f"opening range: {symbol} not a candidate: {reason}")
                continue
            passing.append((opening.dollar_volume, symbol))
        passing.sort(reverse=True)
        weights = weights_for(self.config.allocation_weights, len(passing))
        capital = self.strategy_capital()
        budgets = {symbol: capital * weight for (_, symbol), weight in zip(passing, weights)}
        self.log.info(f"opening range candidates: {', '.join(f'{s}={b:.2f}' for s, b in budgets.items()) or 'none'}")
        return budgets

    def _is_breakout(self, symbol: str, bar: Bar) -> bool:
        opening = self.ranges[symbol]
        threshold = opening.high * (1 + self.config.breakout_buffer)
        if bar.close.as_decimal() < threshold:
            return False
        if bar.volume.as_decimal() < self.config.volume_multiple * opening.average_volume:
            self.log.info(f"{symbol} closed above {threshold:.4f} without volume confirmation")
            return False
        return True
