"""
run_live.py refuses a start the IB Gateway simulator cannot serve, with exit code 2 (the
systemd unit's RestartPreventExitStatus) and one line naming the setting: a client id another
API client holds (IB error 326) is found by the preflight, before the node is built.
A client id taken after the preflight passed (another client starting in between) leaves
Nautilus's IB client retrying inside the node's build: the build is bounded by
CONNECT_TIMEOUT_SECONDS (exit 3) and a SIGTERM during it ends the process at once (exit 0).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.ib_sim_live import ROOT
from tests.ib_sim_live import start_gateway
from tests.ib_sim_live import wait_for
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


def _held_after_preflight(go: Path) -> str:
    """run_live.py whose preflight, once passed, waits for `go` to exist: the test takes the
    client id in that gap, as another API client starting between the preflight and the build."""
    return f"""
import sys, time
from pathlib import Path
import adapters.ib.preflight as preflight

real = preflight.ib_preflight

def held(*args, **kwargs):
    result = real(*args, **kwargs)
    Path({str(go)!r} + ".passed").write_text("")
    while not Path({str(go)!r}).exists():
        time.sleep(0.05)
    return result

preflight.ib_preflight = held
import run_live
sys.exit(run_live.main(sys.argv[1:]))
"""


def _start_with_id_taken_after_preflight(sim, tmp_path: Path, extra: dict[str, str]) -> subprocess.Popen[str]:
    go = tmp_path / "go"
    env = write_env(tmp_path, sim.port, "ma_cross", {}, extra)
    proc = subprocess.Popen(
        [sys.executable, "-c", _held_after_preflight(go), "--config", str(env), "--broker", "ib",
         "--mode", "paper"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    wait_for(lambda: Path(f"{go}.passed").exists(), "the preflight to pass", proc)
    sim.call(sim.gateway.reserve_client_id, 1)
    go.write_text("")
    # the node's IB client, inside the build, has been refused (326) and is retrying
    wait_for(lambda: sim.call(lambda: list(sim.gateway.faults.refused_client_ids)) == [1],
             "the node's API session to be refused", proc)
    return proc


def test_a_sigterm_while_the_build_retries_a_refused_client_id_exits_at_once(
    sample_catalog: Path, tmp_path: Path,
) -> None:
    with start_gateway(sample_catalog, START, 1.0) as sim:
        proc = _start_with_id_taken_after_preflight(sim, tmp_path, {"CONNECT_TIMEOUT_SECONDS": "600"})
        try:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert err.strip().splitlines()[-1] == (
        f"run_live.py: SIGTERM received while the IB client was connecting to IB_HOST:IB_PORT "
        f"127.0.0.1:{sim.port} as IB_CLIENT_ID 1: stopped before the node started"
    )


def test_a_build_whose_client_id_stays_refused_ends_after_the_connect_timeout(
    sample_catalog: Path, tmp_path: Path,
) -> None:
    with start_gateway(sample_catalog, START, 1.0) as sim:
        proc = _start_with_id_taken_after_preflight(sim, tmp_path, {"CONNECT_TIMEOUT_SECONDS": "4"})
        try:
            _out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 3, err
    assert err.strip().splitlines()[-1] == (
        f"run_live.py: the IB client did not connect to IB_HOST:IB_PORT 127.0.0.1:{sim.port} as "
        "IB_CLIENT_ID 1 within 4 s (CONNECT_TIMEOUT_SECONDS) while the node was built (is another "
        "API client using IB_CLIENT_ID? see node.log); stopping"
    )
