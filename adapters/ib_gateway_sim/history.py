"""
Historical bars the way reqHistoricalData returns them, built from the catalog's 1-minute bars.

IB stamps a bar at its open; the catalog (Nautilus) stamps it at its close, so a minute bar
closing at 09:31 is IB's 09:30 bar. Longer bars are aggregated from minutes; day bars by the
exchange date. formatDate=2 reports intraday bars in epoch seconds, formatDate=1 as
``YYYYMMDD HH:MM:SS America/New_York``; day bars are always ``YYYYMMDD``.
"""

from __future__ import annotations

import re
from decimal import Decimal

import exchange_calendars as xcals
import pandas as pd

from adapters.ib_gateway_sim.market import EXCHANGE_TZ
from adapters.ib_gateway_sim.market import NS
from adapters.ib_gateway_sim.market import MinuteBar
from adapters.ib_gateway_sim.market import in_regular_hours
from adapters.ib_gateway_sim.messages import BarRow

MINUTE_NS = 60 * NS
BAR_MINUTES = {
    "1 min": 1,
    "2 mins": 2,
    "3 mins": 3,
    "5 mins": 5,
    "10 mins": 10,
    "15 mins": 15,
    "20 mins": 20,
    "30 mins": 30,
    "1 hour": 60,
    "1 day": 0,  # by exchange date
}
# IB counts D/W/M/Y durations in trading sessions, not calendar days
SESSIONS_PER_UNIT = {"D": 1, "W": 5, "M": 21, "Y": 252}


class HistoryRequestError(ValueError):
    """A historical request the simulator cannot serve (IB answers these with error 162/321)."""


def duration_start(duration: str, end_ns: int) -> int:
    """Where a request of this duration ending at ``end_ns`` starts.

    Seconds are literal; ``N D`` covers the last N NYSE sessions up to the end (today's
    counts once it has begun), from 04:00 exchange time of the first, so pre-market is in.
    """
    match = re.fullmatch(r"\s*(\d+)\s+([SDWMY])\s*", duration)
    if not match or int(match.group(1)) <= 0:
        raise HistoryRequestError(f"durationStr must look like '3600 S' or '2 D', got {duration!r}")
    count, unit = int(match.group(1)), match.group(2)
    if unit == "S":
        return end_ns - count * NS
    sessions = count * SESSIONS_PER_UNIT[unit]
    calendar = xcals.get_calendar("XNYS")
    end = pd.Timestamp(end_ns, tz="UTC")
    last_day = end.tz_convert(EXCHANGE_TZ).tz_localize(None).normalize()
    days = calendar.sessions_in_range(last_day - pd.Timedelta(days=sessions * 2 + 10), last_day)
    first = days[-sessions] if len(days) >= sessions else days[0]
    return pd.Timestamp(f"{first.date()} 04:00", tz=EXCHANGE_TZ).value


def parse_end(end: str, now_ns: int) -> int:
    """endDateTime: empty (now), 'YYYYMMDD-HH:MM:SS' (UTC) or 'YYYYMMDD HH:MM:SS <tz>'."""
    text = end.strip()
    if not text:
        return now_ns
    try:
        if "-" in text and " " not in text:
            return pd.Timestamp(text.replace("-", " "), tz="UTC").value
        parts = text.split(" ")
        if len(parts) >= 3:
            return pd.Timestamp(" ".join(parts[:2]), tz=parts[2]).value
        return pd.Timestamp(text, tz=EXCHANGE_TZ).value
    except (ValueError, KeyError) as exc:
        raise HistoryRequestError(f"endDateTime {end!r} is not an IB date-time: {exc}") from None


def aggregate(
    minutes: list[MinuteBar],
    bar_size: str,
    use_rth: bool,
    format_date: int,
    wire_offset_ns: int = 0,
) -> list[tuple[int, BarRow]]:
    """(close time ns, IB bar row) pairs, oldest first; close times in replay time, the rows'
    dates in presented time (replay time + ``wire_offset_ns``, see market.as_now_offset).
    Regular hours and day bars follow the replayed (catalog) day."""
    if bar_size not in BAR_MINUTES:
        raise HistoryRequestError(
            f"barSizeSetting {bar_size!r} is not served (served: {', '.join(BAR_MINUTES)})"
        )
    size = BAR_MINUTES[bar_size]
    groups: dict[object, list[MinuteBar]] = {}
    for bar in minutes:
        open_ns = bar.ts_close_ns - MINUTE_NS
        if use_rth and not in_regular_hours(open_ns):
            continue
        if size == 0:
            key: object = pd.Timestamp(open_ns, tz="UTC").tz_convert(EXCHANGE_TZ).date()
        else:
            key = (open_ns + wire_offset_ns) // (size * MINUTE_NS)
        groups.setdefault(key, []).append(bar)
    rows: list[tuple[int, BarRow]] = []
    for key, bars in groups.items():
        volume = sum((b.volume for b in bars), Decimal(0))
        wap = (
            sum((b.close * b.volume for b in bars), Decimal(0)) / volume
            if volume
            else bars[-1].close
        ).quantize(Decimal("0.0001"))
        if size == 0:
            date = key.strftime("%Y%m%d")  # type: ignore[attr-defined]
        else:
            open_ns = int(key) * size * MINUTE_NS  # type: ignore[call-overload]
            if format_date == 2:
                date = str(open_ns // NS)
            else:
                local = pd.Timestamp(open_ns, tz="UTC").tz_convert(EXCHANGE_TZ)
                date = local.strftime("%Y%m%d %H:%M:%S ") + EXCHANGE_TZ
        rows.append(
            (
                bars[-1].ts_close_ns,
                BarRow(
                    date=date,
                    open=bars[0].open,
                    high=max(b.high for b in bars),
                    low=min(b.low for b in bars),
                    close=bars[-1].close,
                    volume=volume,
                    wap=wap,
                    count=len(bars),
                ),
            ),
        )
    return rows


def ib_datetime(ts_ns: int) -> str:
    """The start/end strings of a historicalData message."""
    return (
        pd.Timestamp(ts_ns, tz="UTC").tz_convert(EXCHANGE_TZ).strftime("%Y%m%d %H:%M:%S ")
        + EXCHANGE_TZ
    )
