"""
A replay-fed paper node (run_live.py, replay broker) and the dashboard (python -m web), both
real processes on loopback, started together and stopped together: what the browser test and
the dashboard load benchmark run against, and a way to look at the dashboard without a broker.

    .venv/bin/python -m scripts.replay_dashboard [--day 2024-12-16] [--speed x60]

prints the address, user and password, and runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from livenode.control import send_command

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, limit_s: float, proc: subprocess.Popen) -> None:
    """Until `url` answers 200; an error if `proc` exits first or the time runs out."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {limit_s} s")


@dataclass
class ReplayDashboard:
    url: str
    port: int
    state: Path  # the node's STATE_DIR (control/state.json, journal)
    node: subprocess.Popen
    web: subprocess.Popen


@contextmanager
def replay_dashboard(
    catalog: Path,
    folder: Path,
    day: str,
    speed: str,
    user: str,
    password: str,
    symbols: str = "SPY,QQQ",
    capture_output: bool = True,
    settings: dict[str, str] | None = None,
) -> Iterator[ReplayDashboard]:
    """
    MA cross on `symbols` over the replayed `day` at `speed`, paper, with its state, settings
    (`settings` added to them) and the dashboard's password in `folder`. On exit the node is sent the stop command (its
    graceful shutdown) and the dashboard is terminated; either is killed if it hangs.
    """
    port = free_port()
    state = folder / "state"
    (folder / "web.secrets").write_text(f"WEB_PASSWORD={password}\n")
    env = folder / "bot.env"
    env.write_text("".join(f"{k}={v}\n" for k, v in {
        "MODE": "paper", "BROKER": "replay", "STRATEGIES": "ma_cross", "SYMBOLS": symbols,
        "REPLAY_CATALOG": str(catalog), "REPLAY_START": day, "REPLAY_SPEED": speed,
        "STATE_DIR": str(state), "LOG_LEVEL": "WARNING",
        "SECRETS_FILE": str(folder / "web.secrets"), "WEB_USER": user, "WEB_PORT": str(port),
        **(settings or {}),
    }.items()))
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT} if capture_output else {
        "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    web = subprocess.Popen([sys.executable, "-m", "web", "--config", str(env)], cwd=ROOT,
                           text=True, **output)
    node = subprocess.Popen([sys.executable, "run_live.py", "--config", str(env)], cwd=ROOT,
                            text=True, **output)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/login", 30, web)
        wait_http(f"{url}/health", 120, node)  # 200 once the node writes fresh snapshots
        yield ReplayDashboard(url, port, state, node, web)
    finally:
        if node.poll() is None:
            send_command(state, "stop", "replay dashboard closed")
            stop_process(node, 60)
        web.terminate()
        stop_process(web, 10)


def stop_process(proc: subprocess.Popen, grace_s: float) -> None:
    """Wait `grace_s` for `proc` (already asked to stop) to exit, then kill it."""
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts.replay_dashboard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--day", default="2024-12-16", help="sample session to replay")
    parser.add_argument("--speed", default="x60", help="replay speed (x1, x60, max)")
    args = parser.parse_args(argv)
    from catalog.sample import ensure_sample_catalog
    from catalog.store import DEFAULT_CATALOG

    catalog = ensure_sample_catalog(DEFAULT_CATALOG, progress=False)
    user, password = "demo", "demo-password"
    with tempfile.TemporaryDirectory(prefix="replay_dashboard_") as folder:
        with replay_dashboard(catalog, Path(folder), args.day, args.speed, user, password,
                              capture_output=False) as stack:
            print(f"dashboard {stack.url} (user {user}, password {password}); Ctrl-C stops",
                  flush=True)
            try:
                stack.node.wait()
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
