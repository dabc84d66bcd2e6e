"""
End to end through the real run_live path: ``run_live.py --broker ib --mode paper`` (preflight,
livenode.builder's Nautilus IB data and execution clients with convert_exchange_to_mic_venue,
the risk layer, the journal) trades MA cross on SPY against the IB Gateway simulator replaying
a sample-catalog day, and the node's fills, positions, lots and journal agree with the
simulator's own record of executions.

Time: the simulator presents the replay as happening now (GatewayConfig.wire_offset_ns from
market.as_now_offset): the node stamps reqMktData ticks with its wall clock and its strategies
run on it, so executions and bars are shifted onto that clock too. The replay runs at
``SPEED`` x, so its timestamps run ahead of the wall clock at that rate from the start on.
The strategy: MA cross on the gateway's 1-minute bars (ONE_MINUTE_MA_CROSS below: a node
aggregates its default 5-minute bars on its wall clock), with short averages and
regular_hours_only=false set through parameters.json as the dashboard persists them: its
session check reads bar time, the wall-clock date's NYSE session, while the simulator's market
stays in the replayed session (market orders fill there). Everything else is run_live.py as
shipped, in its own process, talking to the simulator on an ephemeral 127.0.0.1 port.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from adapters.ib_gateway_sim.broker import FillPlan
from adapters.ib_gateway_sim.broker import OrderError
from adapters.ib_gateway_sim.gateway_thread import GatewayThread
from adapters.ib_gateway_sim.market import Market
from adapters.ib_gateway_sim.market import ReplayClock
from adapters.ib_gateway_sim.market import as_now_offset
from adapters.ib_gateway_sim.messages import ExecutionView
from adapters.ib_gateway_sim.server import Gateway
from adapters.ib_gateway_sim.server import GatewayConfig

ROOT = Path(__file__).resolve().parents[1]
DAY = "2024-12-16"  # a sample session with several MA crosses on SPY (see test_live_replay)
START = pd.Timestamp(f"{DAY} 09:35", tz="America/New_York").tz_convert("UTC")
SPEED = 30.0  # a minute bar every 2 s
ACCOUNT = "DU1234567"
STRATEGY = "MACross-SPY"
# Short averages: the first cross comes within a few bars.
PARAMETERS = {STRATEGY: {"fast_period": 2, "slow_period": 3, "regular_hours_only": False}}


# run_live.py with one change: MA cross on the 1-minute bars the gateway sends instead of its
# default 5-minute bars. A live node aggregates 5-minute bars on its wall clock (a bar every
# five wall minutes whatever the replay speed); 1-minute bars come at the replay's pace.
ONE_MINUTE_MA_CROSS = """
import dataclasses, sys
import backtesting.registry as registry

spec = registry.STRATEGIES["ma_cross"]
defaults = spec.defaults
registry.STRATEGIES["ma_cross"] = dataclasses.replace(
    spec,
    defaults=lambda iid, n: defaults(iid, n) | {"bar_type": f"{iid}-1-MINUTE-LAST-EXTERNAL"},
)
import run_live
sys.exit(run_live.main(sys.argv[1:]))
"""


@dataclass
class SimRecord:
    """The simulator's own record, read on its loop."""

    executions: list[ExecutionView]
    position: Decimal
    perm_ids: list[int]  # of every order the simulator accepted
    rejections: list[OrderError]


def sim_record(sim: GatewayThread) -> SimRecord:
    def read() -> SimRecord:
        broker = sim.gateway.broker
        position = broker.positions["SPY"].quantity if "SPY" in broker.positions else Decimal(0)
        perm_ids = sorted(order.perm_id for order in broker.orders.values())
        return SimRecord(list(broker.executions), position, perm_ids, list(broker.rejections))

    return sim.call(read)


def freeze(clock: ReplayClock) -> None:
    clock.advance_to(clock.now_ns())
    clock.speed = 0.0


def start_gateway(catalog: Path) -> GatewayThread:
    market = Market.from_catalog(
        catalog, START - pd.Timedelta(days=3), START + pd.Timedelta(hours=8), ["SPY"]
    )
    config = GatewayConfig(
        account=ACCOUNT, pump_interval_seconds=0.02, wire_offset_ns=as_now_offset(START.value)
    )
    return GatewayThread(Gateway(market, ReplayClock(START.value, SPEED), config))


