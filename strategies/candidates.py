"""
Candidate filters shared by the session strategies: price within [min_price, max_price],
average daily volume at least a threshold, and, where a quote exists, non-zero bid and ask
with a spread no wider than a fraction of the mid price.

Average daily volume is the mean regular-hours volume of the last completed sessions the
strategy has seen; live with IB it is warmed at start from IB's daily bars (warmup_days), so
the filter does not wait weeks of live sessions.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import QuoteTick

from strategies.sessions import session_for


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

    def seed(self, sessions: list[tuple[dt.date, Decimal]]) -> None:
        """Completed sessions' volumes from history, oldest first, before any live bar."""
        if self._date is not None:
            raise RuntimeError("DailyVolumeTracker.seed: live volume was already added")
        for _, volume in sessions:
            self._completed.append(volume)

    def average(self) -> Decimal | None:
        if len(self._completed) < (self._completed.maxlen or 1):
            return None
        return sum(self._completed, Decimal(0)) / len(self._completed)


def completed_session_volumes(
    daily_bars: list[Bar], today: dt.date,
) -> tuple[list[tuple[dt.date, Decimal]], list[str]]:
    """
    The volume of each completed NYSE session in `daily_bars` (IB's daily bars, which Nautilus
    stamps at 00:00 UTC of the session's date), oldest first, and a note for each bar left out:
    today's (still trading, counted from the live bars instead) and any dated on a day without
    a session (not IB's daily bar of a session, so not trusted).
    """
    volumes: dict[dt.date, Decimal] = {}
    notes = []
    for bar in daily_bars:
        date = pd.Timestamp(bar.ts_event, tz="UTC").date()
        if date >= today:
            notes.append(f"{bar.bar_type} {date}: today's or later, left to the live bars")
        elif session_for(date) is None:
            notes.append(f"{bar.bar_type} {date}: no NYSE session that day, left out")
        else:
            volumes[date] = bar.volume.as_decimal()
    return sorted(volumes.items()), notes
