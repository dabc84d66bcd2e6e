"""
Day-trade counting for the pattern-day-trader rule.

A day trade is a buy and a sell of the same symbol on the same NYSE session date; each
closing (sell) order that meets an earlier buy of that session counts once. The window is the
last N business days from the real NYSE calendar, so holidays do not shorten it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from strategies.sessions import previous_sessions


class DayTradeCounter:
    def __init__(self) -> None:
        self._bought: set[tuple[str, dt.date]] = set()
        self._counted_orders: set[str] = set()
        self._day_trades: dict[dt.date, int] = defaultdict(int)

    def record_fill(self, symbol: str, side: str, session_date: dt.date, order_id: str) -> None:
        if side == "BUY":
            self._bought.add((symbol, session_date))
            return
        if (symbol, session_date) in self._bought and order_id not in self._counted_orders:
            self._counted_orders.add(order_id)
            self._day_trades[session_date] += 1

    def count(self, today: dt.date, sessions: int) -> int:
        """Day trades in the `sessions` business days ending with `today` (inclusive)."""
        window = previous_sessions(today, sessions)
        return sum(self._day_trades.get(day, 0) for day in window)
