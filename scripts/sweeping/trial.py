"""
One trial of a sweep: one BacktestNode run of one parameter set, in a worker process.

The run goes through backtesting.run's `execute` and `measure`, the very path run_backtest.py
takes (same builder, same risk layer, same metrics), without writing a report folder, so a
trial's metrics are identical to running that configuration alone with run_backtest.py.
A failure is returned as a result carrying the error, never raised: the sweep goes on.
"""

from __future__ import annotations

import os
import signal
import time
import traceback
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np

from backtesting.builder import BacktestRequest
from strategies.sessions import EXCHANGE_TZ

OK = "ok"
FAILED = "failed"


@dataclass(frozen=True)
class TrialTask:
    """What a worker needs: the trial's number, its parameters and the full request."""

    number: int
    params: dict[str, Any]
    request: BacktestRequest
    # A label carried through unchanged (the walk-forward window: "train 1", "test 1").
    phase: str = ""


@dataclass
class TrialResult:
    number: int
    params: dict[str, Any]
    status: str
    phase: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    # Equity at each NYSE session's last bar, keyed by the session date (ISO), in USD.
    equity: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0
    # CPU time the worker spent on the trial: against `seconds`, how contended the machine was.
    cpu_seconds: float = 0.0
    worker: str = ""


def plain(value: Any) -> Any:
    """numpy scalars as Python numbers, so results compare and serialise like metrics.json."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def session_equity(equity: Any) -> dict[str, float]:
    local = equity.tz_convert(EXCHANGE_TZ)
    closes = local.groupby(local.index.date).last()
    return {day.isoformat(): round(float(v), 2) for day, v in closes.items()}


def run_trial(task: TrialTask) -> TrialResult:
    """Run one trial; any exception becomes a failed result with its message and traceback."""
    from backtesting.run import execute
    from backtesting.run import measure

    started = time.perf_counter()
    cpu_started = time.process_time()
    worker = f"{os.uname().nodename}:{os.getpid()}"
    try:
        measured = measure(task.request, execute(task.request))
    except Exception as exc:  # noqa: BLE001 - recorded in the results, the sweep goes on
        return TrialResult(
            number=task.number, params=task.params, status=FAILED, phase=task.phase,
            error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(),
            seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu_started,
            worker=worker,
        )
    return TrialResult(
        number=task.number,
        params=task.params,
        status=OK,
        phase=task.phase,
        metrics={k: plain(v) for k, v in measured.metrics.items()},
        equity=session_equity(measured.equity),
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu_started,
        worker=worker,
    )


def worker_init() -> None:
    """Local workers leave Ctrl-C to the parent, which stops the sweep and ends them itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Import the engine once per worker, not inside the first trial's timing.
    import backtesting.run  # noqa: F401
