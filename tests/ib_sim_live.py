"""
run_live.py against the IB Gateway simulator: start the simulator on a sample-catalog day,
run the real run_live.py in its own process against it, and read the simulator's own record.

Time: the simulator presents the replay as happening now (GatewayConfig.wire_offset_ns from
market.as_now_offset): the node stamps reqMktData ticks with its wall clock and its strategies
run on it, so executions and bars are shifted onto that clock too. The replay runs at its
speed from the start on, so its timestamps run ahead of the wall clock at that rate.

Bars: a live node aggregates its engine-built bars (5- or 15-minute from minutes) on its wall
clock, a bar every five or fifteen wall minutes whatever the replay speed. `run_live_script`
runs run_live.py with one change, the strategy's bar type taken from the gateway instead
(IB builds it: historical bars kept up to date), so bars come at the replay's pace.
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

from adapters.ib_gateway_sim.broker import OrderError
from adapters.ib_gateway_sim.gateway_thread import GatewayThread
from adapters.ib_gateway_sim.market import Market
from adapters.ib_gateway_sim.market import ReplayClock
from adapters.ib_gateway_sim.market import as_now_offset
from adapters.ib_gateway_sim.messages import ExecutionView
from adapters.ib_gateway_sim.server import Gateway
from adapters.ib_gateway_sim.server import GatewayConfig

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "DU1234567"


def run_live_script(strategy: str, bars: str) -> str:
    """Python source running run_live.py with `strategy`'s bar type set to `bars` (e.g.
    "1-MINUTE-LAST-EXTERNAL") on each instrument."""
    return f"""
import dataclasses, sys
import backtesting.registry as registry

