"""
RSI signals on intraday and NYSE-weekly bars: the weekly bar aggregator Nautilus lacks, a
Wilder RSI on the 0-100 scale traders read, and cross detectors.

Weekly bars. Nautilus's WEEK bars close at Monday 00:00 UTC, which cuts the US trading week
in the wrong place. A week here ends at the close of its last NYSE session (Friday 16:00 New
York, or Thursday's close when Friday is a holiday, or an early close), read from the real
exchange calendar (strategies/sessions.py). The bar is stamped at that close, as Nautilus
stamps bars at their close.

Decision on after-hours minutes: the minutes after the last session's close (Friday
after-hours) and the weekend belong to the *next* week, with Monday's pre-market. The weekly
close is then the official closing price of the week, which is what weekly charts and the
traders' weekly RSI use, and the weekly bar can be emitted the moment that session closes
instead of waiting for the after-hours session to end.

Empty intraday bars. With Nautilus's default `time_bars_build_with_no_updates=True` the engine
emits a flat, zero-volume 15-minute bar for every interval with no minute data (nights,
weekends). Fed to a Wilder RSI those bars decay both averages every night and make the next
real move look huge, so `RsiSignals` ignores bars with zero volume: they carry no trade.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

import pandas as pd
from nautilus_trader.indicators import MovingAverageType
from nautilus_trader.indicators import RelativeStrengthIndex
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Quantity

from strategies.sessions import EXCHANGE_TZ
from strategies.sessions import session_for


@cache
def _week_last_close_ns(monday: dt.date) -> int | None:
    """The close (UTC ns) of the last NYSE session in the Monday..Sunday week, or None."""
    for offset in range(6, -1, -1):
        session = session_for(monday + dt.timedelta(days=offset))
        if session is not None:
            return session.close.value
    return None


def week_close_ns(ts_ns: int) -> int:
    """
    The close of the NYSE week an instant belongs to: the first weekly close at or after it.

    An instant after the last session's close of its calendar week (Friday after-hours, the
    weekend) belongs to the following week.
    """
    local = pd.Timestamp(ts_ns, tz="UTC").tz_convert(EXCHANGE_TZ)
    monday = local.date() - dt.timedelta(days=local.weekday())
    for _ in range(3):  # a whole week without sessions is not known; three is a safe bound
        close = _week_last_close_ns(monday)
        if close is not None and ts_ns <= close:
            return close
        monday += dt.timedelta(days=7)
    raise ValueError(f"no NYSE session within three weeks after {local.isoformat()}")


def weekly_bar_type(instrument_id: InstrumentId) -> BarType:
    """The label of the NYSE weekly bars (built by this module, not by the engine)."""
    return BarType.from_str(f"{instrument_id}-1-WEEK-LAST-INTERNAL")


class NyseWeeklyBarAggregator:
    """
    Builds weekly bars from intraday bars; a week ends at the close of its last NYSE session.

    Feed it bars in time order (stamped at their close). A week's bar is returned by the
    update that carries the bar stamped at the week's close, or, when that bar is missing,
    by the first update after it. The intraday bars must not straddle a session close
    (15-minute bars never do: NYSE closes on a quarter hour).
    """

    def __init__(self, bar_type: BarType) -> None:
        self.bar_type = bar_type
        self._close_ns: int | None = None
        self._open = self._high = self._low = self._close = None
        self._volume_raw = 0
        self._volume_precision = 0

    def update(self, bar: Bar) -> list[Bar]:
        done: list[Bar] = []
        ts = bar.ts_event
        if self._close_ns is not None and ts > self._close_ns:
            done.append(self._build())
        if self._close_ns is None:
            self._close_ns = week_close_ns(ts)
            self._open, self._high, self._low = bar.open, bar.high, bar.low
            self._volume_raw = bar.volume.raw
            self._volume_precision = bar.volume.precision
        else:
            if bar.high > self._high:
                self._high = bar.high
            if bar.low < self._low:
                self._low = bar.low
            self._volume_raw += bar.volume.raw
        self._close = bar.close
        if ts == self._close_ns:
            done.append(self._build())
        return done

    def _build(self) -> Bar:
        bar = Bar(
            self.bar_type,
            self._open,
            self._high,
            self._low,
            self._close,
            Quantity.from_raw(self._volume_raw, self._volume_precision),
            self._close_ns,
            self._close_ns,
        )
        self._close_ns = None
        return bar

    def reset(self) -> None:
        self._close_ns = None


class CrossAbove:
    """
    Fires once when a value goes from strictly below `level` to strictly above it.

    A value equal to the level neither arms nor fires, so a touch of the level from above
    and back (35, 30, 35) is no cross, while 25, 30, 35 is one (fires at 35).
    """

    def __init__(self, level: float) -> None:
        self.level = level
        self._armed = False

    def update(self, value: float) -> bool:
        if value < self.level:
            self._armed = True
            return False
        if value > self.level and self._armed:
            self._armed = False
            return True
        return False

    def reset(self) -> None:
        self._armed = False


def wilder_rsi(period: int) -> RelativeStrengthIndex:
    """Nautilus's RSI with Wilder smoothing (alpha = 1/period); its value runs 0..1."""
    return RelativeStrengthIndex(period, MovingAverageType.WILDER)


