"""Helpers of the dashboard tests: a state folder with a node snapshot, a logged-in client."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from livenode.control import ControlChannel
from scripts.replay_dashboard import ROOT
from scripts.replay_dashboard import free_port
from scripts.replay_dashboard import stop_process
from scripts.replay_dashboard import wait_http
from web.app import WebConfig
from web.auth import hash_password

USER, PASSWORD = "trader", "correct horse battery staple"
SNAPSHOT_TS = "2024-12-16T15:00:00+00:00"  # when snapshot() says the node wrote it


class Clock:
    """The dashboard's wall clock, set by the test: snapshot ages and expiries without waiting."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def clock_after_snapshot(seconds: float) -> Clock:
    """A clock `seconds` after snapshot()'s ts."""
    return Clock(dt.datetime.fromisoformat(SNAPSHOT_TS).timestamp() + seconds)


def snapshot(**changes: Any) -> dict[str, Any]:
    """A node snapshot as the runner writes it (shape of livenode/operations.py)."""
    base: dict[str, Any] = {
        "ts": SNAPSHOT_TS, "phase": "running", "mode": "paper", "broker": "replay",
        "pid": 1, "connected": True, "market_time": "2024-12-16T15:00:00+00:00",
        "equity": "100012.50", "pnl_day": "12.50", "pnl_session": "12.50",
        "equity_curve": [["2024-12-16T14:40:00+00:00", "100000"], ["2024-12-16T15:00:00+00:00", "100012.50"]],
        "positions": [{"instrument_id": "SPY.SIM", "strategy_id": "MACross-SPY", "quantity": "83",
                       "avg_px_open": "572.13", "last": "572.28", "market_value": "47499.24",
                       "unrealized_pnl": "12.45", "bankroll_pct": "47.49"}],
        "open_orders": [], "orders": 2, "orders_by_status": {"FILLED": 1, "DENIED": 1},
        "fills": [{"ts": "2024-12-16T14:40:00+00:00", "strategy_id": "MACross-SPY",
                   "instrument_id": "SPY.SIM", "client_order_id": "O-1", "side": "BUY",
                   "quantity": "83", "price": "572.13", "commission": "1.00 USD"}],
        "strategies": [{
            "id": "MACross-SPY", "state": "RUNNING", "class": "MACross", "orders": 1, "open_orders": 0,
            "parameters": {"fast_period": 10, "slow_period": 30, "average": "EXPONENTIAL",
                           "position_fraction": 0.475, "regular_hours_only": True},
            "schema": {"fast_period": {"type": "integer", "exclusiveMinimum": 0},
                       "slow_period": {"type": "integer", "exclusiveMinimum": 0},
                       "average": {"type": "string"},
                       "position_fraction": {"type": "number", "exclusiveMinimum": 0.0},
                       "regular_hours_only": {"type": "boolean"}},
            "indicators": [{"ts": "2024-12-16T15:00:00+00:00", "fast": 572.2, "slow": 572.0}],
        }],
        "bars": {"SPY.SIM": [["2024-12-16T14:59:00+00:00", 572.1, 572.3, 572.0, 572.28]]},
        "gate": {"trading_state": "ACTIVE", "engine_trading_state": "ACTIVE", "holds": {}, "paused": {},
                 "recent_refusals": [{"ts": "2024-12-16T14:50:00+00:00", "order": "O-2",
                                      "rule": "symbol_cap", "reason": "too big"}]},
        "watchdog": {"broker_connected": True, "data_connected": True, "circuit_breaker_trips": [],
                     "last_heartbeat": "2024-12-16T15:00:00+00:00"},
        "error": None, "commands_applied": 0, "commands_refused": 0,
        "errors": {"critical_errors": 0, "retries": 2, "limit_reached": False},
        "orders_rejected": 0, "alerts": {"fill": 1, "circuit_breaker": 1},
        "order_latency_ms": {"last": 1.5, "p50": 1.2, "max": 3.0, "samples": 2},
    }
    return base | changes


def write_snapshot(state_dir: Path, data: dict[str, Any]) -> None:
    channel = ControlChannel(state_dir)
    channel.write_state(data)


def web_config(state_dir: Path, **changes: Any) -> WebConfig:
    values: dict[str, Any] = {
        "state_dir": state_dir, "user": USER, "password_hash": hash_password(PASSWORD),
        "settings_public": {"MODE": "paper", "WEB_PASSWORD": "********"},
        "clock": clock_after_snapshot(1.0),  # a node that wrote its snapshot a second ago
        "allowed_hosts": ("testserver",),  # the Host TestClient sends
    }
    return WebConfig(**(values | changes))


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """`app` served by uvicorn in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def dashboard_process(folder: Path, **settings: str) -> Iterator[str]:
    """`python -m web` as it runs in production (its own process, uvicorn as configured by the
    CLI) with a plain-text secrets file; yields its base URL."""
    port = free_port()
    (folder / "web.secrets").write_text(f"WEB_PASSWORD={PASSWORD}\n")
    env = folder / "bot.env"
    env.write_text("".join(f"{k}={v}\n" for k, v in {
        "STATE_DIR": str(folder / "state"), "SECRETS_FILE": str(folder / "web.secrets"),
        "WEB_USER": USER, "WEB_PORT": str(port), **settings,
    }.items()))
    web = subprocess.Popen([sys.executable, "-m", "web", "--config", str(env)], cwd=ROOT, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/login", 60, web)
        yield url
    finally:
        web.terminate()
        stop_process(web, 10)
