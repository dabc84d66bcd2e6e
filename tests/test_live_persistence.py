"""
State across restarts: the Redis cache backend (real Redis at 127.0.0.1:6379) keeps a session's
orders, fills and positions, and a node built again with the same settings starts with them;
an unreachable Redis is a clear error in seconds; the memory backend needs no Redis.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import uuid
from pathlib import Path


from tests.redis_support import delete_keys
from tests.redis_support import redis_command
from tests.redis_support import require_redis

ROOT = Path(__file__).resolve().parents[1]
DAY = "2024-12-16"

RESTORED = """
import json, sys
from pathlib import Path
from config.settings import load_settings
from livenode.builder import make_plan
from livenode.runner import LiveRunner

settings = load_settings(Path(sys.argv[1]))
runner = LiveRunner(make_plan(settings))
node = runner.build()
cache = node.cache
print(json.dumps({
    "orders": sorted(str(o.client_order_id) for o in cache.orders()),
    "filled_qty": sorted(str(o.filled_qty) for o in cache.orders()),
    "positions": sorted(f"{p.instrument_id} {p.signed_qty}" for p in cache.positions()),
}))
node.dispose()
"""


def env_file(tmp_path: Path, catalog: Path, **extra: str) -> Path:
    lines = {"BROKER": "replay", "REPLAY_CATALOG": str(catalog), "REPLAY_START": DAY,
             "REPLAY_SPEED": "max", "SYMBOLS": "SPY,QQQ", "STATE_DIR": str(tmp_path / "state"),
             "LOG_LEVEL": "ERROR"} | extra
    path = tmp_path / "bot.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    return path


def test_unreachable_redis_is_a_clear_error(sample_catalog: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = env_file(tmp_path, sample_catalog, CACHE_BACKEND="redis", REDIS_PORT=str(port))
    result = subprocess.run([sys.executable, "run_live.py", "--config", str(env)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert (f"CACHE_BACKEND=redis: Redis at 127.0.0.1:{port} (REDIS_HOST/REDIS_PORT) does not "
            "answer") in result.stderr


def test_redis_keeps_the_session_and_a_rebuilt_node_starts_with_it(
    sample_catalog: Path, tmp_path: Path,
) -> None:
    require_redis()
    trader_id = f"TEST-{uuid.uuid4().hex[:8].upper()}"
    env = env_file(tmp_path, sample_catalog, CACHE_BACKEND="redis", TRADER_ID=trader_id)
    try:
        run = subprocess.run([sys.executable, "run_live.py", "--config", str(env)], cwd=ROOT,
                             capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        summary = json.loads((tmp_path / "state" / "session_summary.json").read_text())
        assert len(summary["fills"]) == 8
        keys = redis_command("KEYS", f"trader-{trader_id}:orders:*")
        assert len(keys) == summary["orders"] == 8

        restored = subprocess.run([sys.executable, "-c", RESTORED, str(env)], cwd=ROOT,
                                  capture_output=True, text=True, timeout=120, check=False)
        assert restored.returncode == 0, restored.stderr
        state = json.loads(restored.stdout.strip().splitlines()[-1])
        assert state["orders"] == sorted({f["client_order_id"] for f in summary["fills"]})
        # Every order was filled in full, and both positions were closed by the end of the day.
        fill_qty = {f["client_order_id"]: f["quantity"] for f in summary["fills"]}
        assert state["filled_qty"] == sorted(fill_qty.values())
        assert state["positions"] == ["QQQ.SIM 0.0", "SPY.SIM 0.0"]
    finally:
        delete_keys(f"trader-{trader_id}:*")
    assert redis_command("KEYS", f"trader-{trader_id}:*") == []


TRADES = ("SELECT symbol, side, quantity, entry_ns, exit_ns, entry_price, exit_price, gross_pnl, "
          "charges, net_pnl FROM trades")
FILLS = "SELECT ts_ns, instrument_id, side, quantity, price, commission FROM fills"


def _rows(db_path: Path, query: str) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(db_path) as db:
        return sorted(db.execute(query).fetchall())


def test_restart_mid_session_resumes_without_sending_an_order_twice(
    sample_catalog: Path, tmp_path: Path,
) -> None:
    """
    Stopped (SIGTERM) while both positions of the day's first trades are open, then started
    again: positions, lots and the account come back from Redis, the replay warms the
    strategies up to where it stopped with trading held, and the two runs together trade
    exactly like one uninterrupted backtest of the day.
    """
    import signal
    import time

    from backtesting.builder import BacktestRequest
    from backtesting.run import run_backtest

    require_redis()
    trader_id = f"TEST-{uuid.uuid4().hex[:8].upper()}"
    state = tmp_path / "state"
    env = env_file(tmp_path, sample_catalog, CACHE_BACKEND="redis", TRADER_ID=trader_id,
                   REPLAY_SPEED="x2000", LOG_LEVEL="WARNING")
    try:
        first = subprocess.Popen([sys.executable, "run_live.py", "--config", str(env)], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        snapshot_path = state / "control" / "state.json"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if snapshot_path.exists() and len(json.loads(snapshot_path.read_text())["positions"]) == 2:
                break
            assert first.poll() is None, first.stdout.read()
            time.sleep(0.05)
        first.send_signal(signal.SIGTERM)
        out, _ = first.communicate(timeout=60)
        assert first.returncode == 0, out
        stopped = json.loads((state / "session_summary.json").read_text())
        assert sorted(stopped["positions_open"]) == ["QQQ.SIM", "SPY.SIM"]
        assert (state / "replay_state.json").exists()

        second = subprocess.run(
            [sys.executable, "run_live.py", "--config", str(env), "--speed", "max"], cwd=ROOT,
            capture_output=True, text=True, timeout=300, check=False,
        )
        assert second.returncode == 0, second.stdout + second.stderr
        assert "restart: replaying up to 2024-12-16 " in second.stdout
        resumed = json.loads((state / "session_summary.json").read_text())
        assert resumed["stop_reason"] == "replay finished"
        assert resumed["positions_open"] == []
        assert not (state / "replay_state.json").exists()
    finally:
        delete_keys(f"trader-{trader_id}:*")

    records = tmp_path / "backtest_records"
    records.mkdir()
    run_backtest(
        BacktestRequest(strategy="ma_cross", symbols=("SPY", "QQQ"), catalog=sample_catalog,
                        start=dt.date(2024, 12, 16), end=dt.date(2024, 12, 16), progress=False,
                        journal_url=f"sqlite:///{records / 'journal.sqlite'}", records_dir=records),
        tmp_path / "backtest",
    )
    live_journal = state / "journal_paper.sqlite"
    # Two runs, one order each per fill: nothing was sent twice.
    assert len(_rows(live_journal, "SELECT client_order_id FROM orders")) == 8
    assert _rows(live_journal, FILLS) == _rows(records / "journal.sqlite", FILLS)
    assert _rows(live_journal, TRADES) == _rows(records / "journal.sqlite", TRADES)
