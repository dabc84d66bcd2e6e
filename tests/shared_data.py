"""Where the shared real market data lives, and skipping (never in CI) when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from catalog.instruments import make_instrument
from catalog.store import bar_type_for
from catalog.store import bars_from_frame
from catalog.store import open_catalog
from catalog.store import write_instrument

ROOT = Path(__file__).resolve().parent.parent
SPY_YEAR = "intraday_1min/dawsh2_ADMF-PC/SPY_1m_2024-03-26_2025-04-02.parquet"


def market_data_dir() -> Path | None:
    """shared/data/market beside the project (or beside one of its parent folders)."""
    for base in (ROOT, *ROOT.parents):
        candidate = base.parent / "shared" / "data" / "market"
        if candidate.is_dir():
            return candidate
    return None


def shared_file(relative: str) -> Path:
    """The path of a shared data file; skips the test where it is absent, fails in CI."""
    base = market_data_dir()
    path = base / relative if base is not None else None
    if path is None or not path.is_file():
        message = f"shared market data {relative} not found beside {ROOT}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def spy_year_frame() -> pd.DataFrame:
    """The SPY year as minute bars stamped at their close (the file stamps the open)."""
    raw = pd.read_parquet(shared_file(SPY_YEAR))
    frame = raw.set_index(raw["timestamp"] + pd.Timedelta(minutes=1))
    return frame[["open", "high", "low", "close", "volume"]]


def write_spy_year_catalog(path: Path) -> Path:
    frame = spy_year_frame()
    catalog = open_catalog(path)
    instrument = make_instrument("SPY")
    write_instrument(catalog, instrument)
    catalog.write_data(bars_from_frame(instrument, bar_type_for(instrument.id, "1min"), frame))
    return path
