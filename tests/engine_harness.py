"""A low-level BacktestEngine for hand-built bar and quote sequences (tests only)."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.engine import BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import OmsType
from nautilus_trader.model.objects import Money

from catalog.instruments import BACKTEST_VENUE
from catalog.instruments import make_instrument
from catalog.store import bars_from_frame
from catalog.store import quotes_from_frame
from strategies.bid_chaser import BidChaser
from strategies.bid_chaser import BidChaserConfig

MINUTE = "1-MINUTE-LAST-EXTERNAL"


def minute_frame(
    start: str,
    closes: list[float],
    step: str = "1min",
    volume: float = 1000.0,
    spread_high: float = 0.0,
    spread_low: float = 0.0,
) -> pd.DataFrame:
    """Bars stamped at their close, one per `step` from `start` (UTC), open = previous close."""
    index = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=len(closes), freq=step)
    closes_s = pd.Series(closes, index=index, dtype=float)
    opens = closes_s.shift(1).fillna(closes_s.iloc[0])
    return pd.DataFrame(
        {
            "open": opens,
            "high": pd.concat([opens, closes_s], axis=1).max(axis=1) + spread_high,
            "low": pd.concat([opens, closes_s], axis=1).min(axis=1) - spread_low,
            "close": closes_s,
            "volume": volume,
        },
    )


def make_engine(
    bars: pd.DataFrame | None,
    quotes: pd.DataFrame | None = None,
    capital: Decimal = Decimal("100000"),
    chase: BidChaserConfig | None = None,
    symbol: str = "SPY",
    bars_list: list | None = None,
) -> tuple[BacktestEngine, BidChaser]:
    engine = BacktestEngine(
        BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR"), trader_id="TESTER-001"),
    )
    engine.add_venue(
        BACKTEST_VENUE,
        OmsType.NETTING,
        AccountType.CASH,
        [Money(capital, USD)],
        base_currency=USD,
    )
    instrument = make_instrument(symbol)
    engine.add_instrument(instrument)
    bar_type = BarType.from_str(f"{instrument.id}-{MINUTE}")
    if bars_list:
        engine.add_data(bars_list)
    elif bars is not None and not bars.empty:
        engine.add_data(bars_from_frame(instrument, bar_type, bars))
    if quotes is not None:
        engine.add_data(quotes_from_frame(instrument, quotes))
    algorithm = BidChaser(chase)
    engine.add_exec_algorithm(algorithm)
    return engine, algorithm
