"""
Walk-forward: optimise on each train window, then run the chosen parameters out of sample on
the test window that follows, and stitch the test windows into one out-of-sample equity curve.

Windows are calendar spans over session dates (inclusive). Rolling: the train window slides
forward by the test span each time; anchored: it always starts at the first date and grows.
Only whole test windows are used: a last test window that would run past the data is dropped.
Each test run starts from the sweep's capital; the stitched curve compounds them, scaling each
window's curve by the equity the previous windows ended with.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from backtesting.builder import data_range
from backtesting.metrics import TRADING_DAYS
from backtesting.metrics import drawdown
from scripts.sweeping.executors import TrialExecutor
from scripts.sweeping.record import Recorder
from scripts.sweeping.record import best_results
from scripts.sweeping.report import _table
from scripts.sweeping.report import render_page
from scripts.sweeping.runner import run_trials
from scripts.sweeping.search import ListSearch
from scripts.sweeping.search import make_search
from scripts.sweeping.space import Sweep
from scripts.sweeping.trial import OK
from scripts.sweeping.trial import TrialResult
from strategies.sessions import EXCHANGE_TZ

_SPAN = re.compile(r"^(\d+)([DWMY])$")


class WalkForwardError(ValueError):
    """A --walk-forward value or a date range that gives no usable window."""


@dataclass(frozen=True)
class Span:
    count: int
    unit: str  # D, W, M or Y

    def times(self, k: int) -> pd.DateOffset:
        n = self.count * k
        return {"D": pd.DateOffset(days=n), "W": pd.DateOffset(weeks=n),
                "M": pd.DateOffset(months=n), "Y": pd.DateOffset(years=n)}[self.unit]

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


def parse_spans(text: str) -> tuple[Span, Span]:
    """'6M/1M' -> (train, test); units D, W, M, Y."""
    parts = text.upper().split("/")
    spans = [_SPAN.match(p.strip()) for p in parts]
    if len(parts) != 2 or not all(spans) or any(int(m.group(1)) == 0 for m in spans):
        raise WalkForwardError(
            f"--walk-forward: expected TRAIN/TEST such as 6M/1M (units D, W, M, Y), got {text!r}",
        )
    return tuple(Span(int(m.group(1)), m.group(2)) for m in spans)  # type: ignore[return-value]


@dataclass(frozen=True)
class Window:
    index: int
    train_start: dt.date
    train_end: dt.date
    test_start: dt.date
    test_end: dt.date

    @property
    def train_phase(self) -> str:
        return f"w{self.index}-train"

    @property
    def test_phase(self) -> str:
        return f"w{self.index}-test"


def make_windows(start: dt.date, end: dt.date, train: Span, test: Span, anchored: bool) -> list[Window]:
    origin = pd.Timestamp(start)
    windows = []
    k = 0
    while True:
        train_start = origin if anchored else origin + test.times(k)
        test_start = origin + train.times(1) + test.times(k)
        test_end = origin + train.times(1) + test.times(k + 1) - pd.Timedelta(days=1)
        if test_end.date() > end:
            break
        windows.append(Window(k + 1, train_start.date(), (test_start - pd.Timedelta(days=1)).date(),
                              test_start.date(), test_end.date()))
        k += 1
    if not windows:
        raise WalkForwardError(
            f"--walk-forward {train}/{test}: {start} .. {end} is too short for one train and one test window",
        )
    return windows


def sweep_dates(sweep: Sweep) -> tuple[dt.date, dt.date]:
    """The sweep's first and last session dates, clipped to the catalog's data."""
    first, last = data_range(sweep.request({}))
    # data_range's end is midnight New York after the last session: step back into it.
    return (first.tz_convert(EXCHANGE_TZ).date(),
            (last - pd.Timedelta(nanoseconds=1)).tz_convert(EXCHANGE_TZ).date())


@dataclass
class WindowOutcome:
    window: Window
    chosen: TrialResult | None
    test: TrialResult | None

    def in_sample(self, sweep: Sweep) -> float | None:
        return sweep.objective.value(self.chosen.metrics) if self.chosen else None

    def out_of_sample(self, sweep: Sweep) -> float | None:
        return sweep.objective.value(self.test.metrics) if self.test and self.test.status == OK else None


def stitch(tests: list[TrialResult], capital: float) -> pd.Series:
    """One out-of-sample equity curve: each window's curve scaled to where the last one ended."""
    pieces = []
    level = capital
    for result in tests:
        series = pd.Series(result.equity, dtype=float)
        if series.empty:
            continue
        scaled = series * (level / capital)
        pieces.append(scaled)
        level = float(scaled.iloc[-1])
    return pd.concat(pieces) if pieces else pd.Series(dtype=float)


