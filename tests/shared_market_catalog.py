"""
A temporary catalog from the shared real data (../shared/data/market), for the end-to-end
session backtest, written with catalog/store.py while the catalog importer is not on main.

- 1-minute and 5-minute Interactive Brokers bars, naive US/Eastern, stamped at their OPEN:
  moved to their close (Nautilus stamps bars at the close), regular hours only.
- Volume units are mixed (README): some days are in lots of 100 shares. Per symbol, the daily
  totals then form two clusters about two decades apart; when the sorted log10 daily totals
  have a gap wider than 0.7 decades (a factor of 5, never seen between days of one unit), the
  days below the gap are multiplied by 100. The loader returns the days it scaled.
- VIX: CBOE daily closes as VIX.SIM 1-DAY bars stamped at 16:00 ET of their date (when the
  close is known), so a session only ever sees the previous sessions' VIX.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from catalog.instruments import make_instrument
from catalog.store import bar_type_for
from catalog.store import bars_from_frame
from catalog.store import open_catalog
from catalog.store import write_instrument
from strategies.sessions import EXCHANGE_TZ

SHARED_MARKET = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "market"
if not SHARED_MARKET.is_dir():
    SHARED_MARKET = Path("/work/shared/data/market")
ONE_MINUTE = SHARED_MARKET / "intraday_1min" / "jeffreymalkus_alert_overlay"
FIVE_MINUTE = SHARED_MARKET / "intraday_5min" / "jeffreymalkus_alert_overlay"
VIX_FILE = SHARED_MARKET / "vix" / "CBOE_VIX_History_1990-01-02_2026-07-07.csv"


def read_ib_bars(path: Path, minutes: int, start: dt.date, end: dt.date) -> tuple[pd.DataFrame, list[dt.date]]:
    raw = pd.read_csv(path, parse_dates=["datetime"])
    opened = raw["datetime"].dt.tz_localize(EXCHANGE_TZ)
    local_time = opened.dt.time
    keep = (local_time >= dt.time(9, 30)) & (local_time < dt.time(16, 0))
    keep &= (opened.dt.date >= start) & (opened.dt.date <= end)
    frame = raw.loc[keep, ["open", "high", "low", "close", "volume"]].astype(float)
    frame.index = pd.DatetimeIndex(opened[keep] + pd.Timedelta(minutes=minutes)).tz_convert("UTC")
    days = frame.index.tz_convert(EXCHANGE_TZ).date
    totals = np.log10(frame.groupby(days)["volume"].sum().clip(lower=1)).sort_values()
    scaled: list[dt.date] = []
    gaps = totals.diff()
    if len(totals) > 1 and gaps.max() > 0.7:
        threshold = totals.iloc[int(np.argmax(gaps.to_numpy()[1:])) + 1]
        scaled = sorted(totals.index[totals < threshold])
        frame.loc[np.isin(days, scaled), "volume"] *= 100
    return frame.round(4), scaled


def write_vix(catalog_path: Path, start: dt.date, end: dt.date) -> None:
    catalog = open_catalog(catalog_path)
    vix = make_instrument("VIX")
    write_instrument(catalog, vix)
    raw = pd.read_csv(VIX_FILE)
    dates = pd.to_datetime(raw["DATE"], format="%m/%d/%Y")
    keep = (dates.dt.date >= start - dt.timedelta(days=10)) & (dates.dt.date <= end)
    frame = raw.loc[keep, ["OPEN", "HIGH", "LOW", "CLOSE"]].astype(float)
    frame.columns = ["open", "high", "low", "close"]
    frame["volume"] = 0.0
    closes = [pd.Timestamp(dt.datetime.combine(d, dt.time(16)), tz=EXCHANGE_TZ) for d in dates[keep].dt.date]
    frame.index = pd.DatetimeIndex(closes).tz_convert("UTC")
    catalog.write_data(bars_from_frame(vix, bar_type_for(vix.id, "1day"), frame))


def build_catalog(
    path: Path,
    one_minute: tuple[str, ...],
    five_minute: tuple[str, ...],
    start: dt.date,
    end: dt.date,
) -> dict[str, list[dt.date]]:
    """Writes the catalog; returns, per symbol, the days whose lot volumes were scaled."""
    catalog = open_catalog(path)
    scaled = {}
    for symbols, folder, timeframe, minutes in (
        (one_minute, ONE_MINUTE, "1min", 1),
        (five_minute, FIVE_MINUTE, "5min", 5),
    ):
        for symbol in symbols:
            instrument = make_instrument(symbol)
            write_instrument(catalog, instrument)
            frame, scaled[symbol] = read_ib_bars(folder / f"{symbol}_{timeframe}.csv.gz", minutes, start, end)
            catalog.write_data(bars_from_frame(instrument, bar_type_for(instrument.id, timeframe), frame))
    write_vix(path, start, end)
    return scaled
