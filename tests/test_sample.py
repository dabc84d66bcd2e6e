"""Tests for the embedded sample: determinism, the NYSE calendar, validity, realism, catalog."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog import sample
from catalog.sample import SAMPLE_SYMBOLS
from catalog.sample import TRADABLE_SYMBOLS
from catalog.sample import ensure_sample_catalog
from catalog.sample import generate_frames

NY = "America/New_York"
WEEK = ("2024-03-04", "2024-03-08")

# SHA-256 of SPY's first hour on 2024-03-04, 04:01-05:00 ET (integer cents, volumes, quotes,
# timestamps). If the generator changes on purpose, bump GENERATOR_VERSION and update this.
SPY_WINDOW_SHA256 = "217606dae151d947777a9fbd4f8ebbf4ce18604f5dbc55a196917a50282e5c5b"


@pytest.fixture(scope="module")
def year() -> dict[str, pd.DataFrame]:
    """The full default range, generated once for the whole module."""
    return generate_frames()


@pytest.fixture(scope="module")
def week() -> dict[str, pd.DataFrame]:
    return generate_frames(SAMPLE_SYMBOLS, *WEEK)


def _window_digest(frame: pd.DataFrame) -> str:
    columns = ["open", "high", "low", "close", "bid", "ask"]
    cents = np.rint(frame[columns].to_numpy() * 100).astype("<i8")
    sizes = frame[["volume", "bid_size", "ask_size"]].to_numpy().astype("<i8")
    stamps = frame.index.as_unit("ns").asi8.astype("<i8")
    return hashlib.sha256(cents.tobytes() + sizes.tobytes() + stamps.tobytes()).hexdigest()


def _et_minutes(index: pd.DatetimeIndex) -> np.ndarray:
    """Bar close as minutes after midnight New York time."""
    local = index.tz_convert(NY)
    return np.asarray(local.hour * 60 + local.minute)


def _daily_closes(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Regular closes, using VIX's last bar time per day as the session close."""
    vix = frames["VIX"]
    close_times = vix.index.to_series().groupby(vix.index.tz_convert(NY).date).max()
    return pd.DataFrame(
        {s: f["close"].reindex(close_times.to_numpy()).to_numpy() for s, f in frames.items()},
        index=close_times.index,
    )


# Determinism -----------------------------------------------------------------------------------


def test_generation_is_deterministic(week: dict[str, pd.DataFrame]) -> None:
    again = generate_frames(SAMPLE_SYMBOLS, *WEEK)
    for symbol in SAMPLE_SYMBOLS:
        pd.testing.assert_frame_equal(week[symbol], again[symbol], check_exact=True)
    first_hour = week["SPY"].loc["2024-03-04 09:00":"2024-03-04 10:00"]
    assert len(first_hour) == 60
    assert _window_digest(first_hour) == SPY_WINDOW_SHA256


def test_a_day_is_the_same_alone_or_within_a_range(week: dict[str, pd.DataFrame]) -> None:
    alone = generate_frames(["SPY", "VIX"], "2024-03-06", "2024-03-06")
    for symbol in ("SPY", "VIX"):
        frame = week[symbol]
        day = frame[frame.index.tz_convert(NY).date == pd.Timestamp("2024-03-06").date()]
        pd.testing.assert_frame_equal(alone[symbol], day, check_exact=True)


def test_the_seed_changes_the_data(week: dict[str, pd.DataFrame]) -> None:
    other = generate_frames(["SPY"], *WEEK, seed=7)
    assert not other["SPY"]["close"].equals(week["SPY"]["close"])


def test_rejects_unknown_symbols_and_ranges_outside_the_sample() -> None:
    with pytest.raises(ValueError, match="no MSFT"):
        generate_frames(["MSFT"], *WEEK)
    with pytest.raises(ValueError, match="starts at"):
        generate_frames(["SPY"], "2023-12-01", "2024-01-05")
    with pytest.raises(ValueError, match="no NYSE sessions"):
        generate_frames(["SPY"], "2024-07-04", "2024-07-04")


