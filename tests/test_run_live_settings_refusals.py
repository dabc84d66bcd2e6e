"""
run_live.py refuses a STATE_DIR it cannot keep its state in with exit code 2 (the systemd unit's
RestartPreventExitStatus) and one line naming the key and the path, never a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.ib_sim_live import ROOT


def run_replay(tmp_path: Path, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = tmp_path / "bot.env"
    env.write_text(f"BROKER=replay\nSTRATEGIES=ma_cross\nSYMBOLS=SPY\nSTATE_DIR={state_dir}\n")
    return subprocess.run([sys.executable, "run_live.py", "--config", str(env)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_a_state_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.write_text("not a folder")
    proc = run_replay(tmp_path, state)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [f"run_live.py: STATE_DIR {state}: is a file, not a folder"]


def test_a_state_dir_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("in the way")
    state = tmp_path / "blocker" / "state"
    proc = run_replay(tmp_path, state)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"run_live.py: STATE_DIR {state}: cannot be written (Not a directory)",
    ]


def test_a_read_only_state_dir_is_refused(tmp_path: Path) -> None:
    # /proc refuses new entries even to root, unlike permission bits
    state = Path("/proc/live_state")
    proc = run_replay(tmp_path, state)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"run_live.py: STATE_DIR {state}: cannot be written (No such file or directory)",
    ]


def run_with_journal(tmp_path: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = tmp_path / "bot.env"
    env.write_text(f"BROKER=replay\nSTRATEGIES=ma_cross\nSYMBOLS=SPY\nSTATE_DIR={tmp_path / 'state'}\n"
                   f"JOURNAL_URL={url}\n")
    return subprocess.run([sys.executable, "run_live.py", "--config", str(env)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_a_journal_database_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    url = "postgresql+psycopg2://postgres@127.0.0.1:5432/no_such_journal"
    proc = run_with_journal(tmp_path, url)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f'run_live.py: JOURNAL_URL {url}: cannot connect (connection to server at "127.0.0.1", '
        'port 5432 failed: FATAL:  database "no_such_journal" does not exist)',
    ]


def test_a_journal_port_nothing_listens_on_is_refused(tmp_path: Path) -> None:
    url = "postgresql+psycopg2://postgres@127.0.0.1:5999/test"
    proc = run_with_journal(tmp_path, url)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f'run_live.py: JOURNAL_URL {url}: cannot connect (connection to server at "127.0.0.1", '
        'port 5999 failed: Connection refused)',
    ]


def test_a_saved_parameter_a_strategy_cannot_take_refuses_the_start(tmp_path: Path) -> None:
    # Before, the restore raised out of the build: a traceback and exit 1, which systemd
    # restarts every 30 s into the same traceback.
    state = tmp_path / "state"
    state.mkdir()
    (state / "parameters.json").write_text('{"EODMomentum-EOD": {"stop_fraction": "0.03"}}')
    env = tmp_path / "bot.env"
    env.write_text(f"BROKER=replay\nSTRATEGIES=eod_momentum\nSYMBOLS=SPY\nSTATE_DIR={state}\n")
    proc = subprocess.run([sys.executable, "run_live.py", "--config", str(env)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"run_live.py: {state / 'parameters.json'}: EODMomentum-EOD: strategy: EODMomentum-EOD takes "
        "no parameter changes while it runs; correct or remove its entry"
    )
