"""
The core RSI strategy end to end through ``run_live.py --broker ib --mode paper`` against the
IB Gateway simulator: a replayed sample day, the real Nautilus IB adapter, the bid-chasing
execution algorithm and the journal, which keeps the lots. Then the node is restarted
on the same state and account while its profit targets rest at the simulator.

What differs from run_live.py as shipped (tests/ib_sim_live.py says why): the 15-minute bars
come from the gateway (IB's own 15-minute bars, kept up to date) instead of being built from
minutes on the node's wall clock. The strategy warms both RSIs from 70 days of the gateway's
historical 15-minute bars (WARMUP_DAYS, the default), so it trades from the first bars of
the day. Parameters as the dashboard persists them: a 0.2% profit target (so targets fill
within the day); everything else is the plan's default on a $1,000,000 paper account.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from adapters.ib_gateway_sim.gateway_thread import GatewayThread
from tests.ib_sim_live import LiveRun
from tests.ib_sim_live import SimRecord
from tests.ib_sim_live import assert_fills_match
from tests.ib_sim_live import run_live_script
from tests.ib_sim_live import run_live_session
from tests.ib_sim_live import signed
from tests.ib_sim_live import sim_record
from tests.ib_sim_live import start_gateway
from tests.ib_sim_live import start_run_live
from tests.ib_sim_live import stop_run_live
from tests.ib_sim_live import wait_for
from tests.ib_sim_live import write_env

# A sample session whose 15-minute RSI crosses 30 upward three times (after a morning dip).
DAY = "2024-11-20"
START = pd.Timestamp(f"{DAY} 09:30", tz="America/New_York").tz_convert("UTC")
SPEED = 120.0  # a 15-minute bar every 7.5 s, the bid chaser's minute in half a second
STRATEGY = "CoreRSI-SPY"
PARAMETERS = {STRATEGY: {"profit_target": 0.002}}
SCRIPT = run_live_script("core_rsi", "15-MINUTE-LAST-EXTERNAL")
JOURNAL_FILE = "journal_paper.sqlite"  # the journal keeps the strategy's lots


def replay_time(sim: GatewayThread) -> pd.Timestamp:
    return pd.Timestamp(sim.call(sim.gateway.clock.now_ns), tz="UTC")


@dataclass
class StoredLot:
    lot_id: str
    kind: str
    quantity: Decimal
    price: Decimal
    open_quantity: Decimal


def stored_lots(state: Path) -> list[StoredLot]:
    """The strategy's lots as the journal keeps them, read as its next start will read them."""
    with sqlite3.connect(state / JOURNAL_FILE) as db:
        lots = db.execute(
            "SELECT lot_id, kind, quantity, price FROM core_lots WHERE strategy = ? "
            "ORDER BY opened_ns, lot_id", (STRATEGY,),
        ).fetchall()
        sold = dict(db.execute(
            "SELECT lot_id, SUM(CAST(quantity AS INTEGER)) FROM core_lot_sales WHERE strategy = ? "
            "GROUP BY lot_id", (STRATEGY,),
        ).fetchall())
    return [
        StoredLot(lot_id, kind, Decimal(q), Decimal(p), Decimal(q) - Decimal(sold.get(lot_id, 0)))
        for lot_id, kind, q, p in lots
    ]


@dataclass
class CoreRun:
    first: LiveRun
    working_before_restart: list
    second_out: str
    second_returncode: int
    snapshot_after_restart: dict
    sim_after_restart: SimRecord
    second_summary: dict


def target_resting(sim: GatewayThread) -> bool:
    """A profit target rests at the simulator: a lot is open with its sell working."""
    record = sim_record(sim)
    return record.position > 0 and any(action == "SELL" for _, action, _, _ in record.working)


