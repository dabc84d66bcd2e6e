"""
A Redis-backed replay killed with SIGKILL after some fills: replay_state.json is durable as the
replay advances, so the restart warms up through everything the first run may have acted on
with trading held, sends none of its orders again, and the two runs together send exactly the
orders of one uninterrupted run.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

from tests.kill_support import kill_when
from tests.redis_support import delete_keys
from tests.redis_support import require_redis
from tests.test_live_persistence import env_file

ROOT = Path(__file__).resolve().parents[1]
# Orders that reached the venue (a warm-up's held orders are denied, never submitted).
ORDERS = ("SELECT o.instrument_id, o.side, o.ts_ns FROM orders o JOIN order_events e ON "
          "e.run_id = o.run_id AND e.client_order_id = o.client_order_id "
          "WHERE e.event_type = 'OrderSubmitted'")


def _fill_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("select count(*) from fills").fetchone()[0]
    except sqlite3.OperationalError:  # the journal has not created its tables yet
        return 0


def _orders(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return sorted(conn.execute(ORDERS).fetchall())


def _run(env: Path, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "run_live.py", "--config", str(env), *extra], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_a_replay_killed_after_fills_resumes_and_sends_no_order_twice(
    sample_catalog: Path, tmp_path: Path,
) -> None:
    require_redis()
    # The uninterrupted run of the day, for comparison.
    whole_id = f"TEST-{uuid.uuid4().hex[:8].upper()}"
    whole = tmp_path / "whole"
    whole.mkdir()
    try:
        _run(env_file(whole, sample_catalog, CACHE_BACKEND="redis", TRADER_ID=whole_id))
    finally:
        delete_keys(f"trader-{whole_id}:*")
    uninterrupted = _orders(whole / "state" / "journal_paper.sqlite")
    assert len(uninterrupted) == 8

    trader_id = f"TEST-{uuid.uuid4().hex[:8].upper()}"
    killed = tmp_path / "killed"
    killed.mkdir()
    state = killed / "state"
    env = env_file(killed, sample_catalog, CACHE_BACKEND="redis", TRADER_ID=trader_id,
                   REPLAY_SPEED="x1000", LOG_LEVEL="WARNING")
    journal = state / "journal_paper.sqlite"
    try:
        first = subprocess.Popen([sys.executable, "run_live.py", "--config", str(env)], cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kill_when(first, lambda: _fill_count(journal) >= 3, "its third fill")
        before = _orders(journal)
        assert 3 <= len(before) < 8  # killed mid-day
        saved = json.loads((state / "replay_state.json").read_text())
        # Every order the killed run sent is at or before the time it made durable.
        assert max(ts for _, _, ts in before) <= saved["last_ts"]

        second = _run(env, "--speed", "max")
        assert "restart: replaying up to 2024-12-16 " in second.stdout
        assert not (state / "replay_state.json").exists()
    finally:
        delete_keys(f"trader-{trader_id}:*")
    after = _orders(journal)
    # Nothing sent twice (same instrument, side and bar time), nothing lost.
    assert len(set(after)) == len(after)
    assert after == uninterrupted
