"""The engine log (STATE_DIR/logs/node.log) holds the node's last lines when run_live.py exits:
Nautilus writes it on its own logging thread, buffered, and the runner flushes it at shutdown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.test_live_persistence import ROOT
from tests.test_live_persistence import env_file


def test_node_log_ends_with_the_disposed_node(sample_catalog: Path, tmp_path: Path) -> None:
    env = env_file(tmp_path, sample_catalog, SYMBOLS="SPY", STRATEGIES="ma_cross")
    run = subprocess.run([sys.executable, "run_live.py", "--config", str(env)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    logs = sorted((tmp_path / "state" / "logs").glob("node*.log"))
    assert len(logs) == 1, logs
    last = logs[0].read_text().rstrip("\n").splitlines()[-1]
    assert last.endswith("[INFO] BOT-001.TradingNode: DISPOSED"), last