@pytest.fixture(scope="module")
def core_run(sample_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> CoreRun:
    tmp = tmp_path_factory.mktemp("ib_sim_core_rsi")
    with start_gateway(sample_catalog, START, SPEED, history=pd.Timedelta(days=75),
                       starting_cash=Decimal("1000000")) as sim:
        # targets stay at the broker across the restart, as a trader running GTC targets keeps them
        # the scenario is scripted on regular-hours bars (warm-up history requested with useRTH)
        extra = {"CANCEL_ON_SHUTDOWN": "false", "EXTENDED_HOURS": "false"}
        env = write_env(tmp, sim.port, "core_rsi", PARAMETERS, extra)

        def scenario(sim: GatewayThread, proc: subprocess.Popen[str]) -> None:
            # a lot sold at its target while another lot's target still rests
            def round_trip_and_resting() -> bool:
                sides = [e.side for e in sim_record(sim).executions]
                return "SLD" in sides and target_resting(sim)

            wait_for(round_trip_and_resting, "a target sold and another resting", proc, 300)

        first = run_live_session(sim, SCRIPT, env, scenario)
        working = sim_record(sim).working
        # the same node again (same state folder, lots, journal and client id)
        proc = start_run_live(SCRIPT, env)
        state_file = tmp / "state" / "control" / "state.json"
        try:
            def running_with_position() -> bool:
                if not state_file.exists():
                    return False
                snapshot = json.loads(state_file.read_text())
                return snapshot["phase"] == "running" and bool(snapshot["positions"])

            wait_for(running_with_position, "the restarted node with its position", proc, 90)
            time.sleep(1.0)
            snapshot = json.loads(state_file.read_text())
            after = sim_record(sim)
        finally:
            out2 = stop_run_live(proc)
        summary = json.loads((tmp / "state" / "session_summary.json").read_text())
        return CoreRun(first, working, out2, proc.returncode, snapshot, after, summary)


def test_core_rsi_trades_the_day_through_the_ib_adapter(core_run: CoreRun) -> None:
    run = core_run.first
    assert run.returncode == 0, run.out
    assert "mode paper, broker ib, strategies core_rsi, symbols SPY" in run.out
    sides = [e.side for e in run.sim.executions]
    assert "BOT" in sides and "SLD" in sides
    # fills: the journal and the node's own fills are the simulator's executions, each once
    assert_fills_match(run, STRATEGY)
    assert len({e.exec_id for e in run.sim.executions}) == len(run.sim.executions)
    # buys went through the bid chaser as limit orders; nothing was sold short
    net = Decimal(0)
    for execution in run.sim.executions:
        net += signed(execution.side, execution.shares)
        assert net >= 0
    assert net == run.sim.position > 0


def test_the_rsis_were_warmed_from_the_gateways_history(core_run: CoreRun) -> None:
    # the first buy signal came in the day's first hour, with the weekly RSI known: without
    # the 70 days of history the intraday RSI needs 8 bars (two hours) and the weekly RSI
    # 8 NYSE weeks before either has a value
    with sqlite3.connect(core_run.first.state / JOURNAL_FILE) as db:
        signals = db.execute(
            "SELECT ts_ns, indicators FROM signals WHERE signal_type = 'rsi_cross_up' ORDER BY id"
        ).fetchall()
    first_ts, indicators = signals[0]
    assert set(json.loads(indicators)) == {"rsi_15m", "rsi_weekly"}
    opened = core_run.first.wall_start_ns  # the replay's 09:30 is the run's first minute
    assert first_ts - opened < 60 * 60 * 10**9


def test_lots_agree_with_the_simulators_executions(core_run: CoreRun) -> None:
    run = core_run.first
    lots = stored_lots(run.state)
    # every lot's shares and average price are its buy order's executions at the simulator
    buys: dict[int, list] = {}
    for execution in run.sim.executions:
        if execution.side == "BOT":
            buys.setdefault(execution.perm_id, []).append(execution)
    bought = sorted(
        (sum(e.shares for e in es), sum(e.shares * e.price for e in es) / sum(e.shares for e in es))
        for es in buys.values()
    )
    assert sorted((lot.quantity, lot.price) for lot in lots) == bought
    # what the lots still hold is the simulator's position; what they sold, its sells
    assert sum(lot.open_quantity for lot in lots) == run.sim.position
    sold = sum(e.shares for e in run.sim.executions if e.side == "SLD")
    assert sum(lot.quantity - lot.open_quantity for lot in lots) == sold
    # the node's final position is the simulator's
    snapshot = json.loads((run.state / "control" / "state.json").read_text())
    [position] = snapshot["positions"]
    assert Decimal(position["quantity"]) == run.sim.position


def test_a_resting_target_is_the_open_lots_sale(core_run: CoreRun) -> None:
    # at the stop the simulator holds one working sell per open lot that is not core, for
    # the part of the lot its target sells, 0.2% above the lot's fill price (rounded up)
    lots = [lot for lot in stored_lots(core_run.first.state)
            if lot.open_quantity > 0 and lot.kind != "core"]
    sells = [w for w in core_run.working_before_restart if w[1] == "SELL"]
    assert len(sells) == len(lots) >= 1
    for lot, (_, _, quantity, limit) in zip(lots, sorted(sells, key=lambda w: w[0])):
        assert quantity <= lot.open_quantity
        assert limit >= lot.price * Decimal("1.002")
        assert limit - lot.price * Decimal("1.002") < Decimal("0.01")


def position_qty(core_run: CoreRun) -> Decimal:
    return core_run.first.sim.position


def test_a_restarted_node_takes_its_position_and_targets_back(core_run: CoreRun) -> None:
    assert core_run.second_returncode == 0, core_run.second_out
    # the position rebuilt from IB's reports belongs to the strategy again (its claim)
    [position] = core_run.snapshot_after_restart["positions"]
    assert position["strategy_id"] == STRATEGY
    assert Decimal(position["quantity"]) == core_run.first.sim.position
    # the restarted run executed nothing; the position it found is reported as reconciled
    # from the broker's reports, not as a fill of the day
    assert core_run.second_summary["fills"] == []
    [reconciled] = core_run.second_summary["reconciled_fills"]
    assert (reconciled["side"], Decimal(reconciled["quantity"])) == ("BUY", position_qty(core_run))
    # the targets working at the broker are the lots' targets: the restarted strategy adopted
    # them as they were (same IB orders), cancelled nothing and placed nothing twice
    after = core_run.sim_after_restart
    assert after.working == core_run.working_before_restart
    assert after.perm_ids == core_run.first.sim.perm_ids
    assert after.executions == core_run.first.sim.executions
