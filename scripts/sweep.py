"""
Parameter sweeps, Optuna optimisation and walk-forward, on local workers or a Ray cluster.

    python -m scripts.sweep sweep.toml                          # grid, one worker per core
    python -m scripts.sweep sweep.toml --search optuna --workers 2
    python -m scripts.sweep sweep.toml --search optuna --out sweep_results/x --resume
    python -m scripts.sweep sweep.toml --walk-forward 6M/1M [--anchored]
    python -m scripts.sweep sweep.toml --ray auto               # or --ray host:6379

The sweep file format is described in scripts/sweeping/space.py. Each trial is one
BacktestNode run built exactly as run_backtest.py builds it; the output folder holds
trials.jsonl, results.parquet/.csv, best.json and report.html (and walk_forward.* for a
walk-forward). Exit status: 0 done, 2 bad input, 130 stopped with Ctrl-C (results kept).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as `python scripts/sweep.py`: make the project importable like `python -m scripts.sweep`.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402

from backtesting.builder import BacktestRequestError
from backtesting.registry import StrategyParameterError
from config.version import version_banner
from scripts.sweeping.executors import ExecutorError
from scripts.sweeping.executors import make_executor
from scripts.sweeping.record import Recorder
from scripts.sweeping.record import best_results
from scripts.sweeping.report import write_sweep_report
from scripts.sweeping.runner import run_trials
from scripts.sweeping.search import make_search
from scripts.sweeping.space import SEARCH_METHODS
from scripts.sweeping.space import SweepFileError
from scripts.sweeping.space import load_sweep
from scripts.sweeping.walk_forward import WalkForwardError
from scripts.sweeping.walk_forward import parse_spans
from scripts.sweeping.walk_forward import run_walk_forward
from scripts.sweeping.walk_forward import write_walk_forward

DEFAULT_RESULTS = Path("sweep_results")
INTERRUPTED = 130


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_file", type=Path, help="the sweep file (TOML)")
    parser.add_argument("--search", choices=SEARCH_METHODS, help="override the file's [search] method")
    parser.add_argument("--workers", type=int, help="local worker processes (default: the core count)")
    parser.add_argument("--ray", metavar="ADDRESS", help="run trials on a Ray cluster: 'auto' or host:port")
    parser.add_argument("--out", type=Path, help="output folder (default sweep_results/<file>-<time>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the sweep in --out: finished trials are kept, the rest run")
    parser.add_argument("--walk-forward", metavar="TRAIN/TEST",
                        help="walk-forward with these spans, e.g. 6M/1M (units D, W, M, Y)")
    parser.add_argument("--anchored", action="store_true",
                        help="walk-forward train windows all start at the first date (default: rolling)")
    parser.add_argument("--heatmap", metavar="X,Y", help="the two parameters of the report's heatmap")
    parser.add_argument("--top", type=int, default=5, help="configurations in best.json and the equity chart")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def _out_dir(args: argparse.Namespace) -> Path:
    if args.out:
        if args.out.exists() and any(args.out.iterdir()) and not args.resume:
            raise SweepFileError(args.out, "--out", "already exists; pass --resume to continue that sweep, "
                                 "or choose another folder (results are never overwritten)")
        if args.resume and not (args.out / "trials.jsonl").exists():
            raise SweepFileError(args.out, "--resume", "no trials.jsonl there: nothing to resume")
        return args.out
    if args.resume:
        raise SweepFileError(Path("--resume"), "--out", "name the folder of the sweep to resume")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return DEFAULT_RESULTS / f"{args.sweep_file.stem}-{stamp}"


def main(argv: list[str] | None = None) -> int:
    console = Console()
    args = parse_args(argv)
    console.print(version_banner("sweep"), highlight=False)
    try:
        sweep = load_sweep(args.sweep_file)
        method = args.search or sweep.method
        if args.workers is not None and args.workers < 1:
            raise SweepFileError(Path("--workers"), "--workers", f"expected at least 1, got {args.workers}")
        heatmap = None
        if args.heatmap:
            heatmap = tuple(n.strip() for n in args.heatmap.split(","))
            if len(heatmap) != 2 or not set(heatmap) <= set(sweep.parameter_names):
                raise SweepFileError(Path("--heatmap"), "--heatmap",
                                     f"expected two of {', '.join(sweep.parameter_names)}, got {args.heatmap!r}")
        spans = parse_spans(args.walk_forward) if args.walk_forward else None
        if method == "grid":
            sweep.grid()  # a continuous range cannot be a grid: say so before starting workers
        out_dir = _out_dir(args)
        recorder = Recorder(out_dir, sweep, top=args.top, resume=args.resume)
        executor = make_executor(args.workers, args.ray)
    except (SweepFileError, WalkForwardError, StrategyParameterError, BacktestRequestError,
            ExecutorError, FileExistsError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2

    console.print(f"Sweep {sweep.path.name}: {sweep.strategy} on {', '.join(sweep.symbols)}, "
                  f"{method} search, {executor.description}; output {out_dir}", highlight=False)
    try:
        if spans is not None:
            outcomes, interrupted = run_walk_forward(
                sweep, method, executor, recorder, *spans, anchored=args.anchored,
                progress=not args.no_progress, console=console,
            )
            summary = write_walk_forward(out_dir, sweep, outcomes, *spans, args.anchored)
            console.print(f"Walk-forward: {len(outcomes)} windows, out-of-sample/in-sample "
                          f"{sweep.objective.metric} {summary['out_of_sample_over_in_sample']}; "
                          f"report {out_dir / 'walk_forward.html'}", highlight=False)
        else:
            search = make_search(sweep, method, out_dir, recorder.done_numbers())
            run = run_trials(sweep, search, executor, recorder, console=console, progress=not args.no_progress)
            interrupted = run.interrupted
            write_sweep_report(out_dir / "report.html", sweep, run.results, heatmap, args.top)
            best = best_results(run.results, sweep.objective, 1)
            if best:
                console.print(f"Best {sweep.objective.metric}: {sweep.objective.value(best[0].metrics)} "
                              f"(trial {best[0].number}: {best[0].params})", highlight=False)
            console.print(f"Results: {out_dir / 'results.parquet'} and results.csv, {out_dir / 'best.json'}, "
                          f"{out_dir / 'report.html'}", highlight=False)
    finally:
        executor.close()
    return INTERRUPTED if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