# Calendar ---------------------------------------------------------------------------------------


def test_sessions_follow_the_nyse_calendar(year: dict[str, pd.DataFrame]) -> None:
    import exchange_calendars as xcals

    days = set(year["SPY"].index.tz_convert(NY).date)
    calendar = xcals.get_calendar("XNYS", start="2024-01-02", end="2024-12-31")
    assert days == {d.date() for d in calendar.sessions}
    for holiday in ("2024-01-15", "2024-03-29", "2024-07-04", "2024-11-28", "2024-12-25"):
        assert pd.Timestamp(holiday).date() not in days
    assert len(days) == 252


def test_extended_hours_every_session(year: dict[str, pd.DataFrame]) -> None:
    for symbol in TRADABLE_SYMBOLS:
        frame = year[symbol]
        local = frame.index.tz_convert(NY)
        minutes = pd.Series(_et_minutes(frame.index), index=local.date)
        first, last = minutes.groupby(level=0).min(), minutes.groupby(level=0).max()
        assert (first == 4 * 60 + 1).all()  # the 04:00-04:01 bar closes at 04:01
        half_days = {pd.Timestamp(d).date() for d in ("2024-07-03", "2024-11-29", "2024-12-24")}
        expected_last = [17 * 60 if d in half_days else 20 * 60 for d in last.index]
        assert (last.to_numpy() == expected_last).all()
        counts = minutes.groupby(level=0).size()
        assert set(counts.unique()) == {960, 780}
        assert frame.index.is_monotonic_increasing and frame.index.is_unique


def test_half_day_regular_session_ends_at_13(year: dict[str, pd.DataFrame]) -> None:
    day = pd.Timestamp("2024-11-29").date()
    vix = year["VIX"][year["VIX"].index.tz_convert(NY).date == day]
    assert _et_minutes(vix.index).min() == 9 * 60 + 31
    assert _et_minutes(vix.index).max() == 13 * 60
    assert len(vix) == 210
    spy = year["SPY"][year["SPY"].index.tz_convert(NY).date == day]
    minutes = _et_minutes(spy.index)
    # After 13:00 it is after-hours: extended-hours spreads, and no bar after 17:00.
    after = spy[minutes > 13 * 60]
    assert ((after["ask"] - after["bid"]) >= 0.029).all()
    assert minutes.max() == 17 * 60
    closing_auction = spy["volume"][minutes == 13 * 60].iloc[0]
    assert closing_auction == spy["volume"][minutes > 12 * 60].max()


@pytest.mark.parametrize(
    ("day", "first_regular_utc"),
    [
        ("2024-03-08", "14:31"),  # EST, the Friday before the switch
        ("2024-03-11", "13:31"),  # EDT
        ("2024-11-01", "13:31"),  # EDT, the Friday before the switch
        ("2024-11-04", "14:31"),  # EST
    ],
)
def test_dst_moves_the_utc_grid(
    year: dict[str, pd.DataFrame],
    day: str,
    first_regular_utc: str,
) -> None:
    date = pd.Timestamp(day).date()
    vix = year["VIX"][year["VIX"].index.tz_convert(NY).date == date]
    assert vix.index[0].strftime("%H:%M") == first_regular_utc
    assert vix.index[0].tz_convert(NY).strftime("%H:%M") == "09:31"
    spy = year["SPY"][year["SPY"].index.tz_convert(NY).date == date]
    assert vix.index[0] in spy.index
    assert spy.index[0].tz_convert(NY).strftime("%H:%M") == "04:01"
    assert spy.index[-1].tz_convert(NY).strftime("%H:%M") == "20:00"


# Validity ---------------------------------------------------------------------------------------


