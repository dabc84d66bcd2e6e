"""
A session strategy's timed exit end to end: ``run_live.py --broker ib --mode paper`` (the real
Nautilus IB adapter, the risk layer, the SQLite journal) runs end-of-day momentum on SPY
against the IB Gateway simulator. The strategy seeds its average daily volume from the
gateway's daily bars (WARMUP_DAYS, the default 70), enters on its own continuation rule, places
its protective stop, and at its EXIT_TIME the hard-exit time alert set in
``SessionStrategy._start_session`` fires on the node's live (wall) clock: ``_on_hard_exit``
cancels the stop and sends the closing market order, which the simulator executes.

Proven from the simulator's own record: flat after the exit time, the closing order is the
window-end exit (``exit:window_end``), the stop was cancelled at the simulator (nothing
working), the journal's fills are the simulator's executions; and the node's log and output
carry no [ERROR] / Traceback, unresolved_orders.log nothing but partial fills, and run_live
exits 0 on SIGTERM.

What differs from run_live.py as shipped, and why (all in the child process, before
run_live.main): the node's clock is the real wall clock and CI runs at any hour or weekday,
so the strategy is given a session for today's New York date that is open now (its
SessionTracker and its calendar look-up; the watchdog, the kill switch, the risk layer and the
journal keep the real calendar), and EODMomentum's ENTRY_WINDOW / EXIT_TIME are set to start
at the script's minute and end about three minutes of wall time later. The exit path itself
(the alert, ``_on_hard_exit``, ``exit``) is not touched. Parameters on the registry's defaults
(parameters.json cannot change a session strategy's): continuation only, over a 1-bar breakout, so the strategy's own rule
fires within a few bars of the replayed stretch; BEARISH_INSTRUMENT=disabled since the
simulator serves SPY only (no inverse ETF).
"""

from __future__ import annotations

import datetime as dt
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
from strategies.records import ExitReason
from strategies.records import exit_tag
from strategies.sessions import EXCHANGE_TZ
from tests.ib_sim_live import LiveRun
from tests.ib_sim_live import assert_fills_match
from tests.ib_sim_live import execution_ns
from tests.ib_sim_live import run_live_session
from tests.ib_sim_live import sim_record
from tests.ib_sim_live import start_gateway
from tests.ib_sim_live import wait_for
from tests.ib_sim_live import write_env

# A sample stretch of SPY rising minute after minute (each close above the previous bar's
# high and the session's VWAP): a 1-bar continuation breakout fires on the second or third
# bar the strategy sees, whichever minute its first bar is.
DAY = "2024-01-23"
START = pd.Timestamp(f"{DAY} 12:03", tz="America/New_York").tz_convert("UTC")
# A minute bar every 40 s. Gateway time runs ahead of the wall clock at this rate, and the
# entry bar's time must come before the exit time (wall), so the speed stays low.
SPEED = 1.5
STRATEGY = "EODMomentum-EOD"
# The strategy's parameters, set on its registry defaults in the child (parameters.json is
# refused for it: session strategies take no parameter changes while they run).
# average_volume_sessions 10: the gateway answers the 70-day daily-bar request with 15
# sessions, fewer than the default 20, so the average stays unknown and the filter refuses.
PARAMETERS = {"modes": "continuation", "breakout_bars": 1, "average_volume_sessions": 10}
# The exit: at least this long after the child starts (wall seconds), on a whole minute
# (EXIT_TIME is HH:MM); room for the node's start-up and two or three bars.
EXIT_AFTER_S = 170

SCRIPT = f"""
import dataclasses, sys
import pandas as pd
import backtesting.registry as registry
from strategies import session_strategy, sessions
from strategies.eod_momentum import EODMomentum

# Test only: the strategy's session and windows around now (the node runs on the wall clock).
now = pd.Timestamp.now(tz=sessions.EXCHANGE_TZ)
today = now.date()
entry_start = now.floor("min") - pd.Timedelta(minutes=1)  # before the first bar the node sees
exit_at = (now + pd.Timedelta(seconds={EXIT_AFTER_S})).ceil("min")
fake = sessions.Session(
    date=today,
    pre_open=(now - pd.Timedelta(hours=2)).tz_convert("UTC"),
    open=(now - pd.Timedelta(hours=1)).tz_convert("UTC"),
    close=(exit_at + pd.Timedelta(hours=1)).tz_convert("UTC"),
    post_close=(exit_at + pd.Timedelta(hours=2)).tz_convert("UTC"),
)
real_session_for = session_strategy.session_for


def session_for(date):
    return fake if date == today else real_session_for(date)


class TodayIsOpen(sessions.SessionTracker):
    def update(self, ts_ns):
        super().update(ts_ns)
        if self.day == today and self.session is not fake:
            self.session, self._open_ns, self._close_ns = fake, fake.open.value, fake.close.value
        return self.session


spec = registry.STRATEGIES["eod_momentum"]
universe_defaults = spec.universe_defaults
registry.STRATEGIES["eod_momentum"] = dataclasses.replace(
    spec, universe_defaults=lambda universe: universe_defaults(universe) | {PARAMETERS!r},
)
session_strategy.session_for = session_for
session_strategy.SessionTracker = TodayIsOpen
EODMomentum.ENTRY_WINDOW = (entry_start.strftime("%H:%M"), exit_at.strftime("%H:%M"))
EODMomentum.EXIT_TIME = exit_at.strftime("%H:%M")
print(f"TEST WINDOW {{EODMomentum.ENTRY_WINDOW}} exit {{EODMomentum.EXIT_TIME}} ET "
      f"at {{exit_at.value}}", flush=True)

import run_live
sys.exit(run_live.main(sys.argv[1:]))
"""


