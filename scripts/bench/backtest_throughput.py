"""
Backtest throughput: bars per second of a no-op strategy and of real strategies over the same
year of SPY minutes from ../shared/data/market, each run in a fresh process.

    .venv/bin/python -m scripts.bench.backtest_throughput [--strategies noop,ma_cross,core_rsi] [--repeat 3]

The shared file is imported once into a benchmark catalog (default: a folder under the system
temp directory). Each run builds its BacktestNode with the same builder run_backtest.py uses,
with no progress bar and no report, and reports:
- engine bars/s: bars divided by the engine's own run time (data already loaded),
- end-to-end bars/s: bars divided by the wall time of BacktestNode.run() (loading included),
- peak memory of the process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
SPY_YEAR = (
    ROOT.parent / "shared" / "data" / "market" / "intraday_1min" / "dawsh2_ADMF-PC"
    / "SPY_1m_2024-03-26_2025-04-02.parquet"
)
DEFAULT_CATALOG = Path(tempfile.gettempdir()) / "nautilus-equities-bench-catalog"


def ensure_catalog(catalog: Path, source: Path) -> None:
    if (catalog / "data" / "bar" / "SPY.SIM-1-MINUTE-LAST-EXTERNAL").is_dir():
        return
    from catalog.importer import import_file
    from catalog.store import open_catalog

    import_file(source, open_catalog(catalog))


def run_child(strategy: str, catalog: Path) -> dict[str, float]:
    """One measured backtest in this process (called in a fresh interpreter)."""
    from backtesting.builder import BacktestRequest
    from backtesting.run import prepare_node
    from scripts.bench.machine import peak_rss_mib

    request = BacktestRequest(
        strategy=strategy, symbols=("SPY",), catalog=catalog, progress=False, log_level="ERROR",
    )
    node = prepare_node(request).node
    started = time.perf_counter()
    result = node.run()[0]
    wall = time.perf_counter() - started
    node.dispose()
    engine_seconds = (result.run_finished - result.run_started) / 1e9
    return {
        "strategy": strategy,
        "bars": result.iterations,
        "orders": result.total_orders,
        "engine_seconds": engine_seconds,
        "wall_seconds": wall,
        "peak_rss_mib": peak_rss_mib(),
    }


def measure(strategy: str, catalog: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "scripts.bench.backtest_throughput", "--child", strategy,
         "--catalog", str(catalog)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", default="noop,ma_cross,core_rsi")
    parser.add_argument("--repeat", type=int, default=3, help="runs per strategy; the best counts")
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG)
    parser.add_argument("--source", type=Path, default=SPY_YEAR)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(run_child(args.child, args.catalog)))
        return 0

    from scripts.bench.machine import describe_machine

    console = Console()
    if not args.source.exists():
        console.print(f"[red]error:[/red] benchmark data {args.source} not found (../shared/data/market)")
        return 2
    ensure_catalog(args.catalog, args.source)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    best: dict[str, dict[str, float]] = {}
    for strategy in strategies:
        for _ in range(args.repeat):
            run = measure(strategy, args.catalog)
            if strategy not in best or run["engine_seconds"] < best[strategy]["engine_seconds"]:
                best[strategy] = run

    baseline = best.get("noop")
    table = Table(title="Backtest throughput (best of %d fresh-process runs)" % args.repeat)
    for column in ("strategy", "bars", "orders", "engine bars/s", "end-to-end bars/s",
                   "vs noop (engine)", "peak MiB"):
        table.add_column(column, justify="right")
    for strategy, run in best.items():
        rate = run["bars"] / run["engine_seconds"]
        ratio = rate / (baseline["bars"] / baseline["engine_seconds"]) if baseline else float("nan")
        table.add_row(
            strategy, f"{run['bars']:,}", f"{run['orders']:,}", f"{rate:,.0f}",
            f"{run['bars'] / run['wall_seconds']:,.0f}", f"{ratio:.2f}", f"{run['peak_rss_mib']:.0f}",
        )
    console.print(table)
    console.print(f"Machine: {describe_machine()}")
    console.print(f"Data: {args.source.name} (SPY 1-minute bars, 2024-03-26 .. 2025-04-02)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
