"""
End to end through the real run_live path: ``run_live.py --broker ib --mode paper`` (preflight,
livenode.builder's Nautilus IB data and execution clients with convert_exchange_to_mic_venue,
the risk layer, the journal) trades MA cross on SPY against the IB Gateway simulator replaying
a sample-catalog day, and the node's fills, positions, lots and journal agree with the
simulator's own record of executions (tests/ib_sim_live.py says how time and bars work).

The strategy: MA cross on the gateway's 1-minute bars, with short averages and
regular_hours_only=false set through parameters.json as the dashboard persists them: its
session check reads bar time, the wall-clock date's NYSE session, while the simulator's market
stays in the replayed session (market orders fill there). Everything else is run_live.py as
shipped, in its own process, talking to the simulator on an ephemeral 127.0.0.1 port.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from adapters.ib_gateway_sim.broker import FillPlan
from adapters.ib_gateway_sim.gateway_thread import GatewayThread
from adapters.ib_gateway_sim.server import Gateway
from tests.ib_sim_live import ACCOUNT
from tests.ib_sim_live import LiveRun
from tests.ib_sim_live import assert_fills_match as assert_fills_match_for
from tests.ib_sim_live import assert_journal_matches
from tests.ib_sim_live import run_live_script
from tests.ib_sim_live import run_live_session
from tests.ib_sim_live import signed
from tests.ib_sim_live import sim_record
from tests.ib_sim_live import start_gateway
from tests.ib_sim_live import start_run_live
from tests.ib_sim_live import stop_run_live
from tests.ib_sim_live import summary_fills
from tests.ib_sim_live import wait_for
from tests.ib_sim_live import write_env

DAY = "2024-12-16"  # a sample session with several MA crosses on SPY (see test_live_replay)
START = pd.Timestamp(f"{DAY} 09:35", tz="America/New_York").tz_convert("UTC")
SPEED = 30.0  # a minute bar every 2 s
STRATEGY = "MACross-SPY"
# Short averages: the first cross comes within a few bars.
PARAMETERS = {STRATEGY: {"fast_period": 2, "slow_period": 3, "regular_hours_only": False}}
# MA cross on the 1-minute bars the gateway sends instead of its default 5-minute bars.
SCRIPT = run_live_script("ma_cross", "1-MINUTE-LAST-EXTERNAL")


def gateway(catalog: Path) -> GatewayThread:
    return start_gateway(catalog, START, SPEED)


def session(catalog: Path, tmp: Path, scenario, before=None) -> LiveRun:
    """run_live.py trading MA cross against a fresh simulator (``before`` scripts it first)."""
    with gateway(catalog) as sim:
        if before is not None:
            sim.call(before, sim.gateway)
        env = write_env(tmp, sim.port, "ma_cross", PARAMETERS)
        return run_live_session(sim, SCRIPT, env, scenario)


@pytest.fixture(scope="module")
def live_run(sample_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> LiveRun:
    def scenario(sim: GatewayThread, proc: subprocess.Popen[str]) -> None:
        # a round trip (a buy and its sell) and the next buy: a position is open at the end
        wait_for(lambda: len(sim_record(sim).executions) >= 3, "three executions", proc)

    return session(sample_catalog, tmp_path_factory.mktemp("ib_sim_live"), scenario)


def assert_fills_match(run: LiveRun) -> list[tuple]:
    """The journal and the node's fills match the simulator, and every order the simulator
    accepted was journaled with a fill (MA cross only sends market orders)."""
    expected = assert_fills_match_for(run, STRATEGY)
    assert sorted({int(e[1].removeprefix("PERM-")) for e in expected}) == run.sim.perm_ids
    return expected


def test_run_live_starts_against_the_simulator_and_stops_cleanly(live_run: LiveRun) -> None:
    assert live_run.returncode == 0, live_run.out
    assert "mode paper, broker ib, strategies ma_cross, symbols SPY" in live_run.out
    assert "IB preflight: gateway answers (server version" in live_run.out
    assert f"account {ACCOUNT} visible" in live_run.out
    assert f"parameters restored from {live_run.state}: {STRATEGY}" in live_run.out
    assert "SIGTERM received: shutting down" in live_run.out
    summary = json.loads((live_run.state / "session_summary.json").read_text())
    assert summary["stop_reason"] == "signal SIGTERM"
    assert summary["orders_open"] == 0


def test_fills_agree_with_the_simulators_executions(live_run: LiveRun) -> None:
    executions = live_run.sim.executions
    assert len(executions) >= 3
    expected = assert_fills_match(live_run)
    assert len({f["client_order_id"] for f in summary_fills(live_run)}) == len(executions)
    # "now": the replay starts at the run's wall-clock minute and runs SPEED times faster
    first_allowed = live_run.wall_start_ns - 60 * 10**9
    elapsed = live_run.wall_end_ns - live_run.wall_start_ns
    last_allowed = live_run.wall_start_ns + int(elapsed * SPEED)
    assert all(first_allowed <= e[2] <= last_allowed for e in expected)


def test_positions_and_lots_agree_with_the_simulator(live_run: LiveRun) -> None:
    net = sum((signed(e.side, e.shares) for e in live_run.sim.executions), Decimal(0))
    assert net == live_run.sim.position > 0  # the last buy is still held
    # the node's position (its final snapshot) is the simulator's
    snapshot = json.loads((live_run.state / "control" / "state.json").read_text())
    assert snapshot["phase"] == "stopped"
    [position] = snapshot["positions"]
    assert position["instrument_id"] == "SPY.ARCX"
    assert Decimal(position["quantity"]) == live_run.sim.position
    # the journal's lots: what is left open of them is the simulator's position, opened by
    # the last buy at its execution price
    with sqlite3.connect(live_run.state / "journal_paper.sqlite") as db:
        lots = db.execute("SELECT lot_id, quantity, price FROM lots ORDER BY opened_ns").fetchall()
        closings = db.execute("SELECT lot_id, quantity FROM lot_closings").fetchall()
    closed: dict[str, Decimal] = {}
    for lot_id, quantity in closings:
        closed[lot_id] = closed.get(lot_id, Decimal(0)) + Decimal(quantity)
    still_open = [(Decimal(q) - closed.get(lot_id, Decimal(0)), Decimal(price))
                  for lot_id, q, price in lots if Decimal(q) > closed.get(lot_id, Decimal(0))]
    last_buy = [e for e in live_run.sim.executions if e.side == "BOT"][-1]
    assert still_open == [(live_run.sim.position, last_buy.price)]


# -- faults through run_live: a rejection, a partial fill, a connection drop and restore ------

REJECTION = "simulated margin check"
FIRST_PART = Decimal(40)


@dataclass
class FaultMarks:
    executions_before_drop: int = 0
    # The session objects themselves, held: ids of freed objects are reused by new ones.
    sessions_before_drop: tuple = ()
    executions_before_outage: int = 0
    perm_ids_before_outage: tuple[int, ...] = ()


@pytest.fixture(scope="module")
def fault_run(
    sample_catalog: Path, tmp_path_factory: pytest.TempPathFactory,
) -> tuple[LiveRun, FaultMarks]:
    marks = FaultMarks()

    def reject_first_order(gateway: Gateway) -> None:
        gateway.broker.reject_next_order(REJECTION)

    def api_sessions_with_data(sim: GatewayThread) -> tuple:
        return sim.call(lambda: tuple(s for s in sim.gateway.api_sessions() if s.subscriptions))

    def new_session_with_data(sim: GatewayThread) -> bool:
        return any(all(s is not old for old in marks.sessions_before_drop)
                   for s in api_sessions_with_data(sim))

    def scenario(sim: GatewayThread, proc: subprocess.Popen[str]) -> None:
        # the first buy is refused (201); the next one fills in two parts, 40 then the rest
        wait_for(lambda: len(sim_record(sim).rejections) == 1, "the rejection", proc)
        sim.call(sim.gateway.broker.plan_next_fill,
                 FillPlan(parts=[FIRST_PART], part_interval_seconds=1.0))
        wait_for(lambda: len(sim_record(sim).executions) >= 2, "both parts of the buy", proc)
        # the connection drops (every socket closed, nothing listening for a second) and is
        # restored: the node reconnects and subscribes again by itself, and keeps trading
        marks.executions_before_drop = len(sim_record(sim).executions)
        marks.sessions_before_drop = api_sessions_with_data(sim)
        sim.run(sim.gateway.restart(1.0))
        wait_for(lambda: new_session_with_data(sim),
                 "the node's new session with its subscriptions", proc)
        wait_for(lambda: len(sim_record(sim).executions) > marks.executions_before_drop,
                 "a fill after the reconnection", proc)
        # IB loses its own connectivity with the socket up (1100: no data, no routing) for
        # a few seconds, then has it back (1102, data maintained); the node trades on
        record = sim_record(sim)
        marks.executions_before_outage = len(record.executions)
        marks.perm_ids_before_outage = tuple(record.perm_ids)
        sim.call(sim.gateway.lose_connectivity)
        time.sleep(3.0)
        sim.call(sim.gateway.restore_connectivity)
        wait_for(lambda: len(sim_record(sim).executions) > marks.executions_before_outage,
                 "a fill after IB's connectivity came back (1102)", proc)

    with gateway(sample_catalog) as sim:
        sim.call(reject_first_order, sim.gateway)
        env = write_env(tmp_path_factory.mktemp("ib_sim_faults"), sim.port, "ma_cross", PARAMETERS)
        run = run_live_session(sim, SCRIPT, env, scenario)
    return run, marks


def unresolved(run: LiveRun) -> list[dict]:
    path = run.state / "unresolved_orders.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_faults_leave_fills_agreeing_with_the_simulator(
    fault_run: tuple[LiveRun, FaultMarks],
) -> None:
    run, marks = fault_run
    assert run.returncode == 0, run.out
    assert_fills_match(run)
    # after the reconnection the node traded on: fills after the drop, none repeated
    assert len(run.sim.executions) > marks.executions_before_drop
    assert len({e.exec_id for e in run.sim.executions}) == len(run.sim.executions)
    # no order duplicated or lost: the journal's orders are the simulator's accepted orders
    # and its rejection, each once
    with sqlite3.connect(run.state / "journal_paper.sqlite") as db:
        # orders the node itself denied (the watchdog halts entries while IB is down) never
        # reached the gateway
        orders = db.execute(
            "SELECT client_order_id FROM orders WHERE client_order_id NOT IN "
            "(SELECT client_order_id FROM order_events WHERE event_type = 'OrderDenied')",
        ).fetchall()
    sent = len(run.sim.perm_ids) + len(run.sim.rejections)
    assert len(orders) == len({o for o, in orders}) == sent
    net = sum((signed(e.side, e.shares) for e in run.sim.executions), Decimal(0))
    assert net == run.sim.position
    positions = json.loads((run.state / "control" / "state.json").read_text())["positions"]
    assert sum((Decimal(p["quantity"]) for p in positions), Decimal(0)) == run.sim.position


def test_the_rejection_is_journaled_and_logged_unresolved(
    fault_run: tuple[LiveRun, FaultMarks],
) -> None:
    run, _ = fault_run
    [rejection] = run.sim.rejections
    assert rejection.code == 201
    with sqlite3.connect(run.state / "journal_paper.sqlite") as db:
        [(client_order_id, detail)] = db.execute(
            "SELECT client_order_id, detail FROM order_events WHERE event_type = 'OrderRejected'",
        ).fetchall()
    assert REJECTION in detail
    [logged] = [r for r in unresolved(run) if r["kind"] == "order_rejected"]
    assert logged["context"]["client_order_id"] == client_order_id
    assert REJECTION in logged["message"]


def test_the_partial_fill_is_journaled_and_logged_unresolved(
    fault_run: tuple[LiveRun, FaultMarks],
) -> None:
    run, _ = fault_run
    first, rest = run.sim.executions[:2]
    assert first.order_id == rest.order_id and first.shares == FIRST_PART
    total = first.shares + rest.shares
    with sqlite3.connect(run.state / "journal_paper.sqlite") as db:
        parts = db.execute(
            "SELECT client_order_id, quantity FROM fills WHERE trade_id IN (?, ?) ORDER BY id",
            (first.exec_id, rest.exec_id),
        ).fetchall()
    assert [Decimal(q) for _, q in parts] == [FIRST_PART, rest.shares]
    assert parts[0][0] == parts[1][0]
    [logged] = [r for r in unresolved(run) if r["kind"] == "partial_fill"]
    assert logged["message"] == f"filled {FIRST_PART} of {total}"
    assert logged["context"]["client_order_id"] == parts[0][0]


# -- a restart of the node: orders and positions reconcile with the simulator ----------------


@dataclass
class RestartRun:
    first: LiveRun
    second_out: str
    second_returncode: int
    position_after_first: Decimal
    snapshot_after_restart: dict


def running_with_positions(state: Path) -> Callable[[], bool]:
    state_file = state / "control" / "state.json"

    def check() -> bool:
        if not state_file.exists():
            return False
        snapshot = json.loads(state_file.read_text())
        return snapshot["phase"] == "running" and bool(snapshot["positions"])

    return check


@pytest.fixture(scope="module")
def restart_run(sample_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> RestartRun:
    tmp = tmp_path_factory.mktemp("ib_sim_restart")
    with gateway(sample_catalog) as sim:
        env = write_env(tmp, sim.port, "ma_cross", PARAMETERS)

        def first_buy(sim: GatewayThread, proc: subprocess.Popen[str]) -> None:
            wait_for(lambda: len(sim_record(sim).executions) >= 1, "the first buy", proc)

        first = run_live_session(sim, SCRIPT, env, first_buy)
        # the same node again (same state folder, journal and client id) on the same account
        proc = start_run_live(SCRIPT, env)
        try:
            wait_for(running_with_positions(tmp / "state"), "the restarted node with its position",
                     proc, 60)
            snapshot = json.loads((tmp / "state" / "control" / "state.json").read_text())
            time.sleep(1.0)
        finally:
            out2 = stop_run_live(proc)
        return RestartRun(first, out2, proc.returncode, first.sim.position, snapshot)


def test_a_restarted_node_reconciles_its_position_with_the_simulator(
    restart_run: RestartRun,
) -> None:
    run = restart_run
    assert run.first.returncode == 0, run.first.out
    assert run.second_returncode == 0, run.second_out
    assert run.position_after_first > 0
    # the restarted node (empty memory cache) holds what the simulator says it holds, and
    # the strategy manages it again: it claims SPY's broker orders (external_order_claims)
    [position] = run.snapshot_after_restart["positions"]
    assert position["instrument_id"] == "SPY.ARCX"
    assert position["strategy_id"] == STRATEGY
    assert Decimal(position["quantity"]) == run.position_after_first
    assert run.snapshot_after_restart["open_orders"] == []
    # the journal holds each execution once across both runs: reconciliation added nothing
    assert_journal_matches(run.first, STRATEGY)
    with sqlite3.connect(run.first.state / "journal_paper.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2
        orders = db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    assert orders == len(run.first.sim.perm_ids)
