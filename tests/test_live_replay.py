"""
End to end: a full sample trading day replayed at top speed through run_live.py in paper mode
(replay feed, sandbox venue, the risk actors) gives the same orders and fills as a backtest of
the same day, and shuts down cleanly. Plus the shutdown paths: SIGTERM, a second signal, the
`stop` command, and the control interface's validation.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import sqlite3

import pandas as pd
import pytest

from backtesting.builder import BacktestRequest
from backtesting.run import run_backtest
from livenode.control import ControlChannel
from livenode.control import send_command
from strategies.sessions import EXCHANGE_TZ

ROOT = Path(__file__).resolve().parents[1]
DAY = dt.date(2024, 12, 16)  # a sample session where MA cross buys and sells SPY and QQQ twice each
SYMBOLS = ("SPY", "QQQ")


def write_env(path: Path, catalog: Path, state: Path, speed: str, **extra: str) -> Path:
    lines = {
        "MODE": "paper", "BROKER": "replay", "STRATEGIES": "ma_cross",
        "SYMBOLS": ",".join(SYMBOLS), "REPLAY_CATALOG": str(catalog),
        "REPLAY_START": DAY.isoformat(), "REPLAY_SPEED": speed, "STATE_DIR": str(state),
        "LOG_LEVEL": "WARNING", "STARTING_CAPITAL": "100000",
    } | extra
    path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    return path


def start_live(env: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "run_live.py", "--config", str(env), *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def wait_for_phase(state: Path, phase: str, proc: subprocess.Popen[str], limit_s: float = 60) -> dict:
    path = state / "control" / "state.json"
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if path.exists():
            snapshot = json.loads(path.read_text())
            if snapshot["phase"] == phase:
                return snapshot
        if proc.poll() is not None:
            raise AssertionError(f"run_live exited early:\n{proc.stdout.read()}")
        time.sleep(0.1)
    raise AssertionError(f"no {phase} snapshot in {limit_s} s")


@pytest.fixture(scope="module")
def replayed_day(sample_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("replay")
    state = tmp / "state"
    env = write_env(tmp / "bot.env", sample_catalog, state, "max")
    result = subprocess.run(
        [sys.executable, "run_live.py", "--config", str(env)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    records = tmp / "backtest_records"
    records.mkdir()
    backtest = run_backtest(
        BacktestRequest(strategy="ma_cross", symbols=SYMBOLS, catalog=sample_catalog,
                        start=DAY, end=DAY, progress=False,
                        journal_url=f"sqlite:///{records / 'journal_backtest.sqlite'}",
                        records_dir=records),
        tmp / "backtest",
    )
    return {
        "backtest_records": records,
        "result": result,
        "summary": json.loads((state / "session_summary.json").read_text()),
        "state": state,
        "backtest": backtest,
    }


def test_replayed_day_exits_cleanly(replayed_day: dict) -> None:
    result = replayed_day["result"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nautilus-equities" in result.stdout.splitlines()[0]  # the version banner first
    assert "MACross-SPY: PASS - no self-check" in result.stdout
    summary = replayed_day["summary"]
    assert summary["stop_reason"] == "replay finished"
    assert summary["orders_open"] == 0
    assert summary["gate"]["trading_state"] == "ACTIVE"
    snapshot = json.loads((replayed_day["state"] / "control" / "state.json").read_text())
    assert snapshot["phase"] == "stopped"


def test_replay_fills_match_the_backtest(replayed_day: dict) -> None:
    live = pd.DataFrame(replayed_day["summary"]["fills"])
    bt = replayed_day["backtest"].fills
    assert len(bt) == 8, "the chosen day trades each symbol in and out twice"
    live_rows = [
        (pd.Timestamp(r.ts_event, tz="UTC"), r.instrument_id, r.side, Decimal(r.quantity),
         Decimal(r.price), Decimal(r.commission.split()[0]))
        for r in live.itertuples()
    ]
    bt_rows = [
        (pd.Timestamp(r.ts_event), r.instrument_id, r.side, Decimal(str(r.quantity)),
         Decimal(str(r.price)), Decimal(str(r.commission)))
        for r in bt.itertuples()
    ]
    assert sorted(live_rows) == sorted(bt_rows)


def test_replay_positions_match_the_backtest(replayed_day: dict) -> None:
    bt = replayed_day["backtest"].fills
    net: dict[str, Decimal] = {}
    for r in bt.itertuples():
        sign = 1 if r.side == "BUY" else -1
        net[r.instrument_id] = net.get(r.instrument_id, Decimal(0)) + sign * Decimal(str(r.quantity))
    open_in_backtest = sorted(iid for iid, qty in net.items() if qty != 0)
    assert sorted(replayed_day["summary"]["positions_open"]) == open_in_backtest


def test_sigterm_shuts_down_gracefully(sample_catalog: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = start_live(write_env(tmp_path / "bot.env", sample_catalog, state, "realtime"))
    wait_for_phase(state, "running", proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "SIGTERM received: shutting down" in out
    summary = json.loads((state / "session_summary.json").read_text())
    assert summary["stop_reason"] == "signal SIGTERM"
    assert (state / "strategy_state.json").exists()
    assert json.loads((state / "control" / "state.json").read_text())["phase"] == "stopped"


def test_second_signal_forces_exit(sample_catalog: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = start_live(write_env(tmp_path / "bot.env", sample_catalog, state, "realtime"))
    wait_for_phase(state, "running", proc)
    proc.send_signal(signal.SIGINT)
    # Signals of one kind sent together merge into one: the second goes once the first is seen.
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "SIGINT received" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    out = "".join(seen) + out
    assert proc.returncode == 130, out
    assert "second SIGINT: exiting now" in out


def test_stop_command_flattens_halts_and_stops(sample_catalog: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    # x1000: the day's first buys (14:40 UTC) come about 20 s in and are held for about 10 s,
    # time enough for the stop command on a loaded machine (x2000 left 5 s: too tight).
    env = write_env(tmp_path / "bot.env", sample_catalog, state, "x1000")
    proc = start_live(env)
    deadline = time.monotonic() + 90
    snapshot: dict = {}
    while time.monotonic() < deadline:
        snapshot = wait_for_phase(state, "running", proc)
        if len(snapshot["positions"]) == 2:
            break
        time.sleep(0.05)
    assert sorted(p["instrument_id"] for p in snapshot["positions"]) == ["QQQ.SIM", "SPY.SIM"]
    status = subprocess.run(
        [sys.executable, "run_live.py", "status", "--config", str(env)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )
    reported = json.loads(status.stdout.split("\n", 1)[1])  # after the version banner
    assert reported["phase"] == "running" and reported["broker"] == "replay"
    stop = subprocess.run(
        [sys.executable, "run_live.py", "stop", "--config", str(env), "--reason", "test"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )
    assert "stop command written" in stop.stdout
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    summary = json.loads((state / "session_summary.json").read_text())
    assert summary["stop_reason"] == "stop command: test"
    assert summary["gate"]["trading_state"] == "HALTED"
    assert summary["positions_open"] == [] and summary["orders_open"] == 0
    # The two buys, then the flattening sells of the same quantities.
    fills = summary["fills"]
    buys = sorted((f["instrument_id"], f["quantity"]) for f in fills[:2] if f["side"] == "BUY")
    sells = sorted((f["instrument_id"], f["quantity"]) for f in fills[2:] if f["side"] == "SELL")
    assert len(fills) == 4 and len(buys) == 2 and sells == buys


def test_control_commands_are_validated(tmp_path: Path) -> None:
    channel = ControlChannel(tmp_path)
    send_command(tmp_path, "halt", "lunch")
    (channel.inbox / "bad.json").write_text(json.dumps({"command": "sell_everything"}))
    (channel.inbox / "junk.json").write_text("{not json")
    (channel.inbox / "extra.json").write_text(json.dumps({"command": "stop", "when": "now"}))
    commands, problems = channel.take_commands()
    assert [(c.name, c.reason) for c in commands] == [("halt", "lunch")]
    assert sorted(problems) == sorted([
        "bad.json: command: expected one of stop, halt, flatten, resume, pause_strategy, resume_strategy, set_parameters, got 'sell_everything'",
        "junk.json: expected a JSON object, got invalid JSON (Expecting property name enclosed in double quotes)",
        "extra.json: unknown field(s) when; expected actor, command, expires_s, parameters, reason, sent_at, strategy",
    ])
    assert (channel.root / "rejected" / "bad.reason").read_text().startswith("bad.json: command")
    assert not list(channel.inbox.glob("*.json"))


JOURNAL_QUERIES = {
    "fills": "SELECT ts_ns, instrument_id, side, quantity, price, commission, strategy FROM fills",
    "lots": "SELECT symbol, opened_ns, quantity, price, commission, strategy FROM lots",
    "lot_closings": "SELECT quantity, commission FROM lot_closings",
    "trades": "SELECT symbol, side, quantity, entry_ns, exit_ns, entry_price, exit_price, cost, "
              "gross_pnl, charges, net_pnl, net_pnl_pct, exit_reason, strategy FROM trades",
}


def journal_rows(path: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as db:
        return {name: sorted(db.execute(query).fetchall()) for name, query in JOURNAL_QUERIES.items()}


def test_replay_journal_matches_the_backtest_journal(replayed_day: dict) -> None:
    live = journal_rows(replayed_day["state"] / "journal_paper.sqlite")
    backtest = journal_rows(replayed_day["backtest_records"] / "journal_backtest.sqlite")
    assert len(live["fills"]) == 8 and len(live["trades"]) == 4
    for table in JOURNAL_QUERIES:
        assert live[table] == backtest[table], table


def test_replay_daily_summary_matches_the_backtest(replayed_day: dict) -> None:
    live = json.loads((replayed_day["state"] / "daily_summary.json").read_text())[DAY.isoformat()]
    backtest = json.loads(
        (replayed_day["backtest_records"] / "daily_summary.json").read_text(),
    )[DAY.isoformat()]
    for key in ("equity", "cash", "pnl_by_strategy", "pnl", "trades", "win_rate", "fees",
                "open_positions"):
        assert live[key] == backtest[key], key
    # The replay lives in the data's time: the node's start-up hold, lifted once the
    # self-checks are reported, is dated at the replay's start, the day's first instant.
    start = pd.Timestamp(dt.datetime.combine(DAY, dt.time(0), EXCHANGE_TZ)).tz_convert("UTC").isoformat()
    assert live["risk_events"] == [{"time": start, "kind": "resume", "source": "RiskEngine",
                                    "detail": "trading state ACTIVE"}] + backtest["risk_events"]
    assert live["mode"] == "paper" and backtest["mode"] == "backtest"
