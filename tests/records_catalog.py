"""A small hand-built minute-bar catalog on which the MA cross trades many times (test data)."""

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
from strategies.sessions import session_for

SESSIONS = (dt.date(2024, 3, 4), dt.date(2024, 3, 5), dt.date(2024, 3, 6))


def oscillating_bars(start_price: float, sessions: tuple[dt.date, ...], seed: int) -> pd.DataFrame:
    """Regular-hours minute bars (stamped at their close): a sine wave with noise, in cents."""
    rng = np.random.default_rng(seed)
    frames = []
    for date in sessions:
        session = session_for(date)
        index = pd.date_range(session.open + pd.Timedelta(minutes=1), session.close, freq="1min")
        steps = np.arange(len(index))
        close = start_price + 2.0 * np.sin(steps / 9.0) + rng.normal(0, 0.05, len(index)).cumsum()
        close = np.round(close, 2)
        open_ = np.round(np.concatenate([[close[0]], close[:-1]]), 2)
        high = np.maximum(open_, close) + 0.02
        low = np.minimum(open_, close) - 0.02
        frames.append(pd.DataFrame(
            {"open": open_, "high": high, "low": low, "close": close, "volume": 10_000.0}, index=index,
        ))
    return pd.concat(frames)


def build_catalog(path: Path, symbols: tuple[str, ...] = ("SPY", "QQQ")) -> Path:
    catalog = open_catalog(path)
    for n, symbol in enumerate(symbols):
        instrument = make_instrument(symbol)
        write_instrument(catalog, instrument)
        frame = oscillating_bars(400.0 + 50 * n, SESSIONS, seed=n + 1)
        catalog.write_data(bars_from_frame(instrument, bar_type_for(instrument.id, "1min"), frame))
    return path
