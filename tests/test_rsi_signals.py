"""NYSE weekly bars, RSI crosses, and both RSIs against an independent pandas Wilder RSI."""

from __future__ import annotations

from decimal import Decimal

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.instruments import backtest_instrument_id
from strategies.core_rsi import CoreRSI
from strategies.core_rsi import CoreRSIConfig
from strategies.rsi_signals import CrossAbove
from strategies.rsi_signals import NyseWeeklyBarAggregator
from strategies.rsi_signals import week_close_ns
from strategies.rsi_signals import weekly_bar_type
from tests.engine_harness import make_engine
from tests.shared_data import write_spy_year_catalog

SPY = backtest_instrument_id("SPY")


def utc(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value


def test_week_ends_at_last_session_close_not_monday_utc() -> None:
    # Good Friday 2024-03-29 is a holiday: that week ends Thursday 16:00 New York (20:00 UTC).
    assert week_close_ns(utc("2024-03-27 15:00")) == utc("2024-03-28 20:00")
    # The close minute itself belongs to the week ...
    assert week_close_ns(utc("2024-03-28 20:00")) == utc("2024-03-28 20:00")
    # ... the after-hours minute after it, and the weekend, belong to the next week.
    assert week_close_ns(utc("2024-03-28 20:01")) == utc("2024-04-05 20:00")
    assert week_close_ns(utc("2024-04-06 15:00")) == utc("2024-04-12 20:00")
    # Thanksgiving week: Friday 2024-11-29 closes early at 13:00 New York (18:00 UTC).
    assert week_close_ns(utc("2024-11-25 14:30")) == utc("2024-11-29 18:00")
    # Winter time: the close is 21:00 UTC.
    assert week_close_ns(utc("2024-12-02 14:30")) == utc("2024-12-06 21:00")


def _bar(bar_type: BarType, ts: str, o: str, h: str, lo: str, c: str, v: int = 10) -> Bar:
    from nautilus_trader.model.objects import Price
    from nautilus_trader.model.objects import Quantity

    return Bar(
        bar_type,
        Price.from_str(o),
        Price.from_str(h),
        Price.from_str(lo),
        Price.from_str(c),
        Quantity.from_int(v),
        utc(ts),
        utc(ts),
    )


def test_weekly_aggregator_emits_at_the_last_session_close() -> None:
    source = BarType.from_str(f"{SPY}-15-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL")
    aggregator = NyseWeeklyBarAggregator(weekly_bar_type(SPY))
    assert aggregator.update(_bar(source, "2024-04-01 13:45", "100", "101", "99", "100.5")) == []
    assert aggregator.update(_bar(source, "2024-04-03 15:00", "100.5", "104", "100", "103")) == []
    closing = aggregator.update(_bar(source, "2024-04-05 20:00", "103", "103.5", "98", "99"))
    assert len(closing) == 1
    week = closing[0]
    assert (str(week.open), str(week.high), str(week.low), str(week.close)) == (
        "100",
        "104",
        "98",
        "99",
    )
    assert week.volume.as_double() == 30
    assert week.ts_event == utc("2024-04-05 20:00")
    # Friday after-hours opens the next week; its bar is emitted late when the close bar is missing.
    assert aggregator.update(_bar(source, "2024-04-05 20:15", "99", "99.5", "99", "99.2")) == []
    late = aggregator.update(_bar(source, "2024-04-15 13:45", "100", "100", "100", "100"))
    assert [b.ts_event for b in late] == [utc("2024-04-12 20:00")]
    assert str(late[0].close) == "99.2"


def test_cross_needs_a_value_strictly_below_then_strictly_above() -> None:
    touch = CrossAbove(30)
    assert [touch.update(v) for v in (35, 30, 35)] == [False, False, False]
    cross = CrossAbove(30)
    assert [cross.update(v) for v in (25, 30, 35, 40, 29, 31)] == [
        False,
        False,
        True,
        False,
        False,
        True,
    ]


def pandas_wilder_rsi(closes: pd.Series, period: int) -> pd.Series:
    """Wilder RSI 0-100: smoothing alpha 1/period, seeded (like Nautilus) with a zero change."""
    change = closes.diff().fillna(0.0)
    gain = change.clip(lower=0).ewm(alpha=1 / period, adjust=False).mean()
    loss = (-change).clip(lower=0).ewm(alpha=1 / period, adjust=False).mean()
    rsi = 100 - 100 / (1 + gain / loss)
    rsi[loss == 0] = 100.0
    return rsi.iloc[period - 1 :]


def textbook_wilder_rsi(closes: pd.Series, period: int) -> pd.Series:
    """Wilder's original: seeded with the simple mean of the first `period` changes."""
    change = closes.diff().dropna().to_numpy()
    gains, losses = np.clip(change, 0, None), np.clip(-change, 0, None)
    g, lo = gains[:period].mean(), losses[:period].mean()
    out = [100 - 100 / (1 + g / lo)]
    for gi, li in zip(gains[period:], losses[period:], strict=True):
        g = (g * (period - 1) + gi) / period
        lo = (lo * (period - 1) + li) / period
        out.append(100 - 100 / (1 + g / lo))
    return pd.Series(out, index=closes.index[period:])


def nyse_week_ends(start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    """Independent of strategies/: the close of each week's last session, from the calendar."""
    calendar = xcals.get_calendar("XNYS", start="2024-01-01", end="2025-12-31")
    schedule = calendar.schedule.loc[
        (start - pd.Timedelta(days=7)).date() : (end + pd.Timedelta(days=14)).date()
    ]
    closes = schedule["close"]
    week = pd.Index([f"{d.isocalendar()[0]}-{d.isocalendar()[1]:02d}" for d in closes.index])
    ends = closes.groupby(week).max()
    return np.sort(pd.DatetimeIndex(ends.to_numpy()).tz_localize(None).as_unit("ns").asi8)


@pytest.fixture(scope="module")
def spy_year_run(tmp_path_factory: pytest.TempPathFactory):
    catalog_path = write_spy_year_catalog(tmp_path_factory.mktemp("spy_catalog"))
    catalog = ParquetDataCatalog(str(catalog_path))
    bars = catalog.query(data_cls=Bar, identifiers=[f"{SPY}-1-MINUTE-LAST-EXTERNAL"])
    closes = pd.Series(
        [b.close.as_double() for b in bars],
        index=pd.to_datetime([b.ts_event for b in bars], utc=True),
    )
    engine, _ = make_engine(pd.DataFrame(), capital=Decimal("100000"), bars_list=bars)
    strategy = CoreRSI(
        CoreRSIConfig(
            instrument_id=SPY,
            bar_type=BarType.from_str(f"{SPY}-15-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL"),
            fallback_bar_type=BarType.from_str(f"{SPY}-1-MINUTE-LAST-EXTERNAL"),
        ),
    )
    engine.add_strategy(strategy)
    engine.run()
    yield closes, strategy
    engine.dispose()


def test_15_minute_rsi_matches_pandas_on_the_spy_year(spy_year_run) -> None:
    closes, strategy = spy_year_run
    period = strategy.config.rsi_period
    fifteen = closes.resample("15min", label="right", closed="right").last().dropna()
    fifteen = fifteen[
        fifteen.index <= closes.index[-1]
    ]  # the engine never closes the last, partial one
    expected = pandas_wilder_rsi(fifteen, period)
    got = pd.Series(dict(strategy.signals.history_intraday))
    got.index = pd.to_datetime(got.index, utc=True)
    assert len(got) == len(expected) > 6000
    assert (got.index == expected.index).all()
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-9)
    # Wilder's textbook seeding differs only at the start: identical after the warm-up.
    textbook = textbook_wilder_rsi(fifteen, period)
    np.testing.assert_allclose(
        got.iloc[300:].to_numpy(),
        textbook.reindex(got.index).iloc[300:].to_numpy(),
        rtol=0,
        atol=1e-9,
    )


def test_weekly_rsi_matches_pandas_on_nyse_weeks(spy_year_run) -> None:
    closes, strategy = spy_year_run
    period = strategy.config.rsi_period
    ends = nyse_week_ends(closes.index[0], closes.index[-1])
    ts = closes.index.asi8
    week_of = ends[np.searchsorted(ends, ts, side="left")]
    weekly = closes.groupby(week_of).last()
    weekly = weekly[weekly.index <= ts[-1]]  # the last, unfinished week is not a bar yet
    expected = pandas_wilder_rsi(weekly, period)
    got = pd.Series(dict(strategy.signals.history_weekly))
    assert len(got) == len(expected) >= 45
    assert list(got.index) == list(expected.index)
    # The weeks end at the last session's close: Thursday 2024-03-28 (Good Friday), Fridays
    # at 16:00 New York otherwise, never Monday 00:00 UTC.
    stamps = pd.to_datetime(got.index, utc=True).tz_convert("America/New_York")
    assert set(stamps.time.astype(str)) <= {"16:00:00", "13:00:00"}
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-9)
