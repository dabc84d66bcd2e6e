"""
The sweep's output folder, written as trials finish so nothing finished is ever lost:

- trials.jsonl: one line per finished trial (parameters, status, error, metrics, session
  equity), appended and flushed the moment the result arrives; the source of everything else
  and what a resumed sweep reads back.
- results.parquet and results.csv: parameters and every metric per trial (money as exact
  decimals), rewritten from trials.jsonl after each result.
- best.json: the best feasible configurations by the objective, each with the run_backtest.py
  command line that reproduces it alone.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import asdict
from decimal import Decimal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from scripts.sweeping.space import Objective
from scripts.sweeping.space import Sweep
from scripts.sweeping.trial import OK
from scripts.sweeping.trial import TrialResult

MONEY_METRICS = ("starting_capital", "final_equity", "net_profit", "expectancy", "realised_pnl",
                 "commissions", "engine_cash_balance")


def run_backtest_argv(sweep: Sweep, params: dict[str, Any], start: Any = None, end: Any = None) -> list[str]:
    """The run_backtest.py arguments that run this configuration alone (same request)."""
    start, end = start or sweep.start, end or sweep.end
    argv = ["--strategy", sweep.strategy, "--symbols", ",".join(sweep.symbols),
            "--catalog", str(sweep.catalog), "--capital", str(sweep.capital),
            "--slippage", repr(sweep.slippage)]
    if start:
        argv += ["--start", start.isoformat()]
    if end:
        argv += ["--end", end.isoformat()]
    for key, value in (sweep.fixed | params).items():
        # run_backtest parses a --set value as JSON when it can: strings that would parse
        # (e.g. "10") are quoted so they stay strings.
        if isinstance(value, str):
            try:
                json.loads(value)
                text = json.dumps(value)
            except json.JSONDecodeError:
                text = value
        else:
            text = json.dumps(value)
        argv += ["--set", f"{key}={text}"]
    if not sweep.risk:
        argv.append("--no-risk")
    return argv


def best_results(results: list[TrialResult], objective: Objective, top: int) -> list[TrialResult]:
    """Feasible finished trials, best objective first (trial number breaks ties)."""
    scored = [r for r in results
              if r.status == OK and objective.value(r.metrics) is not None and objective.feasible(r.metrics)]
    sign = -1.0 if objective.direction == "maximize" else 1.0
    return sorted(scored, key=lambda r: (sign * objective.value(r.metrics), r.number))[:top]


def _trial_key(result: TrialResult) -> tuple[str, int]:
    return result.phase, result.number


class Recorder:
    """Appends each result to trials.jsonl and keeps the tables and best.json current."""

    def __init__(self, out_dir: Path, sweep: Sweep, *, top: int = 10, resume: bool = False) -> None:
        self.out_dir = out_dir
        self.sweep = sweep
        self.top = top
        self.log = out_dir / "trials.jsonl"
        if self.log.exists() and not resume:
            raise FileExistsError(
                f"--out: {out_dir} already holds a sweep (trials.jsonl); pass --resume to continue "
                "it, or choose another folder: finished results are never overwritten",
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        self.results: list[TrialResult] = load_results(self.log) if self.log.exists() else []

    def done_numbers(self, phase: str = "") -> set[int]:
        return {r.number for r in self.results if r.phase == phase}

    def add(self, result: TrialResult) -> None:
        with self.log.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(result), default=str) + "\n")
            fh.flush()
        self.results.append(result)
        self.write_tables()

    def resync(self) -> None:
        """
        Rebuild the tables from trials.jsonl, the record of truth: Ctrl-C can land between a
        trial's log line and the tables that follow it.
        """
        self.results = load_results(self.log) if self.log.exists() else []
        self.write_tables()

    def write_tables(self) -> None:
        # Each table is written beside its final name and renamed into place, so an interrupt
        # never leaves a half-written file for the reader.
        frame = results_frame(self.results, self.sweep)
        _replace(self.out_dir / "results.csv", lambda tmp: frame.to_csv(tmp, index=False))
        _replace(self.out_dir / "results.parquet", lambda tmp: frame.to_parquet(tmp, index=False))
        # Walk-forward trials (phases) are chosen per window in walk_forward.json instead.
        best = best_results([r for r in self.results if not r.phase], self.sweep.objective, self.top)
        best_json = json.dumps(
            {
                "objective": self.sweep.objective.metric,
                "direction": self.sweep.objective.direction,
                "constraints": [str(c) for c in self.sweep.objective.constraints],
                "best": [
                    {
                        "trial": r.number,
                        "phase": r.phase,
                        "parameters": self.sweep.fixed | r.params,
                        "metrics": r.metrics,
                        "run_backtest": "python run_backtest.py " + shlex.join(run_backtest_argv(self.sweep, r.params)),
                    }
                    for r in best
                ],
            },
            indent=1,
            default=str,
        )
        _replace(self.out_dir / "best.json", lambda tmp: tmp.write_text(best_json))


def _replace(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def load_results(log: Path) -> list[TrialResult]:
    results = []
    with log.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                results.append(TrialResult(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                # A line cut short by a killed process is the only expected damage: say where.
                raise ValueError(f"{log}, line {line_no}: not a trial record ({exc})") from None
    # The latest record of a trial wins (a failed trial retried on resume).
    latest = {_trial_key(r): r for r in results}
    return list(latest.values())


def results_frame(results: list[TrialResult], sweep: Sweep) -> pd.DataFrame:
    objective = sweep.objective
    rows = []
    for r in sorted(results, key=lambda r: (r.phase, r.number)):
        row: dict[str, Any] = {"trial": r.number}
        if r.phase:
            row["phase"] = r.phase
        row["status"] = r.status
        row |= {name: r.params.get(name) for name in sweep.parameter_names}
        row["objective"] = objective.value(r.metrics) if r.status == OK else None
        row["feasible"] = objective.feasible(r.metrics) if r.status == OK else False
        for key, value in r.metrics.items():
            if isinstance(value, dict):  # e.g. trades_per_strategy of a composite: one column each
                row |= {f"{key}.{name}": v for name, v in value.items()}
                continue
            row[key] = Decimal(value) if key in MONEY_METRICS and isinstance(value, str) else value
        row["error"] = r.error
        row["seconds"] = round(r.seconds, 3)
        row["cpu_seconds"] = round(r.cpu_seconds, 3)
        row["worker"] = r.worker
        rows.append(row)
    return pd.DataFrame(rows)
