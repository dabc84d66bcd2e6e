"""
The session strategies with a real (1x, never leveraged) configuration: `--strategy session`
on the embedded sample catalog, whose inverse ETFs SH and PSQ are -1x. No override is used,
so every strategy's self_check() is ready.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import run_backtest
from actors.journal_store import JournalStore

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


def test_every_exit_says_why_in_trades_the_report_and_the_journal(result: Path) -> None:
    trades = pd.read_csv(result / "trades.csv")
    # The session strategies sell on their stop, at the window end, or (VWAP reversion) on a
    # VWAP touch or its timeout: never unspecified.
    assert len(trades) > 0
    assert set(trades.exit_reason) <= {"stop-loss", "window end", "VWAP touch", "timeout"}
    assert "window end" in set(trades.exit_reason)
    counts = trades.exit_reason.value_counts().to_dict()
    assert json.loads((result / "metrics.json").read_text())["metrics"]["exits_by_reason"] == counts
    assert "Exits by reason" in (result / "report.html").read_text()
    manifest = json.loads((result / "records.json").read_text())
    store = JournalStore(manifest["journal_url"])
    journal = store.rows("trades", manifest["run_id"])
    store.close()
    assert pd.Series([t["exit_reason"] for t in journal]).value_counts().to_dict() == counts


@pytest.fixture(scope="module")
def no_inverse_catalog(sample_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the sample catalog without SH's and PSQ's bars (the catalog follows no links)."""
    root = tmp_path_factory.mktemp("no_inverse")
    inverse_bars = [f"{etf}.SIM-*" for etf in INVERSE.values()]
    shutil.copytree(sample_catalog / "data", root / "data", ignore=shutil.ignore_patterns(*inverse_bars))
    return root


def test_without_the_inverse_etfs_the_default_run_trades_and_says_what_it_skips(
    no_inverse_catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # No --symbols: the session watchlist. Three months, the first 20 sessions warming up.
    argv = ["--strategy", "session", "--catalog", str(no_inverse_catalog), "--start", "2024-09-01",
            "--end", "2024-11-30", "--no-progress", "--no-journal"]
    out = tmp_path / "result"
    assert run_backtest.main([*argv, "--out", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    note = (
        "opening_range, vwap_reversion, eod_momentum: bearish signals on SPY, QQQ are skipped: the "
        "catalog has no bars for SH, PSQ"
    )
    assert note in printed
    assert note in (out / "report.html").read_text()
    result = json.loads((out / "metrics.json").read_text())
    assert result["symbols"] == ["SPY", "QQQ", "AAPL"]
    assert all(n > 0 for n in result["metrics"]["trades_per_strategy"].values()), result["metrics"]
    assert set(pd.read_csv(out / "fills.csv").instrument_id) <= {"SPY.SIM", "QQQ.SIM", "AAPL.SIM"}
    # Asked for by name, the inverse ETFs are required: refused, naming the missing bars.
    asked = [*argv, "--set", "bearish_instrument=inverse_etf", "--out", str(tmp_path / "asked")]
    assert run_backtest.main(asked) == 2
    assert "has no 1-minute or 5-minute bars for SH" in " ".join(capsys.readouterr().out.split())
