"""
The sweep loop: keep every executor slot busy with proposed trials, record each result the
moment it arrives, show progress (trials done, best so far, ETA), and stop cleanly on Ctrl-C:
queued trials are cancelled, running ones are ended, every finished result is already on disk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import Future
from concurrent.futures import wait
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn
from rich.progress import TimeRemainingColumn

from scripts.sweeping.executors import TrialExecutor
from scripts.sweeping.record import Recorder
from scripts.sweeping.record import best_results
from scripts.sweeping.search import Search
from scripts.sweeping.space import Sweep
from scripts.sweeping.trial import FAILED
from scripts.sweeping.trial import TrialResult
from scripts.sweeping.trial import TrialTask


@dataclass
class SweepRun:
    results: list[TrialResult]  # this phase's results, earlier sessions' included
    interrupted: bool


def _failed(number: int, params: dict[str, Any], phase: str, exc: BaseException) -> TrialResult:
    """A trial whose worker died or was lost (the executor raised instead of returning)."""
    return TrialResult(number=number, params=params, status=FAILED, phase=phase,
                       error=f"{type(exc).__name__}: {exc}")


def _best_text(recorder: Recorder, sweep: Sweep, phase: str) -> str:
    mine = [r for r in recorder.results if r.phase == phase]
    best = best_results(mine, sweep.objective, 1)
    if not best:
        return f"best {sweep.objective.metric}: -"
    value = sweep.objective.value(best[0].metrics)
    return f"best {sweep.objective.metric}: {value:.4g} (trial {best[0].number})"


def run_trials(
    sweep: Sweep,
    search: Search,
    executor: TrialExecutor,
    recorder: Recorder,
    *,
    phase: str = "",
    start: dt.date | None = None,
    end: dt.date | None = None,
    console: Console | None = None,
    progress: bool = True,
    on_result: Callable[[TrialResult], None] | None = None,
) -> SweepRun:
    """Run the search's trials on the executor; returns when done or after Ctrl-C."""
    console = console or Console()
    pending: dict[Future[TrialResult], tuple[int, dict[str, Any]]] = {}
    failures = sum(1 for r in recorder.results if r.phase == phase and r.status == FAILED)
    already = len(recorder.done_numbers(phase))
    label = f"{phase} " if phase else ""
    columns = (
        TextColumn(f"{label}trials"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[best]}"), TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
    )
    interrupted = False
    with Progress(*columns, console=console, disable=not progress, transient=False) as bar:
        task_id = bar.add_task("sweep", total=search.total, completed=min(already, search.total),
                               best=_best_text(recorder, sweep, phase), failed=failures)

        def refill() -> None:
            while len(pending) < executor.slots:
                proposal = search.propose()
                if proposal is None:
                    return
                number, params = proposal
                task = TrialTask(number, params, sweep.request(params, start, end), phase)
                pending[executor.submit(task)] = (number, params)

        try:
            refill()
            while pending:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in done:
                    number, params = pending.pop(future)
                    try:
                        result = future.result()
                    except Exception as exc:  # noqa: BLE001 - a lost worker is a failed trial
                        result = _failed(number, params, phase, exc)
                    search.record(result)
                    recorder.add(result)
                    if result.status == FAILED:
                        failures += 1
                        console.print(f"[red]trial {number} failed:[/red] {result.error}", highlight=False)
                    bar.update(task_id, advance=1, failed=failures, best=_best_text(recorder, sweep, phase))
                    if on_result is not None:
                        on_result(result)
                refill()
        except KeyboardInterrupt:
            interrupted = True
            executor.abandon()
            recorder.resync()
            for number, _ in pending.values():
                search.abandon(number)
            console.print(
                f"[yellow]Stopped:[/yellow] {len(pending)} running trial(s) abandoned; every "
                f"finished trial is in {recorder.out_dir}",
                highlight=False,
            )
    return SweepRun([r for r in recorder.results if r.phase == phase], interrupted)