def write_env(tmp_path: Path, port: int) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    (state / "parameters.json").write_text(json.dumps(PARAMETERS))
    lines = {
        "STRATEGIES": "ma_cross", "SYMBOLS": "SPY", "IB_HOST": "127.0.0.1",
        "IB_PORT": str(port), "IB_ACCOUNT": ACCOUNT, "IB_CLIENT_ID": "1",
        "IB_PREFLIGHT_TIMEOUT_SECONDS": "5", "STATE_DIR": str(state), "LOG_LEVEL": "WARNING",
    }
    path = tmp_path / "bot.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    return path


def wait_for(predicate: Callable[[], bool], what: str, proc: subprocess.Popen[str],
             limit_s: float = 180) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"run_live exited waiting for {what}:\n{proc.stdout.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}:\n{proc.communicate()[0]}")
        time.sleep(0.1)


@dataclass
class LiveRun:
    out: str
    returncode: int
    state: Path
    sim: SimRecord
    wall_start_ns: int
    wall_end_ns: int


def run_live_session(
    catalog: Path,
    tmp: Path,
    scenario: Callable[[GatewayThread, subprocess.Popen[str]], None],
    before: Callable[[Gateway], None] | None = None,
) -> LiveRun:
    """
    Start the simulator (``before`` scripts it first), then run_live.py against it while
    ``scenario`` waits for what it needs; then the replay is frozen (no further bar, so no
    further signal) and the node is sent SIGTERM, its graceful shutdown.
    """
    wall_start_ns = time.time_ns()
    with start_gateway(catalog) as sim:
        if before is not None:
            sim.call(before, sim.gateway)
        env = write_env(tmp, sim.port)
        proc = subprocess.Popen(
            [sys.executable, "-c", ONE_MINUTE_MA_CROSS, "--config", str(env),
             "--broker", "ib", "--mode", "paper"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            scenario(sim, proc)
            sim.call(freeze, sim.gateway.clock)
            time.sleep(1.0)  # let the node see the last execution's commission report
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        return LiveRun(out, proc.returncode, tmp / "state", sim_record(sim), wall_start_ns,
                       time.time_ns())


@pytest.fixture(scope="module")
def live_run(sample_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> LiveRun:
    def scenario(sim: GatewayThread, proc: subprocess.Popen[str]) -> None:
        # a round trip (a buy and its sell) and the next buy: a position is open at the end
        wait_for(lambda: len(sim_record(sim).executions) >= 3, "three executions", proc)

    return run_live_session(sample_catalog, tmp_path_factory.mktemp("ib_sim_live"), scenario)


def journal_fills(state: Path) -> list[tuple]:
    with sqlite3.connect(state / "journal_paper.sqlite") as db:
        return db.execute(
            "SELECT trade_id, venue_order_id, ts_ns, instrument_id, side, quantity, price, "
            "commission, strategy, broker FROM fills ORDER BY id",
        ).fetchall()


def summary_fills(run: LiveRun) -> list[dict]:
    return json.loads((run.state / "session_summary.json").read_text())["fills"]


def execution_ns(execution: ExecutionView) -> int:
    """An execution's time as the simulator sent it ("YYYYMMDD HH:MM:SS <zone>")."""
    local, zone = execution.time.rsplit(" ", 1)
    return pd.Timestamp(local, tz=zone).value


def assert_journal_matches(run: LiveRun) -> list[tuple]:
    """
    One journal fill per simulator execution, in order, with the same execution id, order
    (the adapter's venue order id is IB's permId), time (as sent: replay time shifted to now),
    side, quantity, price and commission.
    """
    expected = [
        (e.exec_id, f"PERM-{e.perm_id}", execution_ns(e), "SPY.ARCX",
         "BUY" if e.side == "BOT" else "SELL", e.shares, e.price, e.commission, STRATEGY, "ib")
        for e in run.sim.executions
    ]
    actual = [
        (t, v, ts, iid, side, Decimal(q), Decimal(p), Decimal(c), s, b)
        for t, v, ts, iid, side, q, p, c, s, b in journal_fills(run.state)
    ]
    assert actual == expected
    return expected


def assert_fills_match(run: LiveRun) -> list[tuple]:
    """The journal matches the simulator (assert_journal_matches), the node's own fills (its
    cache, in the run's summary) are the same, and every order the simulator accepted was
    journaled."""
    expected = assert_journal_matches(run)
    assert [(f["ts_event"], f["side"], Decimal(f["quantity"]), Decimal(f["price"]),
             Decimal(f["commission"].split()[0])) for f in summary_fills(run)] == [
        (e[2], e[4], e[5], e[6], e[7]) for e in expected
    ]
    assert sorted({int(e[1].removeprefix("PERM-")) for e in expected}) == run.sim.perm_ids
    return expected


def signed(side: str, quantity: Decimal) -> Decimal:
    return quantity if side in ("BUY", "BOT") else -quantity


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
    sessions_before_drop: frozenset[int] = frozenset()


@pytest.fixture(scope="module")
def fault_run(
    sample_catalog: Path, tmp_path_factory: pytest.TempPathFactory,
) -> tuple[LiveRun, FaultMarks]:
    marks = FaultMarks()

    def reject_first_order(gateway: Gateway) -> None:
        gateway.broker.reject_next_order(REJECTION)

    def api_sessions_with_data(sim: GatewayThread) -> frozenset[int]:
        return sim.call(lambda: frozenset(
            id(s) for s in sim.gateway.api_sessions() if s.subscriptions
        ))

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
        wait_for(lambda: bool(api_sessions_with_data(sim) - marks.sessions_before_drop),
                 "the node's new session with its subscriptions", proc)
        wait_for(lambda: len(sim_record(sim).executions) > marks.executions_before_drop,
                 "a fill after the reconnection", proc)

    run = run_live_session(sample_catalog, tmp_path_factory.mktemp("ib_sim_faults"), scenario,
                           before=reject_first_order)
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
        orders = db.execute("SELECT client_order_id FROM orders").fetchall()
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


def start_run_live(env: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", ONE_MINUTE_MA_CROSS, "--config", str(env),
         "--broker", "ib", "--mode", "paper"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def stop_run_live(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    return out


@pytest.fixture(scope="module")
def restart_run(sample_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> RestartRun:
    tmp = tmp_path_factory.mktemp("ib_sim_restart")
    wall_start_ns = time.time_ns()
    with start_gateway(sample_catalog) as sim:
        env = write_env(tmp, sim.port)
        proc = start_run_live(env)
        try:
            wait_for(lambda: len(sim_record(sim).executions) >= 1, "the first buy", proc)
            sim.call(freeze, sim.gateway.clock)
            time.sleep(1.0)
            out = stop_run_live(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        first = LiveRun(out, proc.returncode, tmp / "state", sim_record(sim), wall_start_ns,
                        time.time_ns())
        # the same node again (same state folder, journal and client id) on the same account
        proc = start_run_live(env)
        state_file = tmp / "state" / "control" / "state.json"
        try:
            def running_with_positions() -> bool:
                if not state_file.exists():
                    return False
                snapshot = json.loads(state_file.read_text())
                return snapshot["phase"] == "running" and bool(snapshot["positions"])

            wait_for(running_with_positions, "the restarted node with its position", proc, 60)
            snapshot = json.loads(state_file.read_text())
            time.sleep(1.0)
            out2 = stop_run_live(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        return RestartRun(first, out2, proc.returncode, first.sim.position, snapshot)


def test_a_restarted_node_reconciles_its_position_with_the_simulator(
    restart_run: RestartRun,
) -> None:
    run = restart_run
    assert run.first.returncode == 0, run.first.out
    assert run.second_returncode == 0, run.second_out
    assert run.position_after_first > 0
    # the restarted node (empty memory cache) holds what the simulator says it holds
    [position] = run.snapshot_after_restart["positions"]
    assert position["instrument_id"] == "SPY.ARCX"
    assert Decimal(position["quantity"]) == run.position_after_first
    assert run.snapshot_after_restart["open_orders"] == []
    # the journal holds each execution once across both runs: reconciliation added nothing
    assert_journal_matches(run.first)
    with sqlite3.connect(run.first.state / "journal_paper.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2
        orders = db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    assert orders == len(run.first.sim.perm_ids)