spec = registry.STRATEGIES[{strategy!r}]
defaults = spec.defaults
registry.STRATEGIES[{strategy!r}] = dataclasses.replace(
    spec,
    defaults=lambda iid, n: defaults(iid, n) | {{"bar_type": f"{{iid}}-{bars}"}},
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
    working: list[tuple[int, str, Decimal, Decimal | None]]  # perm id, action, qty, limit


def sim_record(sim: GatewayThread, symbol: str = "SPY") -> SimRecord:
    def read() -> SimRecord:
        broker = sim.gateway.broker
        position = broker.positions[symbol].quantity if symbol in broker.positions else Decimal(0)
        perm_ids = sorted(order.perm_id for order in broker.orders.values())
        working = sorted(
            (o.perm_id, o.request.action, o.remaining, o.request.lmt_price)
            for o in broker.orders.values() if o.is_open
        )
        return SimRecord(list(broker.executions), position, perm_ids, list(broker.rejections),
                         working)

    return sim.call(read)


def freeze(clock: ReplayClock) -> None:
    clock.advance_to(clock.now_ns())
    clock.speed = 0.0


def start_gateway(
    catalog: Path,
    start: pd.Timestamp,
    speed: float,
    history: pd.Timedelta = pd.Timedelta(days=3),
    starting_cash: Decimal = Decimal("100000"),
) -> GatewayThread:
    market = Market.from_catalog(catalog, start - history, start + pd.Timedelta(hours=8), ["SPY"])
    config = GatewayConfig(
        account=ACCOUNT, starting_cash=starting_cash, pump_interval_seconds=0.02,
        wire_offset_ns=as_now_offset(start.value),
    )
    return GatewayThread(Gateway(market, ReplayClock(start.value, speed), config))


def write_env(tmp_path: Path, port: int, strategy: str, parameters: dict,
              extra: dict[str, str] | None = None) -> Path:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    (state / "parameters.json").write_text(json.dumps(parameters))
    lines = {
        "STRATEGIES": strategy, "SYMBOLS": "SPY", "IB_HOST": "127.0.0.1",
        "IB_PORT": str(port), "IB_ACCOUNT": ACCOUNT, "IB_CLIENT_ID": "1",
        "IB_PREFLIGHT_TIMEOUT_SECONDS": "5", "STATE_DIR": str(state), "LOG_LEVEL": "WARNING",
        # The simulator presents its replay as happening now (whatever the hour or the
        # weekday the test runs), so the node's entry window, judged on the wall clock, is off.
        "TRADING_START": "", "TRADING_END": "",
    } | (extra or {})
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


def start_run_live(script: str, env: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, "--config", str(env), "--broker", "ib", "--mode", "paper"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def stop_run_live(proc: subprocess.Popen[str]) -> str:
    """SIGTERM (run_live's graceful shutdown) and its output; killed if it does not stop."""
    try:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        return out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@dataclass
class LiveRun:
    out: str
    returncode: int
    state: Path
    sim: SimRecord
    wall_start_ns: int
    wall_end_ns: int
    summary: dict  # session_summary.json as this run left it (a restart replaces the file)


def run_live_session(
    sim: GatewayThread,
    script: str,
    env: Path,
    scenario: Callable[[GatewayThread, subprocess.Popen[str]], None],
) -> LiveRun:
    """
    run_live.py against the running simulator while ``scenario`` waits for what it needs;
    then the replay is frozen (no further bar, so no further signal) and the node is sent
    SIGTERM, its graceful shutdown.
    """
    wall_start_ns = time.time_ns()
    proc = start_run_live(script, env)
    try:
        scenario(sim, proc)
        sim.call(freeze, sim.gateway.clock)
        time.sleep(1.0)  # let the node see the last execution's commission report
    except BaseException:
        stop_run_live(proc)
        raise
    out = stop_run_live(proc)
    state = env.parent / "state"
    summary_file = state / "session_summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    return LiveRun(out, proc.returncode, state, sim_record(sim), wall_start_ns, time.time_ns(),
                   summary)


def journal_fills(state: Path) -> list[tuple]:
    with sqlite3.connect(state / "journal_paper.sqlite") as db:
        return db.execute(
            "SELECT trade_id, venue_order_id, ts_ns, instrument_id, side, quantity, price, "
            "commission, strategy, broker FROM fills ORDER BY id",
        ).fetchall()


def summary_fills(run: LiveRun) -> list[dict]:
    return run.summary["fills"]


def execution_ns(execution: ExecutionView) -> int:
    """An execution's time as the simulator sent it ("YYYYMMDD HH:MM:SS <zone>")."""
    local, zone = execution.time.rsplit(" ", 1)
    return pd.Timestamp(local, tz=zone).value


def signed(side: str, quantity: Decimal) -> Decimal:
    return quantity if side in ("BUY", "BOT") else -quantity


def assert_journal_matches(run: LiveRun, strategy: str) -> list[tuple]:
    """
    One journal fill per simulator execution, in order, with the same execution id, order
    (the adapter's venue order id is IB's permId), time (as sent: replay time shifted to now),
    side, quantity, price and commission.
    """
    expected = [
        (e.exec_id, f"PERM-{e.perm_id}", execution_ns(e), "SPY.ARCX",
         "BUY" if e.side == "BOT" else "SELL", e.shares, e.price, e.commission, strategy, "ib")
        for e in run.sim.executions
    ]
    actual = [
        (t, v, ts, iid, side, Decimal(q), Decimal(p), Decimal(c), s, b)
        for t, v, ts, iid, side, q, p, c, s, b in journal_fills(run.state)
    ]
    assert actual == expected
    return expected


def assert_fills_match(run: LiveRun, strategy: str) -> list[tuple]:
    """The journal matches the simulator (assert_journal_matches) and the node's own fills (its
    cache, in the run's summary) are the same."""
    expected = assert_journal_matches(run, strategy)
    assert [(f["ts_event"], f["side"], Decimal(f["quantity"]), Decimal(f["price"]),
             Decimal(f["commission"].split()[0])) for f in summary_fills(run)] == [
        (e[2], e[4], e[5], e[6], e[7]) for e in expected
    ]
    return expected
