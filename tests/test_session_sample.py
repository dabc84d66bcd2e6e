"""
The session strategies with a real (1x, never leveraged) configuration: `--strategy session`
on the embedded sample catalog, whose inverse ETFs SH and PSQ are -1x. No override is used,
so every strategy's self_check() is ready.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import run_backtest

INVERSE = {"SPY": "SH", "QQQ": "PSQ"}


@pytest.fixture(scope="module")
def result(sample_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("session_sample") / "result"
    argv = ["--strategy", "session", "--symbols", "SPY,QQQ,AAPL", "--catalog", str(sample_catalog),
            "--start", "2024-03-01", "--end", "2024-04-30", "--out", str(out), "--no-progress"]
    assert run_backtest.main(argv) == 0
    return out


def test_default_one_x_map_trades_and_every_strategy_is_ready(result: Path) -> None:
    report = (result / "report.html").read_text()
    assert report.count("self_check: ready") == 3
    assert "NOT READY" not in report
    metrics = json.loads((result / "metrics.json").read_text())
    assert set(metrics["metrics"]["trades_per_strategy"]) == {
        "OpeningRangeBreakout-ORB", "VWAPReversion-VWAP", "EODMomentum-EOD",
    }
    fills = pd.read_csv(result / "fills.csv")
    entries = fills[fills.side == "BUY"].drop_duplicates("client_order_id")
    _, side, signal = zip(*entries.tags.str.split(":"))
    entries = entries.assign(side_=side, signal=signal, ticker=entries.instrument_id.str.split(".").str[0])
    bearish = entries[entries.side_ == "bearish"]
    assert len(bearish) > 0
    assert (bearish.ticker == bearish.signal.map(INVERSE)).all()  # AAPL has no inverse ETF
    assert set(entries.ticker) <= {"SPY", "QQQ", "AAPL", "SH", "PSQ"}