def test_bars_are_valid_at_cent_ticks(year: dict[str, pd.DataFrame]) -> None:
    for symbol, frame in year.items():
        o, h, l, c = (frame[col].to_numpy() for col in ("open", "high", "low", "close"))
        assert (h >= np.maximum(o, c)).all(), symbol
        assert (l <= np.minimum(o, c)).all(), symbol
        assert (l > 0).all(), symbol
        for prices in (o, h, l, c):
            cents = prices * 100
            assert np.abs(cents - np.rint(cents)).max() < 1e-6, symbol
        volume = frame["volume"].to_numpy()
        assert volume.dtype.kind == "i" and (volume >= 0).all()
        if symbol == "VIX":
            assert (volume == 0).all()
            assert set(_et_minutes(frame.index)) <= set(range(9 * 60 + 31, 16 * 60 + 1))


def test_quotes_bracket_the_close(year: dict[str, pd.DataFrame]) -> None:
    assert "bid" not in year["VIX"].columns
    for symbol in TRADABLE_SYMBOLS:
        frame = year[symbol]
        bid, ask, close = frame["bid"], frame["ask"], frame["close"]
        assert (bid < ask).all() and (bid <= close).all() and (close <= ask).all(), symbol
        assert (bid > 0).all()
        for size in (frame["bid_size"], frame["ask_size"]):
            assert (size > 0).all() and (size % 100 == 0).all()
        spread = np.rint((ask - bid) * 100)
        minutes = _et_minutes(frame.index)
        regular = (minutes > 9 * 60 + 30) & (minutes <= 13 * 60)  # regular on every day
        assert spread[regular].median() == 1, symbol
        assert spread[regular].quantile(0.99) <= 3, symbol
        assert spread[~regular & (minutes < 9 * 60 + 30)].min() >= 2, symbol
        assert spread[~regular & (minutes < 9 * 60 + 30)].mean() >= 3.5, symbol


# Realism ----------------------------------------------------------------------------------------


def test_price_levels_are_realistic(year: dict[str, pd.DataFrame]) -> None:
    ranges = {
        "SPY": (450, 620),
        "QQQ": (380, 540),
        "AAPL": (165, 260),
        "SH": (10, 15),
        "PSQ": (8, 12.5),
        "VIX": (10, 40),
    }
    for symbol, (low, high) in ranges.items():
        assert low <= year[symbol]["low"].min() and year[symbol]["high"].max() <= high, symbol
    assert year["SPY"]["close"].iloc[-1] > year["SPY"]["close"].iloc[0]  # a 2024-like up year


def test_factor_structure_and_inverse_etfs(year: dict[str, pd.DataFrame]) -> None:
    returns = np.log(_daily_closes(year)).diff().dropna()
    corr = returns.corr()
    assert corr.loc["SH", "SPY"] < -0.97
    assert corr.loc["PSQ", "QQQ"] < -0.97
    assert corr.loc["SPY", "QQQ"] > 0.85
    assert 0.4 < corr.loc["AAPL", "SPY"] < 0.85
    assert corr.loc["VIX", "SPY"] < -0.5
    # -1x daily resets compound: over the year SH loses more than SPY gains.
    closes = _daily_closes(year)
    spy_gain = closes["SPY"].iloc[-1] / closes["SPY"].iloc[0] - 1
    sh_change = closes["SH"].iloc[-1] / closes["SH"].iloc[0] - 1
    assert sh_change < -spy_gain / (1 + spy_gain)


def test_regimes_include_sell_offs_and_overnight_gaps(year: dict[str, pd.DataFrame]) -> None:
    spy_returns = _daily_closes(year)["SPY"].pct_change().dropna()
    assert (spy_returns < -0.02).sum() >= 3
    assert 0.10 < spy_returns.std() * np.sqrt(252) < 0.22
    spy = year["SPY"]
    local_day = spy.index.tz_convert(NY).date
    first_open = spy["open"].groupby(local_day).first()
    last_close = spy["close"].groupby(local_day).last().shift()
    gaps = (first_open / last_close - 1).dropna().abs()
    assert (gaps > 0.001).mean() > 0.3  # most mornings open away from last night's print


