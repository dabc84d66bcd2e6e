"""
A writer killed mid-run (SIGKILL) loses nothing it committed, and a restart appends.

The writer is the real journal in a real engine (tests/journal_engine.py, paper mode),
slowed down per bar so the kill lands in the middle of its trading.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd

from actors.journal_store import JournalStore
from actors.trade_files import read_trade_history
from tests.kill_support import kill_when
from tests.journal_engine import run_engine

ROOT = Path(__file__).resolve().parent.parent


def _fill_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("select count(*) from fills").fetchone()[0]
    except sqlite3.OperationalError:  # the writer has not created the table yet
        return 0


def test_a_killed_writer_keeps_what_it_committed_and_a_restart_appends(tmp_path) -> None:
    db = tmp_path / "journal_paper.sqlite"
    url = f"sqlite:///{db}"
    records = tmp_path / "records"
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.journal_engine", url, str(records), "0.02", "200"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    kill_when(writer, lambda: _fill_count(db) >= 15, "15 fills")

    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    store = JournalStore(url)
    fills = store.rows("fills")
    lots = store.rows("lots")
    trades = store.rows("trades")
    buys = [f for f in fills if f["side"] == "BUY"]
    sells = [f for f in fills if f["side"] == "SELL"]
    assert len(fills) >= 15 and len(fills) < 400  # killed mid-run
    # A fill, its lot or its round trip commit together: never one without the other.
    assert len(lots) == len(buys) and len(trades) == len(sells)
    first_run = store.rows("runs")[0]["run_id"]
    snapshot = {t: store.rows(t) for t in ("orders", "order_events", "fills", "lots", "trades")}
    store.close()
    # trade_history is appended after each commit: at most the row being written is missing.
    history = read_trade_history(records / "trade_history.csv")
    assert len(fills) - 1 <= len(history) <= len(fills)
    assert [r["order_ref"] for r in history] == [f["order_ref"] for f in fills][: len(history)]
    history_bytes = (records / "trade_history.csv").read_bytes()

    # Restart the next day: buy 10, sell 10. The sale closes the oldest open lot (FIFO),
    # which is the killed run's if it died holding shares.
    held_before = sum(f["quantity"] * (1 if f["side"] == "BUY" else -1) for f in fills)
    second = run_engine(url, records, (("101.00", "BUY:10:signal"), ("101.50", "SELL:10:exit:signal")),
                        mode="paper", start=pd.Timestamp("2024-03-05 15:00", tz="UTC"))
    store = JournalStore(url)
    try:
        for table, rows in snapshot.items():
            assert store.rows(table)[: len(rows)] == rows, f"{table} was rewritten"
        new_trades = store.rows("trades", second)
        assert len(new_trades) == 1
        lots_by_id = {lot["lot_id"]: lot for lot in store.rows("lots")}
        closing = [c for c in store.rows("lot_closings") if c["fill_id"] == new_trades[0]["exit_fill_id"]]
        opened_by = {lots_by_id[c["lot_id"]]["run_id"] for c in closing}
        assert opened_by == ({first_run} if held_before else {second})
        assert [r["run_id"] for r in store.rows("runs")] == [first_run, second]
    finally:
        store.close()
    assert (records / "trade_history.csv").read_bytes().startswith(history_bytes)