@dataclass(frozen=True)
class SignalUpdate:
    """What one intraday bar changed; RSI values on the 0-100 scale (None until warm)."""

    ts_ns: int
    rsi_intraday: float | None
    buy_signal: bool
    weekly_bars: tuple[Bar, ...]
    rsi_weekly: float | None
    exit_cross: bool


class RsiSignals:
    """
    The core-RSI strategy's signals: an intraday Wilder RSI crossing above `buy_level` and a
    weekly (NYSE week) Wilder RSI crossing above `exit_level`. Levels are 0-100.

    Keeps the history of both RSIs (timestamp ns, value 0-100) for tests and reports.
    """

    def __init__(
        self,
        instrument_id: InstrumentId,
        period: int,
        buy_level: float,
        exit_level: float,
    ) -> None:
        self.rsi_intraday = wilder_rsi(period)
        self.rsi_weekly = wilder_rsi(period)
        self.weekly = NyseWeeklyBarAggregator(weekly_bar_type(instrument_id))
        self.buy_cross = CrossAbove(buy_level)
        self.exit_cross = CrossAbove(exit_level)
        self.exit_level = exit_level
        self.history_intraday: list[tuple[int, float]] = []
        self.history_weekly: list[tuple[int, float]] = []
        self.empty_bars_skipped = 0

    @property
    def weekly_value(self) -> float | None:
        return self.rsi_weekly.value * 100 if self.rsi_weekly.initialized else None

    def update(self, bar: Bar) -> SignalUpdate | None:
        """Feed one intraday bar; None for an empty (zero-volume) bar, which is ignored."""
        if bar.volume.raw == 0:
            self.empty_bars_skipped += 1
            return None
        weekly_bars = self.weekly.update(bar)
        exit_cross = False
        for weekly_bar in weekly_bars:
            self.rsi_weekly.handle_bar(weekly_bar)
            if self.rsi_weekly.initialized:
                value = self.rsi_weekly.value * 100
                self.history_weekly.append((weekly_bar.ts_event, value))
                exit_cross = self.exit_cross.update(value) or exit_cross
        self.rsi_intraday.handle_bar(bar)
        buy = False
        value = None
        if self.rsi_intraday.initialized:
            value = self.rsi_intraday.value * 100
            self.history_intraday.append((bar.ts_event, value))
            buy = self.buy_cross.update(value)
        return SignalUpdate(
            bar.ts_event, value, buy, tuple(weekly_bars), self.weekly_value, exit_cross
        )

    def reset(self) -> None:
        self.rsi_intraday.reset()
        self.rsi_weekly.reset()
        self.weekly.reset()
        self.buy_cross.reset()
        self.exit_cross.reset()
        self.history_intraday.clear()
        self.history_weekly.clear()
