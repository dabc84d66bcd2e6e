"""
The core RSI strategy (with its bid-chasing execution algorithm, the risk actors and the
journal) through run_live.py's paper replay of a sample day, against a backtest of that day.

Every fill is the backtest's: the same minute, side, quantity, price and commission, from the
same child order. The bid chaser re-prices an unfilled buy after 60 s; in the replay its
component clock is the wall clock, which never lets that minute pass, so the algorithm also
counts the interval in the data's time (the sample day re-prices a SPY and a QQQ buy).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from backtesting.builder import BacktestRequest
from backtesting.run import run_backtest

ROOT = Path(__file__).resolve().parents[1]
DAY = dt.date(2024, 12, 5)  # core RSI buys SPY and QQQ, and sells two QQQ lots at target
SYMBOLS = ("SPY", "QQQ")


@pytest.fixture(scope="module")
def day(sample_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("core_rsi")
    state = tmp / "state"
    env = tmp / "bot.env"
    env.write_text(
        f"MODE=paper\nBROKER=replay\nSTRATEGIES=core_rsi\nSYMBOLS={','.join(SYMBOLS)}\n"
        f"REPLAY_CATALOG={sample_catalog}\nREPLAY_START={DAY}\nREPLAY_SPEED=max\n"
        # The day's buys come before the open (12:47 UTC is 07:47 New York): core RSI's own
        # live settings (every session, no entry window) let them through with no key set.
        f"STATE_DIR={state}\nLOG_LEVEL=WARNING\n",
    )
    result = subprocess.run([sys.executable, "run_live.py", "--config", str(env)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    records = tmp / "backtest_records"
    records.mkdir()
    backtest = run_backtest(
        BacktestRequest(strategy="core_rsi", symbols=SYMBOLS, catalog=sample_catalog, start=DAY,
                        end=DAY, progress=False,
                        journal_url=f"sqlite:///{records / 'journal.sqlite'}", records_dir=records),
        tmp / "backtest",
    )
    return {"result": result, "state": state, "records": records, "backtest": backtest,
            "summary": json.loads((state / "session_summary.json").read_text())}


def test_the_replayed_day_runs_and_shuts_down_cleanly(day: dict) -> None:
    assert day["result"].returncode == 0, day["result"].stdout + day["result"].stderr
    summary = day["summary"]
    assert summary["stop_reason"] == "replay finished"
    # The resting target sells were cancelled, and the bid chaser could not re-place them.
    assert summary["orders_open"] == 0
    assert summary["gate"]["holds"] == {
        "shutdown": {"action": "HALT", "reason": "shutdown (replay finished)"},
    }
    assert sorted(summary["positions_open"]) == ["QQQ.SIM", "SPY.SIM"]  # core lots are held


def _fills(day: dict) -> tuple[list[dict], pd.DataFrame]:
    live = sorted(day["summary"]["fills"], key=lambda f: (f["ts_event"], f["instrument_id"]))
    bt = day["backtest"].fills.sort_values(["ts_event", "instrument_id"]).reset_index(drop=True)
    return live, bt


def _child(client_order_id: str) -> str:
    """The order id without its date and time (O-20241205-124500-001-QQQ-1-E2 -> QQQ-1-E2)."""
    return client_order_id.split("-", 4)[-1]


def test_every_fill_is_the_backtests_price_included(day: dict) -> None:
    live, bt = _fills(day)
    assert len(bt) == 8
    assert [
        (pd.Timestamp(f["ts_event"], tz="UTC"), f["instrument_id"], _child(f["client_order_id"]),
         f["side"], Decimal(f["quantity"]), Decimal(f["price"]),
         Decimal(f["commission"].split()[0]))
        for f in live
    ] == [
        (r.ts_event, r.instrument_id, _child(r.client_order_id), r.side,
         Decimal(str(r.quantity)), Decimal(str(r.price)), Decimal(str(r.commission)))
        for r in bt.itertuples()
    ]


def test_the_buys_the_backtest_re_priced_are_re_priced_in_the_replay(day: dict) -> None:
    live, bt = _fills(day)
    repriced = [
        (r.instrument_id, _child(r.client_order_id)) for r in bt.itertuples()
        if "resubmission=" in str(r.tags)
    ]
    # The sample day moves one SPY and one QQQ buy to a new bid; both fill on their second child.
    assert repriced == [("QQQ.SIM", "QQQ-1-E2"), ("SPY.SIM", "SPY-1-E2")]
    assert [(f["instrument_id"], _child(f["client_order_id"])) for f in live[:2]] == repriced


def test_the_journal_holds_the_same_lots(day: dict) -> None:
    query = "SELECT symbol, opened_ns, quantity, price, commission, strategy FROM lots"
    with sqlite3.connect(day["state"] / "journal_paper.sqlite") as db:
        live = sorted(db.execute(query).fetchall())
    with sqlite3.connect(day["records"] / "journal.sqlite") as db:
        backtest = sorted(db.execute(query).fetchall())
    assert live == backtest and len(live) == 6
