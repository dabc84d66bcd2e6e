"""
run_live.py refuses a start the IB Gateway simulator cannot serve, with exit code 2 (the
systemd unit's RestartPreventExitStatus) and one line naming the setting: a client id another
API client holds (IB error 326) is found by the preflight, before the node is built.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.ib_sim_live import ROOT
from tests.ib_sim_live import start_gateway
from tests.ib_sim_live import write_env

START = pd.Timestamp("2024-12-16 09:35", tz="America/New_York").tz_convert("UTC")


def test_a_client_id_in_use_is_refused_by_the_preflight(sample_catalog: Path, tmp_path: Path) -> None:
    with start_gateway(sample_catalog, START, 1.0) as sim:
        sim.call(sim.gateway.reserve_client_id, 1)
        env = write_env(tmp_path, sim.port, "ma_cross", {})
        proc = subprocess.run(
            [sys.executable, "run_live.py", "--config", str(env), "--broker", "ib", "--mode", "paper"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"run_live.py: IB preflight: IB_CLIENT_ID 1 is already in use on 127.0.0.1:{sim.port} "
        "(IB error 326); stop the other API client or choose another id",
    ]


def test_a_symbol_that_does_not_resolve_is_refused_by_the_preflight(sample_catalog: Path, tmp_path: Path) -> None:
    with start_gateway(sample_catalog, START, 1.0) as sim:
        env = write_env(tmp_path, sim.port, "ma_cross", {}, {"SYMBOLS": "SPY,NOSUCH"})
        proc = subprocess.run(
            [sys.executable, "run_live.py", "--config", str(env), "--broker", "ib", "--mode", "paper"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"run_live.py: IB preflight: SYMBOLS NOSUCH does not resolve to a US stock on "
        f"127.0.0.1:{sim.port} (IB error 200: No security definition has been found for the "
        "request); correct or remove the symbol",
    ]
