"""Configs of the replay data client and the replay (sandbox) execution client."""

from __future__ import annotations

from nautilus_trader.adapters.sandbox.config import SandboxExecutionClientConfig
from nautilus_trader.backtest.config import ImportableFeeModelConfig
from nautilus_trader.backtest.config import ImportableFillModelConfig
from nautilus_trader.config import LiveDataClientConfig

REPLAY_CLIENT_ID = "REPLAY"


class ReplayDataClientConfig(LiveDataClientConfig, frozen=True, kw_only=True):
    """
    catalog_path: the Parquet catalog to replay.
    bar_types: the catalog's (EXTERNAL) bar types to stream.
    quote_instrument_ids: instruments whose quotes are streamed too (empty: bars only).
    start, end: the UTC range replayed (ISO timestamps; end exclusive).
    speed: 1.0 real time, N > 1 N times faster, 0 as fast as the node takes the data (each
        bar is handed over only once the node has finished with the previous one, so orders a
        bar triggers are filled before the next bar, as in a backtest).
    warm_up_until_ns: see below.
    """

    catalog_path: str
    bar_types: list[str]
    start: str
    end: str
    quote_instrument_ids: list[str] = []
    speed: float = 1.0
    # A restarted replay: data up to this time (UTC ns) is handed over again at full speed so
    # strategies and actors rebuild their state, while the runner holds trading; `caught_up`
    # is set once it has been processed.
    warm_up_until_ns: int | None = None

    def __post_init__(self) -> None:
        if self.speed < 0:
            raise ValueError(f"speed must be >= 0 (0: as fast as possible), got {self.speed}")
        if not self.bar_types:
            raise ValueError("bar_types: at least one bar type is required")


class ReplayExecClientConfig(SandboxExecutionClientConfig, frozen=True, kw_only=True):
    """
    Nautilus's sandbox execution client config plus the fill and fee models, so the simulated
    venue fills by the same rules as a backtest (the runner passes the backtest's own models).
    """

    fill_model: ImportableFillModelConfig | None = None
    fee_model: ImportableFeeModelConfig | None = None
