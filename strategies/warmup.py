"""
History a strategy reads at start before it trades (live: the IB adapter's historical bars):
the live bars that arrive meanwhile are held and played once every request is answered, or
once the wait runs out, when the strategy goes on without the rest and the log says so (a
data client that never answers, such as a bare backtest engine, must not hold them for ever).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from datetime import timedelta

from nautilus_trader.common.events import TimeEvent
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.trading.strategy import Strategy

WAIT_SECS = 60


class HistoryWarmup:
    """
    `request` asks for the bar types' history; while `active`, the strategy passes its history
    bars to its own accumulator and its live bars to `hold`. `on_ready` runs once, before the
    held bars are played through the strategy's `on_bar`.
    """

    def __init__(self, strategy: Strategy, what: str, on_ready: Callable[[], None]) -> None:
        self._strategy = strategy
        self._what = what
        self._on_ready = on_ready
        self._pending: set[UUID4] = set()
        self._held: list[Bar] = []

    @property
    def active(self) -> bool:
        return bool(self._pending)

    def request(self, bar_types: list[BarType], start: datetime) -> None:
        strategy = self._strategy
        for bar_type in bar_types:
            self._pending.add(strategy.request_bars(bar_type, start=start, callback=self._answered))
        strategy.clock.set_time_alert(
            f"{strategy.id}-warmup", strategy.clock.utc_now() + timedelta(seconds=WAIT_SECS),
            self._late,
        )

    def hold(self, bar: Bar) -> bool:
        """Keep a live bar for later while the history is still coming; False otherwise."""
        if self.active:
            self._held.append(bar)
        return self.active

    def reset(self) -> None:
        self._pending.clear()
        self._held.clear()

    def _answered(self, request_id: UUID4) -> None:
        if request_id not in self._pending:
            return  # answered after the wait ran out: the live bars already count
        self._pending.discard(request_id)
        if not self._pending:
            self._finish()

    def _late(self, _event: TimeEvent) -> None:
        if self._pending:
            self._strategy.log.warning(
                f"{self._what}: history not answered in {WAIT_SECS} s; going on without it",
            )
            self._pending.clear()
            self._finish()

    def _finish(self) -> None:
        self._on_ready()
        held, self._held = self._held, []
        for bar in held:
            self._strategy.on_bar(bar)
