"""Engine settings every node shares, backtest and live alike, so bars mean the same thing."""

from __future__ import annotations

from nautilus_trader.config import DataEngineConfig
from nautilus_trader.config import LiveDataEngineConfig

SHARED_DATA_ENGINE = {"time_bars_build_with_no_updates": False}


def data_engine_config() -> DataEngineConfig:
    """
    Time bars built inside the engine (5- and 15-minute from 1-minute) only when the market
    traded: by default Nautilus also emits a flat bar every interval through nights and
    weekends, which would feed indicators hundreds of fake bars between sessions.
    """
    return DataEngineConfig(**SHARED_DATA_ENGINE)


def live_data_engine_config() -> LiveDataEngineConfig:
    """The same settings for a live TradingNode."""
    return LiveDataEngineConfig(**SHARED_DATA_ENGINE)
