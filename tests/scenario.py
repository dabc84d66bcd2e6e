"""Run CoreRSI over a hand-built list of (UTC time, close) bars and collect what it did."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import ClientOrderId

from catalog.instruments import backtest_instrument_id
from strategies.bid_chaser import BidChaser
from strategies.core_rsi import CoreRSI
from strategies.core_rsi import CoreRSIConfig
from tests.engine_harness import make_engine

SPY = backtest_instrument_id("SPY")
MINUTE_BARS = BarType.from_str(f"{SPY}-1-MINUTE-LAST-EXTERNAL")


def bars_frame(rows: list[tuple[str, float]]) -> pd.DataFrame:
    """Bars at the given close times; open is the previous close, high/low span the two."""
    index = pd.DatetimeIndex([pd.Timestamp(t, tz="UTC") for t, _ in rows])
    closes = pd.Series([r[1] for r in rows], index=index, dtype=float)
    opens = closes.shift(1).fillna(closes.iloc[0])
    both = pd.concat([opens, closes], axis=1)
    return pd.DataFrame(
        {
            "open": opens,
            "high": both.max(axis=1),
            "low": both.min(axis=1),
            "close": closes,
            "volume": 1000.0,
        },
    )


@dataclass
class Outcome:
    engine: BacktestEngine
    strategy: CoreRSI
    algorithm: BidChaser

    def fills(self) -> list[tuple[str, str, str, str]]:
        """(side, quantity, price, primary tag) of every fill, in order."""
        report = self.engine.trader.generate_fills_report()
        if report.empty:
            return []
        out = []
        for client_order_id, row in report.sort_values("ts_event", kind="stable").iterrows():
            order = self.engine.cache.order(ClientOrderId(client_order_id))
            out.append(
                (str(row["order_side"]), str(row["last_qty"]), str(row["last_px"]), order.tags[0])
            )
        return out


def run_core(rows: list[tuple[str, float]], **overrides: object) -> Outcome:
    engine, algorithm = make_engine(bars_frame(rows))
    params: dict[str, object] = {
        "instrument_id": SPY,
        "bar_type": MINUTE_BARS,
        "rsi_period": 2,
        "fixed_bankroll": Decimal("100000"),
    } | overrides
    strategy = CoreRSI(CoreRSIConfig(**params))
    engine.add_strategy(strategy)
    engine.run()
    return Outcome(engine, strategy, algorithm)
