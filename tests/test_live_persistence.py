"""
State across restarts: the Redis cache backend (real Redis at 127.0.0.1:6379) keeps a session's
orders, fills and positions, and a node built again with the same settings starts with them;
an unreachable Redis is a clear error in seconds; the memory backend needs no Redis.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

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
