"""
The watchdog sees IB outages through run_live against the IB Gateway simulator: IB's own
connectivity lost (1100, the socket up) then restored (1102), and a gateway restart (the
socket closed, nothing listening for a while). Each time the node's state.json says
`connected: false`, the watchdog reports the broker down, halts new orders after its grace,
alerts, and reports the recovery when the session is back.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from adapters.ib_gateway_sim.gateway_thread import GatewayThread
from tests.ib_sim_live import run_live_session
from tests.ib_sim_live import sim_record
from tests.ib_sim_live import wait_for
from tests.ib_sim_live import write_env
from tests.test_run_live_ib_sim import PARAMETERS
from tests.test_run_live_ib_sim import SCRIPT
from tests.test_run_live_ib_sim import gateway

SETTINGS = {"HEARTBEAT_SECONDS": "1", "BROKER_GRACE_SECONDS": "2"}


def read_state(state: Path) -> dict:
    path = state / "control" / "state.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):  # not yet written, or being replaced
        return {}


def broker_down_and_halted(snapshot: dict) -> bool:
    watchdog = snapshot.get("watchdog") or {}
    return (snapshot.get("connected") is False and watchdog.get("broker_connected") is False
            and watchdog.get("orders_halted_by_watchdog") is True)


def broker_back(snapshot: dict) -> bool:
    watchdog = snapshot.get("watchdog") or {}
    return (snapshot.get("connected") is True and watchdog.get("broker_connected") is True
            and watchdog.get("orders_halted_by_watchdog") is False)


@pytest.fixture(scope="module")
def outage_run(sample_catalog: Path, tmp_path_factory: pytest.TempPathFactory):
    seen: dict[str, dict] = {}
    tmp = tmp_path_factory.mktemp("ib_sim_broker_outage")
    state = tmp / "state"

    def scenario(sim: GatewayThread, proc: subprocess.Popen[str]) -> None:
        wait_for(lambda: len(sim_record(sim).executions) >= 1, "the first fill", proc)
        wait_for(lambda: broker_back(read_state(state)), "the node running connected", proc)
        # IB loses its connectivity, the socket staying up (1100)
        sim.call(sim.gateway.lose_connectivity)
        wait_for(lambda: broker_down_and_halted(read_state(state)), "the halt after 1100", proc)
        seen["lost"] = read_state(state)
        sim.call(sim.gateway.restore_connectivity)  # 1102
        wait_for(lambda: broker_back(read_state(state)), "the recovery after 1102", proc)
        seen["restored"] = read_state(state)
        # the gateway restarts: sockets closed, nothing listening for 15 s
        restart = asyncio.run_coroutine_threadsafe(sim.gateway.restart(15.0), sim.loop)
        wait_for(lambda: broker_down_and_halted(read_state(state)), "the halt in the restart", proc)
        seen["restarting"] = read_state(state)
        restart.result(60)
        wait_for(lambda: broker_back(read_state(state)), "the recovery after the restart", proc)
        seen["restarted"] = read_state(state)

    with gateway(sample_catalog) as sim:
        env = write_env(tmp, sim.port, "ma_cross", PARAMETERS, SETTINGS)
        run = run_live_session(sim, SCRIPT, env, scenario)
    return run, seen


def test_the_watchdog_reports_halts_and_recovers_on_1100_and_a_restart(outage_run) -> None:
    run, seen = outage_run
    assert run.returncode == 0, run.out
    for phase in ("lost", "restarting"):
        assert seen[phase]["connected"] is False
        assert seen[phase]["watchdog"]["broker_down_since"] is not None
    for phase in ("restored", "restarted"):
        assert seen[phase]["watchdog"]["broker_down_since"] is None
    # each outage warned, halted with an alert, and recovered with an alert; a gateway restart
    # can be two down periods (Nautilus's client reconnects, is refused while the gateway still
    # holds its old session, and reconnects again): every halt is followed by its recovery
    halts = run.out.count("Watchdog: Broker down: new orders halted")
    assert halts >= 2, run.out
    assert run.out.count("Watchdog: Broker connection recovered") == halts, run.out
