"""
Candidate filters shared by the session strategies: price within [min_price, max_price],
average daily volume at least a threshold, and, where a quote exists, non-zero bid and ask
with a spread no wider than a fraction of the mid price.

Average daily volume is the mean regular-hours volume of the last completed sessions the
strategy has seen (live, the runner warms it with requested history).
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from nautilus_trader.model.data import QuoteTick


@dataclass(frozen=True)
class CandidateFilter:
    min_price: Decimal
    max_price: Decimal
    min_average_daily_volume: Decimal  # 0 turns the volume filter off
    max_spread_fraction: Decimal

    def rejection(
        self,
        price: Decimal,
        average_daily_volume: Decimal | None,
        quote: QuoteTick | None,
    ) -> str | None:
        """Why the candidate fails, or None when it passes."""
        if not self.min_price <= price <= self.max_price:
            return f"price {price} outside [{self.min_price}, {self.max_price}]"
        if self.min_average_daily_volume > 0:
            if average_daily_volume is None:
                return "no completed sessions yet for the average daily volume"
            if average_daily_volume < self.min_average_daily_volume:
                return f"average daily volume {average_daily_volume} < {self.min_average_daily_volume}"
        if quote is not None:
            bid = quote.bid_price.as_decimal()
            ask = quote.ask_price.as_decimal()
            if bid <= 0 or ask <= 0:
                return f"quote has a zero bid or ask ({bid} / {ask})"
            spread = (ask - bid) / ((ask + bid) / 2)
            if spread > self.max_spread_fraction:
                return f"spread {spread:.4%} wider than {self.max_spread_fraction:%}"
        return None


class DailyVolumeTracker:
    """Regular-hours volume per session; the average over the last `sessions` completed ones."""

    def __init__(self, sessions: int) -> None:
        self._completed: deque[Decimal] = deque(maxlen=sessions)
        self._date: dt.date | None = None
        self._today = Decimal(0)

    def add(self, session_date: dt.date, volume: Decimal) -> None:
        if session_date != self._date:
            if self._date is not None:
                self._completed.append(self._today)
            self._date = session_date
            self._today = Decimal(0)
        self._today += volume

    def average(self) -> Decimal | None:
        if len(self._completed) < (self._completed.maxlen or 1):
            return None
        return sum(self._completed, Decimal(0)) / len(self._completed)
