"""
Soak check: each strategy family through the live node on the replay feed, unattended, with
the default records on (SQLite journal, GnuCash ledger), then the invariants a trader relies on.

    .venv/bin/python -m scripts.soak [--families ma_cross,core_rsi,session]
        [--start 2024-03-01] [--end 2024-03-29] [--catalog PATH] [--out DIR]

For each family: `run_live.py` (paper, replay, REPLAY_SPEED=max) over the window, then
- exit status 0; no `[ERROR]` line or traceback in its output or its node.log;
- nothing in unresolved_orders.log but partial fills;
- intraday families (session): flat at the end of every session (every position closed by its
  strategy's timed exit);
- `actors.reconcile` agreeing to the cent across journal, trade history and GnuCash book;
- one daily summary per NYSE session of the window;
- ma_cross and core_rsi: the same fills (time, instrument, side, quantity, price, commission)
  as `run_backtest.py --config` of the same env file over the same days.
Prints a table of the checks with the wall time and peak memory, and exits 1 when any fails.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import resource
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("ma_cross", "core_rsi", "session")
SYMBOLS = {"ma_cross": "SPY,QQQ", "core_rsi": "SPY", "session": "SPY,QQQ,AAPL"}
INTRADAY = {"session"}
# The session strategies trade one instrument on another's bar: a replay hands the node every
# bar of a minute before their orders reach the venue, a backtest one bar at a time, so an
# entry in the inverse ETF fills against that ETF's bar of the minute in one and its previous
# bar in the other (docs/live-node.md).
COMPARED_WITH_BACKTEST = {"ma_cross", "core_rsi"}


@dataclass
class SoakResult:
    family: str
    wall_s: float = 0.0
    fills: int = 0
    sessions: int = 0
    problems: list[str] = field(default_factory=list)


def _fill_rows_live(fills: list[dict]) -> list[tuple]:
    return sorted((pd.Timestamp(f["ts_event"], tz="UTC"), f["instrument_id"], f["side"],
                   Decimal(f["quantity"]), Decimal(f["price"]), Decimal(f["commission"].split()[0]))
                  for f in fills)


def _fill_rows_backtest(frame: pd.DataFrame) -> list[tuple]:
    return sorted((pd.Timestamp(r.ts_event), r.instrument_id, r.side, Decimal(str(r.quantity)),
                   Decimal(str(r.price)), Decimal(str(r.commission))) for r in frame.itertuples())


def soak(family: str, start: dt.date, end: dt.date, catalog: Path | None, out: Path) -> SoakResult:
    from actors import reconcile
    from strategies.sessions import EXCHANGE_TZ
    from strategies.sessions import session_for

    result = SoakResult(family)
    state = out / family
    env = out / f"{family}.env"
    lines = ["MODE=paper", "BROKER=replay", f"STRATEGIES={family}", f"SYMBOLS={SYMBOLS[family]}",
             f"REPLAY_START={start}", f"REPLAY_END={end}", "REPLAY_SPEED=max", f"STATE_DIR={state}"]
    if catalog is not None:
        lines.append(f"REPLAY_CATALOG={catalog}")
    env.write_text("\n".join(lines) + "\n")
    began = time.monotonic()
    run = subprocess.run([sys.executable, "run_live.py", "--config", str(env)], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    result.wall_s = time.monotonic() - began
    problems = result.problems
    if run.returncode != 0:
        problems.append(f"exit status {run.returncode}: {(run.stderr or run.stdout)[-500:]}")
        return result
    log = (state / "logs" / "node.log").read_text()
    for where, text in (("output", run.stdout + run.stderr), ("node.log", log)):
        errors = [line for line in text.splitlines() if "[ERROR]" in line or "Traceback" in line]
        if errors:
            problems.append(f"{len(errors)} error line(s) in {where}, first: {errors[0][:300]}")
    unresolved = state / "unresolved_orders.log"
    if unresolved.exists():
        kinds = [json.loads(line)["kind"] for line in unresolved.read_text().splitlines()]
        others = sorted({k for k in kinds if k != "partial_fill"})
        if others:
            problems.append(f"unresolved_orders.log holds {', '.join(others)}")
    summary = json.loads((state / "session_summary.json").read_text())
    result.fills = len(summary["fills"])
    if family in INTRADAY:
        held: dict[tuple[dt.date, str], Decimal] = defaultdict(Decimal)
        for fill in summary["fills"]:
            day = pd.Timestamp(fill["ts_event"], tz="UTC").tz_convert(EXCHANGE_TZ).date()
            held[(day, fill["instrument_id"])] += (1 if fill["side"] == "BUY" else -1) * Decimal(fill["quantity"])
        left = {f"{d} {i}": str(q) for (d, i), q in held.items() if q}
        if left or summary["positions_open"]:
            problems.append(f"positions left open at a session's end: {left or summary['positions_open']}")
    capture = io.StringIO()
    if not summary["fills"]:
        problems.append("no fill in the window: nothing was traded, nothing proven")
        return result
    with contextlib.redirect_stdout(capture):
        code = reconcile.main(["--journal", f"sqlite:///{state / 'journal_paper.sqlite'}",
                               "--trade-history", str(state / "trade_history.csv"),
                               "--book", str(state / "gnu_paper.gnucash"), "--capital", "100000"])
    if code != 0:
        problems.append(f"reconcile disagrees:\n{capture.getvalue()[-1500:]}")
    summaries = json.loads((state / "daily_summary.json").read_text())
    sessions = [d.date().isoformat() for d in pd.date_range(start, end) if session_for(d.date()) is not None]
    result.sessions = len(summaries)
    if sorted(summaries) != sessions:
        missing = sorted(set(sessions) - set(summaries))
        extra = sorted(set(summaries) - set(sessions))
        problems.append(f"daily summaries: missing {missing}, unexpected {extra}")
    if family in COMPARED_WITH_BACKTEST:
        problems += _compare_with_backtest(family, start, end, catalog, env, summary["fills"], out)
    return result


def _compare_with_backtest(family: str, start: dt.date, end: dt.date, catalog: Path | None, env: Path,
                           live_fills: list[dict], out: Path) -> list[str]:
    """What differs between a replay's fills and `run_backtest.py --config env` of its days."""
    from backtesting.builder import BacktestRequest
    from backtesting.run import run_backtest
    from catalog.store import DEFAULT_CATALOG
    from run_backtest import with_env_file

    request = BacktestRequest(strategy=family, symbols=tuple(SYMBOLS[family].split(",")),
                              catalog=catalog or DEFAULT_CATALOG, start=start, end=end, progress=False)
    request = with_env_file(request, argparse.Namespace(config=env, no_risk=False, capital=None))
    backtest = run_backtest(request, out / f"{family}-backtest")
    live, bt = _fill_rows_live(live_fills), _fill_rows_backtest(backtest.fills)
    if live == bt:
        return []
    only_live = [r for r in live if r not in bt][:3]
    only_bt = [r for r in bt if r not in live][:3]
    return [f"fills differ from the backtest ({len(live)} live, {len(bt)} backtest); "
            f"only live: {only_live}; only backtest: {only_bt}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2024, 3, 1))
    parser.add_argument("--end", type=dt.date.fromisoformat, default=dt.date(2024, 3, 29))
    parser.add_argument("--catalog", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "soak_results")
    args = parser.parse_args(argv)
    families = [f for f in args.families.split(",") if f]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        parser.error(f"--families: unknown {', '.join(unknown)}; known: {', '.join(FAMILIES)}")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out / stamp
    out.mkdir(parents=True)
    console = Console()
    table = Table(title=f"Soak {args.start} .. {args.end} (replay at max, records on)")
    for column in ("family", "wall s", "peak MiB", "fills", "daily summaries", "result"):
        table.add_column(column)
    failed = False
    results: list[SoakResult] = []
    for family in families:
        with console.status(f"soaking {family} ..."):
            result = soak(family, args.start, args.end, args.catalog, out)
        failed |= bool(result.problems)
        # The node runs in a child process: its peak resident memory (the largest child so far).
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        table.add_row(family, f"{result.wall_s:.1f}", f"{peak:.0f}", str(result.fills), str(result.sessions),
                      "pass" if not result.problems else f"FAIL ({len(result.problems)})")
        results.append(result)
    console.print(table)
    for result in results:
        for problem in result.problems:
            console.print(f"{result.family}: {problem}", markup=False)
    from scripts.bench.machine import describe_machine

    console.print(f"machine: {describe_machine()}; records in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