def curve_metrics(curve: pd.Series, capital: float) -> dict[str, float | None]:
    if curve.empty:
        return {"total_return_pct": None, "max_drawdown_pct": None, "sharpe": None}
    returns = pd.concat([pd.Series([capital]), curve.reset_index(drop=True)]).pct_change().dropna()
    std = returns.std(ddof=1)
    sharpe = returns.mean() / std * math.sqrt(TRADING_DAYS) if std and not math.isnan(std) else None
    return {
        "total_return_pct": round((float(curve.iloc[-1]) / capital - 1) * 100, 4),
        "max_drawdown_pct": round(float(drawdown(curve).min()) * 100, 4),
        "sharpe": round(sharpe, 4) if sharpe is not None else None,
    }


def run_walk_forward(
    sweep: Sweep,
    method: str,
    executor: TrialExecutor,
    recorder: Recorder,
    train: Span,
    test: Span,
    *,
    anchored: bool = False,
    progress: bool = True,
    console: Any = None,
) -> tuple[list[WindowOutcome], bool]:
    """Every window in turn; returns the outcomes and whether Ctrl-C stopped the run."""
    start, end = sweep_dates(sweep)
    outcomes = []
    for window in make_windows(start, end, train, test, anchored):
        search = make_search(sweep, method, recorder.out_dir, recorder.done_numbers(window.train_phase),
                             study_name=f"{sweep.study_name}-w{window.index}")
        run = run_trials(sweep, search, executor, recorder, phase=window.train_phase,
                         start=window.train_start, end=window.train_end, console=console, progress=progress)
        if run.interrupted:
            return outcomes, True
        best = best_results(run.results, sweep.objective, 1)
        chosen = best[0] if best else None
        tested = None
        if chosen is not None:
            done = recorder.done_numbers(window.test_phase)
            run = run_trials(sweep, ListSearch([chosen.params], done), executor, recorder,
                             phase=window.test_phase, start=window.test_start, end=window.test_end,
                             console=console, progress=progress)
            if run.interrupted:
                return outcomes, True
            tested = run.results[0] if run.results else None
        outcomes.append(WindowOutcome(window, chosen, tested))
    return outcomes, False


def _ratio(out: float | None, inn: float | None) -> float | None:
    if out is None or inn is None or inn == 0:
        return None
    return round(out / inn, 4)


