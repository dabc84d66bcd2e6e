"""Hand-built catalogs of SPY regular-session minute bars (test data for the CLI and sweeps)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from catalog.instruments import make_instrument
from catalog.store import bar_type_for
from catalog.store import bars_from_frame
from catalog.store import open_catalog
from catalog.store import write_instrument


def write_spy_minutes(
    path: Path,
    sessions: tuple[str, ...],
    close_at: Callable[[np.ndarray], np.ndarray],
    volume: float,
) -> Path:
    """
    A catalog at `path` with SPY's 390 minutes of each session (stamped at their close):
    `close_at(step)` gives the close of each minute counted from the first, open = close,
    high/low 5 cents either side, a fixed volume; prices rounded to the cent.
    """
    catalog = open_catalog(path)
    instrument = make_instrument("SPY")
    write_instrument(catalog, instrument)
    frames = []
    for day in sessions:
        opens = pd.date_range(f"{day} 09:30", periods=390, freq="1min", tz="America/New_York")
        frames.append(pd.DataFrame(index=opens + pd.Timedelta(minutes=1)))
    frame = pd.concat(frames)
    close = close_at(np.arange(len(frame)))
    frame["open"] = close
    frame["close"] = close
    frame["high"] = close + 0.05
    frame["low"] = close - 0.05
    frame["volume"] = volume
    frame.index = frame.index.tz_convert("UTC")
    bar_type = bar_type_for(instrument.id, "1min")
    catalog.write_data(bars_from_frame(instrument, bar_type, frame.round(2)))
    return path