@dataclass
class SessionRun:
    run: LiveRun
    exit_ns: int  # the strategy's exit time as the child computed it
    wall_seconds: float
    sim_orders: dict[str, str]  # the simulator's orders: order ref (client order id) -> status


def clear_of_midnight() -> None:
    """EXIT_TIME is HH:MM on today's New York date: wait out the few minutes before midnight."""
    now = dt.datetime.now(EXCHANGE_TZ)
    if now.hour == 23 and now.minute >= 54:
        midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=5)
        time.sleep((midnight - now).total_seconds())


def journal_orders(state: Path) -> dict[str, str]:
    """client order id -> tags, as the journal keeps them."""
    with sqlite3.connect(state / "journal_paper.sqlite") as db:
        return dict(db.execute("SELECT client_order_id, tags FROM orders").fetchall())


@pytest.fixture(scope="module")
def session_run(sample_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> SessionRun:
    tmp = tmp_path_factory.mktemp("ib_sim_session")
    clear_of_midnight()
    began = time.monotonic()
    # 75 calendar days of history (as the core RSI test): the 20 completed sessions the average daily volume needs
    with start_gateway(sample_catalog, START, SPEED, history=pd.Timedelta(days=75)) as sim:
        env = write_env(tmp, sim.port, "eod_momentum", {},
                        {"BEARISH_INSTRUMENT": "disabled"})

        def scenario(sim: GatewayThread, proc: subprocess.Popen[str]) -> None:
            wait_for(lambda: any(e.side == "BOT" for e in sim_record(sim).executions),
                     "the entry", proc, 240)

            def exited() -> bool:
                record = sim_record(sim)
                return (any(e.side == "SLD" for e in record.executions)
                        and record.position == 0 and not record.working)

            wait_for(exited, "the hard exit executed and nothing working", proc, 300)

        run = run_live_session(sim, SCRIPT, env, scenario)
        sim_orders = sim.call(lambda: {o.request.order_ref: o.status
                                       for o in sim.gateway.broker.orders.values()})
    [line] = [l for l in run.out.splitlines() if l.startswith("TEST WINDOW")]
    return SessionRun(run, int(line.rsplit(" ", 1)[1]), time.monotonic() - began, sim_orders)


def test_run_live_stops_cleanly(session_run: SessionRun) -> None:
    run = session_run.run
    print(f"wall time {session_run.wall_seconds:.0f} s")
    assert run.returncode == 0, run.out
    assert "mode paper, broker ib, strategies eod_momentum, symbols SPY" in run.out
    assert "SIGTERM received: shutting down" in run.out
    log = (run.state / "logs" / "node.log").read_text()
    for text in (run.out, log):
        assert "[ERROR]" not in text
        assert "Traceback" not in text
    unresolved = run.state / "unresolved_orders.log"
    if unresolved.exists():
        kinds = {json.loads(line)["kind"] for line in unresolved.read_text().splitlines()}
        assert kinds <= {"partial_fill"}


def test_the_hard_exit_closed_the_position_at_the_simulator(session_run: SessionRun) -> None:
    run = session_run.run
    sim = run.sim
    assert sim.position == 0
    assert sim.working == []  # the protective stop is not left working
    buys = [e for e in sim.executions if e.side == "BOT"]
    sells = [e for e in sim.executions if e.side == "SLD"]
    assert buys and sells
    assert sum(e.shares for e in buys) == sum(e.shares for e in sells)
    # one closing order, the strategy's window-end exit, executed after the exit time
    [exit_perm] = {e.perm_id for e in sells}
    orders = journal_orders(run.state)
    [exit_ref] = {e.order_ref for e in sells}
    tags = [t for cid, t in orders.items() if cid in exit_ref]
    assert tags == [exit_tag(ExitReason.WINDOW_END)], (exit_ref, orders)
    assert all(execution_ns(e) >= session_run.exit_ns for e in sells)
    assert all(execution_ns(e) < session_run.exit_ns for e in buys)


def test_the_stop_was_cancelled_at_the_simulator(session_run: SessionRun) -> None:
    run = session_run.run
    orders = journal_orders(run.state)
    stops = [cid for cid, tags in orders.items() if tags == exit_tag(ExitReason.STOP_LOSS)]
    assert len(stops) == 1
    [stop] = stops
    # the simulator's order refs carry the client order id
    statuses = [st for ref, st in session_run.sim_orders.items() if stop in ref]
    assert statuses == ["Cancelled"], session_run.sim_orders


def test_the_journal_matches_the_simulator(session_run: SessionRun) -> None:
    assert_fills_match(session_run.run, STRATEGY)
