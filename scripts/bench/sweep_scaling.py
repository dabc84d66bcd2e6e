"""
Sweep scaling: trials per minute of the same grid on 1 and on 2 local worker processes.

    .venv/bin/python -m scripts.bench.sweep_scaling [--strategy core_rsi] [--workers 1,2] [--months 6]

The shared SPY year is imported once into a benchmark catalog (as backtest_throughput.py
does); the grid is 12 configurations of core_rsi (or ma_cross) over the first `--months` months of it. Each
worker count runs the whole grid through the sweep runner (fresh spawned workers each time,
their start-up included, as a user sees it) with the results written to a temporary folder.
Besides trials per minute it prints each trial's wall and CPU seconds inside the worker, and a
machine control (a fixed pure-Python loop on the same worker counts): on a shared machine, CPU
per trial staying put while wall time grows, with the control not scaling either, is
contention from other work, not the sweep.
"""

from __future__ import annotations

import argparse
import os
import datetime as dt
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from scripts.bench.backtest_throughput import DEFAULT_CATALOG
from scripts.bench.backtest_throughput import SPY_YEAR
from scripts.bench.backtest_throughput import ensure_catalog

HEADER = """
strategy = "{strategy}"
symbols = ["SPY"]
start = 2024-03-26
end = {end}
catalog = "{catalog}"
"""
# 12 configurations each.
GRIDS = {
    "core_rsi": """
[parameters]
rsi_period = { values = [5, 7, 14] }
buy_rsi = { values = [30.0, 35.0] }
profit_target = { values = [0.005, 0.01] }
""",
    "ma_cross": """
[parameters]
fast_period = { values = [5, 10, 20, 30] }
slow_period = { values = [45, 90, 120] }
""",
}


def run_grid(sweep_file: Path, workers: int, out_dir: Path) -> tuple[float, int, float, float]:
    from scripts.sweeping.executors import LocalExecutor
    from scripts.sweeping.record import Recorder
    from scripts.sweeping.runner import run_trials
    from scripts.sweeping.search import make_search
    from scripts.sweeping.space import load_sweep

    sweep = load_sweep(sweep_file)
    recorder = Recorder(out_dir, sweep)
    started = time.perf_counter()
    executor = LocalExecutor(workers)
    try:
        run = run_trials(sweep, make_search(sweep, "grid", out_dir, set()), executor, recorder, progress=True)
    finally:
        executor.close()
    seconds = time.perf_counter() - started
    failed = [r for r in run.results if r.status != "ok"]
    if failed:
        raise RuntimeError(f"benchmark trial failed: {failed[0].error}")
    n = len(run.results)
    return seconds, n, sum(r.seconds for r in run.results) / n, sum(r.cpu_seconds for r in run.results) / n


def spin(_: int) -> float:
    """A fixed pure-Python CPU load (the machine control)."""
    total = 0
    for i in range(10_000_000):
        total += i
    return float(total)


def control_rate(workers: int, tasks: int = 4) -> float:
    """Spin tasks per minute on `workers` spawned processes: what the machine itself scales to."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(spin, range(workers)))  # start-up out of the timing
        started = time.perf_counter()
        list(pool.map(spin, range(tasks)))
        return tasks / (time.perf_counter() - started) * 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2", help="worker counts to compare")
    parser.add_argument("--strategy", choices=sorted(GRIDS), default="core_rsi")
    parser.add_argument("--months", type=int, default=6, help="months of the SPY year each trial covers")
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG)
    parser.add_argument("--source", type=Path, default=SPY_YEAR)
    args = parser.parse_args(argv)

    from scripts.bench.machine import describe_machine
    from scripts.bench.machine import peak_rss_mib

    console = Console()
    if not args.source.exists():
        console.print(f"[red]error:[/red] benchmark data {args.source} not found (../shared/data/market)")
        return 2
    ensure_catalog(args.catalog, args.source)
    end = (pd.Timestamp("2024-03-26") + pd.DateOffset(months=args.months)).date() - dt.timedelta(days=1)
    counts = [int(w) for w in args.workers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sweep_file = Path(tmp) / "grid.toml"
        sweep_file.write_text(HEADER.format(strategy=args.strategy, end=end, catalog=args.catalog)
                              + GRIDS[args.strategy])
        for workers in counts:
            seconds, trials, wall, cpu = run_grid(sweep_file, workers, Path(tmp) / f"out-{workers}")
            rows.append((workers, trials, seconds, trials / seconds * 60, wall, cpu))
    controls = [control_rate(workers) for workers in counts]

    base = rows[0][3]
    table = Table(title=f"Sweep scaling: {rows[0][1]} {args.strategy} trials, SPY 2024-03-26 .. {end}")
    for column in ("workers", "trials", "wall s", "trials/min", f"vs {rows[0][0]} worker",
                   "trial wall s", "trial CPU s"):
        table.add_column(column, justify="right")
    for workers, trials, seconds, rate, wall, cpu in rows:
        table.add_row(str(workers), str(trials), f"{seconds:.1f}", f"{rate:.1f}", f"{rate / base:.2f}",
                      f"{wall:.2f}", f"{cpu:.2f}")
    console.print(table)
    console.print(
        "Machine control (the same worker counts running a fixed pure-Python loop): "
        + ", ".join(f"{w} worker(s) {c / controls[0]:.2f}x" for w, c in zip(counts, controls, strict=True))
        + ". Below 2x for 2 workers, the cores are busy with other work.",
    )
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    console.print(f"Machine: {describe_machine()}")
    console.print(f"Peak memory: driver {peak_rss_mib():.0f} MiB, largest worker {children:.0f} MiB")
    console.print(f"Load average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    console.print(f"Data: {args.source.name} (SPY 1-minute bars), catalog {args.catalog}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
