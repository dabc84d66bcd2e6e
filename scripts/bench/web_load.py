"""
Dashboard load check: GET /api/status latency percentiles at a fixed request rate (default 100
requests a second, loopback only, bounded duration) while a replay-fed paper node trades.

    .venv/bin/python -m scripts.bench.web_load [--rate 100] [--seconds 20] [--speed x300]
        [--catalog PATH]

Starts run_live.py (paper, replay broker, ma_cross on SPY,QQQ over the sample day) and
`python -m web` as separate processes, logs in for a bearer token, then sends requests on a
fixed schedule (open loop: a slow answer does not delay the next request) from a thread pool
and reports p50/p90/p99/max of the time to the full answer, plus errors and the achieved rate.
Target: p99 under 50 ms. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from scripts.bench.machine import describe_machine
from scripts.replay_dashboard import replay_dashboard

DAY = "2024-12-16"


def login(port: int, user: str, password: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", "/api/login", body=json.dumps({"username": user, "password": password}),
                 headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    body = json.loads(response.read())
    if response.status != 200:
        raise SystemExit(f"login failed: {response.status} {body}")
    return body["token"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts.bench.web_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="requests a second")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured duration (max 120)")
    parser.add_argument("--speed", default="x300", help="replay speed of the node")
    parser.add_argument("--catalog", type=Path, help="replay catalog (default: the sample)")
    args = parser.parse_args(argv)
    seconds = min(args.seconds, 120.0)
    console = Console()
    console.print(describe_machine())

    from catalog.sample import ensure_sample_catalog
    from catalog.store import DEFAULT_CATALOG

    catalog = args.catalog or ensure_sample_catalog(DEFAULT_CATALOG, progress=False)
    user, password = "bench", "bench-password"
    with tempfile.TemporaryDirectory(prefix="web_load_") as tmp_name:
        with replay_dashboard(catalog, Path(tmp_name), DAY, args.speed, user, password,
                              capture_output=False) as stack:
            state = stack.state / "control" / "state.json"
            # Measure while the node trades: from the regular session's open (first orders 14:40 UTC).
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if state.exists():
                    market = json.loads(state.read_text()).get("market_time") or ""
                    if market >= f"{DAY}T14:30":
                        break
                time.sleep(0.2)
            token = login(stack.port, user, password)
            latencies, errors = run_load(stack.port, token, args.rate, seconds, console)
            snapshot = json.loads(state.read_text())
            node_state = (f"node phase {snapshot['phase']}, market time {snapshot.get('market_time')}, "
                          f"orders {snapshot.get('orders')}, fills {len(snapshot.get('fills', []))}")
    report(console, latencies, errors, args.rate, seconds, node_state)
    return 0


def run_load(port: int, token: str, rate: float, seconds: float, console: Console) -> tuple[list[float], int]:
    local = threading.local()
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def one() -> None:
        nonlocal errors
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        start = time.perf_counter()
        try:
            conn.request("GET", "/api/status", headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except OSError:
            local.conn = None
            ok = False
        elapsed = time.perf_counter() - start
        with lock:
            if ok:
                latencies.append(elapsed)
            else:
                errors += 1

    total = int(rate * seconds)
    with ThreadPoolExecutor(max_workers=16) as pool, Progress(console=console) as progress:
        task = progress.add_task(f"GET /api/status at {rate:g}/s", total=total)
        begin = time.perf_counter()
        for i in range(total):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one)
            progress.advance(task)
    return latencies, errors


def report(console: Console, latencies: list[float], errors: int, rate: float, seconds: float,
           node_state: str) -> None:
    ms = sorted(x * 1000 for x in latencies)

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, int(round(p / 100 * (len(ms) - 1))))]

    table = Table(title=f"GET /api/status, {rate:g} requests/s for {seconds:g} s (loopback)")
    for column in ("requests", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms"):
        table.add_column(column, justify="right")
    table.add_row(str(len(ms)), str(errors), f"{pct(50):.2f}", f"{pct(90):.2f}", f"{pct(99):.2f}",
                  f"{ms[-1]:.2f}", f"{statistics.fmean(ms):.2f}")
    console.print(table)
    console.print(f"while the replay node traded: {node_state}")
    console.print(f"target p99 < 50 ms: {'met' if pct(99) < 50 else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
