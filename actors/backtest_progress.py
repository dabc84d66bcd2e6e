"""A progress bar over simulated time, for backtests people watch."""

from __future__ import annotations

from datetime import timedelta

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.config import ActorConfig
from rich.progress import BarColumn
from rich.progress import Progress
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn
from rich.progress import TimeRemainingColumn


class BacktestProgressConfig(ActorConfig, frozen=True):
    """start_ns and end_ns bound the simulated period; the bar advances every `step_minutes`."""

    start_ns: int
    end_ns: int
    description: str = "backtest"
    step_minutes: int = 60


class BacktestProgress(Actor):
    """Advances a rich progress bar on a simulated-time timer; places nothing, reads nothing."""

    def __init__(self, config: BacktestProgressConfig) -> None:
        super().__init__(config)
        self._progress: Progress | None = None
        self._task = None

    def on_start(self) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[sim_date]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._task = self._progress.add_task(
            self.config.description,
            total=max(self.config.end_ns - self.config.start_ns, 1),
            sim_date="",
        )
        self._progress.start()
        self.clock.set_timer(
            "backtest-progress",
            interval=timedelta(minutes=self.config.step_minutes),
            callback=self._on_tick,
        )

    def _on_tick(self, event: TimeEvent) -> None:
        done = min(event.ts_event - self.config.start_ns, self.config.end_ns - self.config.start_ns)
        self._progress.update(
            self._task,
            completed=max(done, 0),
            sim_date=self.clock.utc_now().strftime("%Y-%m-%d"),
        )

    def on_stop(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.config.end_ns - self.config.start_ns)
            self._progress.stop()
            self._progress = None