def write_walk_forward(out_dir: Path, sweep: Sweep, outcomes: list[WindowOutcome],
                       train: Span, test: Span, anchored: bool) -> dict[str, Any]:
    """walk_forward.json, oos_equity.csv and walk_forward.html; returns the summary."""
    metric = sweep.objective.metric
    capital = float(sweep.capital)
    tests = [o.test for o in outcomes if o.test is not None and o.test.status == OK]
    curve = stitch(tests, capital)
    ins = [o.in_sample(sweep) for o in outcomes]
    outs = [o.out_of_sample(sweep) for o in outcomes]
    paired = [(i, o) for i, o in zip(ins, outs, strict=True) if i is not None and o is not None]
    mean_in = sum(i for i, _ in paired) / len(paired) if paired else None
    mean_out = sum(o for _, o in paired) / len(paired) if paired else None
    summary = {
        "objective": metric,
        "train": str(train),
        "test": str(test),
        "mode": "anchored" if anchored else "rolling",
        "windows": [
            {
                "window": o.window.index,
                "train": [o.window.train_start.isoformat(), o.window.train_end.isoformat()],
                "test": [o.window.test_start.isoformat(), o.window.test_end.isoformat()],
                "parameters": (sweep.fixed | o.chosen.params) if o.chosen else None,
                "train_trial": o.chosen.number if o.chosen else None,
                f"in_sample_{metric}": o.in_sample(sweep),
                f"out_of_sample_{metric}": o.out_of_sample(sweep),
                "ratio": _ratio(o.out_of_sample(sweep), o.in_sample(sweep)),
                "test_metrics": o.test.metrics if o.test else None,
                "note": None if o.chosen else "no feasible configuration in the train window",
            }
            for o in outcomes
        ],
        f"mean_in_sample_{metric}": mean_in,
        f"mean_out_of_sample_{metric}": mean_out,
        "out_of_sample_over_in_sample": _ratio(mean_out, mean_in),
        "stitched_out_of_sample": curve_metrics(curve, capital),
    }
    (out_dir / "walk_forward.json").write_text(json.dumps(summary, indent=1, default=str))
    curve.rename("equity").rename_axis("session").to_csv(out_dir / "oos_equity.csv")

    fig = go.Figure(go.Scatter(x=list(curve.index), y=curve.values, mode="lines", name="out-of-sample equity"))
    for o in outcomes:
        fig.add_vrect(x0=o.window.test_start.isoformat(), x1=o.window.test_end.isoformat(),
                      fillcolor="#1f77b4" if o.window.index % 2 else "#ff7f0e", opacity=0.06, line_width=0,
                      annotation_text=f"w{o.window.index}", annotation_position="top left")
    fig.update_layout(title="Stitched out-of-sample equity (session closes)", yaxis_title="equity (USD)", height=460)
    bars = go.Figure([
        go.Bar(name="in sample", x=[f"w{o.window.index}" for o in outcomes], y=ins),
        go.Bar(name="out of sample", x=[f"w{o.window.index}" for o in outcomes], y=outs),
    ])
    bars.update_layout(title=f"{metric}: in sample (train, best) versus out of sample (test)", barmode="group",
                       height=380)
    header = ["window", "train", "test", "parameters", f"in-sample {metric}", f"out-of-sample {metric}", "ratio"]
    rows = [[w["window"], " .. ".join(w["train"]), " .. ".join(w["test"]),
             ", ".join(f"{k}={v}" for k, v in (w["parameters"] or {}).items()) or w["note"],
             w[f"in_sample_{metric}"], w[f"out_of_sample_{metric}"], w["ratio"]] for w in summary["windows"]]
    stitched = summary["stitched_out_of_sample"]
    notes = [
        f"Walk-forward {summary['mode']} {train}/{test} of {sweep.strategy} on {', '.join(sweep.symbols)}; "
        f"objective {sweep.objective.direction} {metric}.",
        f"Out-of-sample over in-sample {metric} (means over windows): {summary['out_of_sample_over_in_sample']}.",
        f"Stitched out-of-sample: total return {stitched['total_return_pct']}%, max drawdown "
        f"{stitched['max_drawdown_pct']}%, Sharpe {stitched['sharpe']}.",
        "Each test window starts from the starting capital; the stitched curve compounds them.",
    ]
    page = render_page(f"Walk-forward: {sweep.strategy} {', '.join(sweep.symbols)}", notes,
                       [f"<h2>Parameters chosen per window</h2>{_table(header, rows)}"], [fig, bars])
    (out_dir / "walk_forward.html").write_text(page, encoding="utf-8")
    return summary
