"""
Reading and writing the Parquet data catalog: bar types, and bars or quotes built from arrays.

Bars are built with ``Bar.from_raw_arrays_to_list`` rather than ``BarDataWrangler``: the
wrangler fails on read-only pandas buffers and we already hold validated numpy arrays.
Nautilus stamps a bar at its close (``ts_event`` = end of the interval); importers convert
open-stamped sources before they get here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.persistence.catalog import ParquetDataCatalog

DEFAULT_CATALOG = Path(__file__).resolve().parent / "data"

# Bar specs the catalog holds, by the name the importer and the CLI use.
BAR_SPECS = {
    "1min": "1-MINUTE-LAST-EXTERNAL",
    "5min": "5-MINUTE-LAST-EXTERNAL",
    "1day": "1-DAY-LAST-EXTERNAL",
}
BAR_INTERVALS = {
    "1min": pd.Timedelta(minutes=1),
    "5min": pd.Timedelta(minutes=5),
    "1day": pd.Timedelta(days=1),
}


def open_catalog(path: Path | str = DEFAULT_CATALOG) -> ParquetDataCatalog:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return ParquetDataCatalog(str(path))


def bar_type_for(instrument_id: InstrumentId, timeframe: str) -> BarType:
    if timeframe not in BAR_SPECS:
        raise ValueError(f"timeframe must be one of {', '.join(BAR_SPECS)}, got {timeframe!r}")
    return BarType.from_str(f"{instrument_id}-{BAR_SPECS[timeframe]}")


def _ns(index: pd.DatetimeIndex) -> np.ndarray:
    if index.tz is None:
        raise ValueError("timestamps must be tz-aware (UTC) before they reach the catalog")
    return index.tz_convert("UTC").as_unit("ns").asi8.astype(np.uint64)


def bars_from_frame(instrument: Instrument, bar_type: BarType, frame: pd.DataFrame) -> list[Bar]:
    """Bars from a frame indexed by close time (tz-aware) with open/high/low/close/volume."""
    ts = _ns(frame.index)
    return Bar.from_raw_arrays_to_list(
        bar_type,
        instrument.price_precision,
        instrument.size_precision,
        np.ascontiguousarray(frame["open"].to_numpy(dtype=np.float64)),
        np.ascontiguousarray(frame["high"].to_numpy(dtype=np.float64)),
        np.ascontiguousarray(frame["low"].to_numpy(dtype=np.float64)),
        np.ascontiguousarray(frame["close"].to_numpy(dtype=np.float64)),
        np.ascontiguousarray(frame["volume"].to_numpy(dtype=np.float64)),
        ts,
        ts.copy(),
    )


def quotes_from_frame(instrument: Instrument, frame: pd.DataFrame) -> list[QuoteTick]:
    """Quotes from a frame indexed by time (tz-aware) with bid/ask/bid_size/ask_size."""
    ts = _ns(frame.index)
    return QuoteTick.from_raw_arrays_to_list(
        instrument.id,
        instrument.price_precision,
        instrument.size_precision,
        np.ascontiguousarray(frame["bid"].to_numpy(dtype=np.float64)),
        np.ascontiguousarray(frame["ask"].to_numpy(dtype=np.float64)),
        np.ascontiguousarray(frame["bid_size"].to_numpy(dtype=np.float64)),
        np.ascontiguousarray(frame["ask_size"].to_numpy(dtype=np.float64)),
        ts,
        ts.copy(),
    )


def write_instrument(catalog: ParquetDataCatalog, instrument: Instrument) -> None:
    if not catalog.instruments(instrument_ids=[instrument.id.value]):
        catalog.write_data([instrument])
