"""
NYSE sessions from the real exchange calendar (holidays, half-days, DST).

Trading windows are defined in exchange time (America/New_York) and resolved per date to UTC
instants, so a window such as 09:30-10:20 ET is right in summer and in winter alike.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

EXCHANGE_TZ = ZoneInfo("America/New_York")
PRE_MARKET_OPEN = dt.time(4, 0)
AFTER_HOURS_CLOSE = dt.time(20, 0)
# On a half-day the after-hours session ends four hours after the early close.
AFTER_HOURS_LENGTH = dt.timedelta(hours=4)


@dataclass(frozen=True)
class Session:
    """One NYSE trading day, its instants in UTC."""

    date: dt.date
    pre_open: pd.Timestamp
    open: pd.Timestamp
    close: pd.Timestamp
    post_close: pd.Timestamp

    @property
    def is_half_day(self) -> bool:
        return self.close.tz_convert(EXCHANGE_TZ).time() < dt.time(16, 0)

    def at(self, local_time: dt.time) -> pd.Timestamp:
        """The UTC instant of a wall-clock time in New York on this session's date."""
        return pd.Timestamp(dt.datetime.combine(self.date, local_time, EXCHANGE_TZ)).tz_convert("UTC")

    def window(self, start: dt.time, end: dt.time) -> tuple[pd.Timestamp, pd.Timestamp]:
        """A regular-hours window in exchange time, cut at an early close."""
        return max(self.at(start), self.open), min(self.at(end), self.close)


@cache
def _calendar() -> xcals.ExchangeCalendar:
    return xcals.get_calendar("XNYS", start="2000-01-01")


@cache
def _schedule() -> dict[dt.date, tuple[pd.Timestamp, pd.Timestamp]]:
    """Every session's open and close (UTC), read once from the calendar's schedule."""
    schedule = _calendar().schedule
    return {
        label.date(): (open_, close)
        for label, open_, close in zip(schedule.index, schedule["open"], schedule["close"], strict=True)
    }


@cache
def session_for(date: dt.date) -> Session | None:
    """The session on a New York calendar date, or None on weekends and holidays."""
    bounds = _schedule().get(date)
    if bounds is None:
        return None
    open_, close = bounds
    return Session(
        date=date,
        pre_open=pd.Timestamp(dt.datetime.combine(date, PRE_MARKET_OPEN, EXCHANGE_TZ)).tz_convert("UTC"),
        open=open_,
        close=close,
        post_close=min(
            close + AFTER_HOURS_LENGTH,
            pd.Timestamp(dt.datetime.combine(date, AFTER_HOURS_CLOSE, EXCHANGE_TZ)).tz_convert("UTC"),
        ),
    )


def session_at(ts_ns: int) -> Session | None:
    """The session whose calendar date (New York) contains this instant."""
    local = pd.Timestamp(ts_ns, tz="UTC").tz_convert(EXCHANGE_TZ)
    return session_for(local.date())


def in_regular_hours(ts_ns: int) -> bool:
    """True for instants in (open, close]: a bar stamped at its close belongs to the session."""
    session = session_at(ts_ns)
    if session is None:
        return False
    return session.open.value < ts_ns <= session.close.value


class SessionTracker:
    """
    The current session for a stream of increasing timestamps, recomputed once a day.

    Strategies call this on every bar, so the hot path compares integers only.
    """

    def __init__(self) -> None:
        self.session: Session | None = None
        self.day: dt.date | None = None  # the New York calendar date of the last update
        self._day_start_ns = -1
        self._day_end_ns = -1
        self._open_ns = 0
        self._close_ns = 0

    def update(self, ts_ns: int) -> Session | None:
        if not self._day_start_ns <= ts_ns < self._day_end_ns:
            day = dt.datetime.fromtimestamp(ts_ns / 1e9, EXCHANGE_TZ).date()
            self.day = day
            start = dt.datetime.combine(day, dt.time(0), EXCHANGE_TZ)
            end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), EXCHANGE_TZ)
            self._day_start_ns = int(start.timestamp()) * 1_000_000_000
            self._day_end_ns = int(end.timestamp()) * 1_000_000_000
            self.session = session_for(day)
            if self.session is not None:
                self._open_ns = self.session.open.value
                self._close_ns = self.session.close.value
        return self.session

    def in_regular_hours(self, ts_ns: int) -> bool:
        """True for instants in (open, close]: a bar stamped at its close belongs to the session."""
        return self.update(ts_ns) is not None and self._open_ns < ts_ns <= self._close_ns


@cache
def _session_dates() -> list[dt.date]:
    return sorted(_schedule())


def previous_sessions(date: dt.date, count: int) -> list[dt.date]:
    """The `count` NYSE sessions ending on `date` (inclusive if it is a session), oldest first."""
    dates = _session_dates()
    end = bisect.bisect_right(dates, date)
    return dates[max(end - count, 0):end]


def ny_date(ts_ns: int) -> dt.date:
    """The New York calendar date of a UTC instant (no pandas: called per order and per bar)."""
    return dt.datetime.fromtimestamp(ts_ns / 1e9, EXCHANGE_TZ).date()