def test_volume_is_u_shaped(year: dict[str, pd.DataFrame]) -> None:
    spy = year["SPY"]
    minutes = _et_minutes(spy.index)
    mean_by_minute = spy["volume"].groupby(minutes).mean()
    open_hour = mean_by_minute.loc[9 * 60 + 31 : 10 * 60].mean()
    midday = mean_by_minute.loc[12 * 60 : 13 * 60].mean()
    close_half_hour = mean_by_minute.loc[15 * 60 + 31 : 16 * 60].mean()
    pre_market = mean_by_minute.loc[4 * 60 + 1 : 9 * 60].mean()
    after_hours = mean_by_minute.loc[17 * 60 + 1 : 20 * 60].mean()
    assert open_hour > 1.5 * midday and close_half_hour > 1.5 * midday
    assert pre_market < 0.2 * midday and after_hours < 0.2 * midday
    daily = spy["volume"].groupby(spy.index.tz_convert(NY).date).sum()
    assert 30e6 < daily.median() < 90e6


# Catalog ----------------------------------------------------------------------------------------


def test_ensure_sample_catalog_writes_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "catalog"
    returned = ensure_sample_catalog(path, progress=False, start=WEEK[0], end=WEEK[1])
    assert returned == path.resolve()
    assert (path / sample.SAMPLE_MARKER).exists()
    assert not list(tmp_path.glob(".catalog.*"))  # the temp folder was renamed away

    frames = generate_frames(SAMPLE_SYMBOLS, *WEEK)
    catalog = ParquetDataCatalog(str(path))
    bars = catalog.bars(bar_types=["SPY.SIM-1-MINUTE-LAST-EXTERNAL"])
    assert len(bars) == len(frames["SPY"])
    assert bars[0].ts_event == frames["SPY"].index[0].value
    assert float(bars[0].close) == frames["SPY"]["close"].iloc[0]
    quotes = catalog.quote_ticks(instrument_ids=["SPY.SIM"])
    assert len(quotes) == len(frames["SPY"])
    assert float(quotes[-1].bid_price) == frames["SPY"]["bid"].iloc[-1]
    assert len(catalog.bars(bar_types=["VIX.SIM-1-MINUTE-LAST-EXTERNAL"])) == len(frames["VIX"])
    assert not catalog.quote_ticks(instrument_ids=["VIX.SIM"])
    assert {str(i.id) for i in catalog.instruments()} == {f"{s}.SIM" for s in SAMPLE_SYMBOLS}

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the sample was generated again")

    monkeypatch.setattr(sample, "_generate", must_not_run)
    marker_mtime = (path / sample.SAMPLE_MARKER).stat().st_mtime_ns
    assert ensure_sample_catalog(path, progress=False, start=WEEK[0], end=WEEK[1]) == path.resolve()
    assert (path / sample.SAMPLE_MARKER).stat().st_mtime_ns == marker_mtime


def test_ensure_sample_catalog_replaces_an_older_sample(tmp_path: Path) -> None:
    path = tmp_path / "catalog"
    ensure_sample_catalog(path, progress=False, start="2024-03-04", end="2024-03-04")
    ensure_sample_catalog(path, progress=False, start="2024-03-04", end="2024-03-05")
    bars = ParquetDataCatalog(str(path)).bars(bar_types=["SPY.SIM-1-MINUTE-LAST-EXTERNAL"])
    assert len(bars) == 2 * 960
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog"]


def test_interrupted_run_leaves_no_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sample, "quotes_from_frame", interrupted)
    path = tmp_path / "catalog"
    with pytest.raises(KeyboardInterrupt):
        ensure_sample_catalog(path, progress=False, start="2024-03-04", end="2024-03-04")
    assert not path.exists()
    assert not list(tmp_path.iterdir())


def test_ensure_sample_catalog_refuses_a_foreign_catalog(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(FileExistsError, match="not the sample"):
        ensure_sample_catalog(tmp_path, progress=False, start="2024-03-04", end="2024-03-04")
