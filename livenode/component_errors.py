"""
Every exception raised inside a component of the live node reaches the error monitor.

Where they come from:
- handlers run by Nautilus's live engines while they work through their queues (a strategy's
  on_bar, on_order_filled, an actor's event handler, an execution algorithm's command): Nautilus
  1.231 catches those in `_handle_queue_exception`, logs them and then ends the process with
  `os._exit(1)`, leaving positions and records as they were. `install` replaces that method on
  the node's data, risk and execution engines: the exception is logged as before and reported,
  and the node goes on;
- time-event callbacks (livenode/clocks.py on the loop, the replay feed in data time).

Each report is an ErrorReport sent to the ErrorMonitor (actors/error_monitor.py), which writes
it to unresolved_orders.log with the component, the traceback and the order or position
involved, counts it as critical, publishes a critical alert (e-mailed where alerts are on) and
halts trading and exits positions once CRITICAL_ERROR_LIMIT is reached. The runner ends a run
that had any with EXIT_COMPONENT_ERRORS and says so in its last lines.
"""

from __future__ import annotations

import traceback
from types import TracebackType
from typing import Any

from nautilus_trader.common.component import Component
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.model.position import Position

from actors.error_monitor import REPORT_ENDPOINT
from actors.error_monitor import ErrorReport


def involved(tb: TracebackType | None) -> dict[str, str]:
    """The component, order and position an exception was raised around, from its frames."""
    found: dict[str, str] = {}
    while tb is not None:  # outermost first: inner frames overwrite, the innermost wins
        local = tb.tb_frame.f_locals
        owner = local.get("self")
        if isinstance(owner, Component):
            found["component"] = str(owner.id)
            found["handler"] = tb.tb_frame.f_code.co_qualname
        for value in local.values():
            if isinstance(value, Position):
                found["position_id"] = str(value.id)
                found["instrument_id"] = str(value.instrument_id)
            elif hasattr(value, "client_order_id") and hasattr(value, "instrument_id"):
                try:
                    found["client_order_id"] = str(value.client_order_id)
                    found["instrument_id"] = str(value.instrument_id)
                    found["strategy_id"] = str(value.strategy_id)
                except (AttributeError, TypeError):  # an object shaped like an order, not one
                    continue
        tb = tb.tb_next
    return found


class ComponentErrors:
    """Counts and forwards component exceptions; attached to one node's kernel."""

    def __init__(self) -> None:
        self.kernel: Any = None
        self.count = 0
        self.last: str | None = None

    def install(self, kernel: Any) -> None:
        """Report what escapes the live engines' queue handlers instead of ending the process."""
        self.kernel = kernel
        for engine in (kernel.data_engine, kernel.risk_engine, kernel.exec_engine):
            engine._handle_queue_exception = self._queue_hook(engine)

    def _queue_hook(self, engine: Any) -> Any:
        name = type(engine).__name__

        def handle(exc: Exception, queue_name: str) -> None:
            engine._log.exception(f"Unexpected exception in {queue_name} queue processing: {exc!r}", exc)
            self.report(exc, f"{name} {queue_name} queue")

        return handle

    def time_event_error(self, exc: BaseException, event: TimeEvent | None) -> None:
        where = f"time event {event.name}" if event is not None else "time event"
        if self.kernel is not None:
            self.kernel.logger.error(f"{where}: callback raised {type(exc).__name__}: {exc}")
        self.report(exc, where)

    def report(self, exc: BaseException, where: str) -> None:
        self.count += 1
        context = {"where": where, **involved(exc.__traceback__)}
        self.last = f"{context.get('component', where)}: {type(exc).__name__}: {exc}"
        msgbus = self.kernel.msgbus if self.kernel is not None else None
        if msgbus is not None and REPORT_ENDPOINT in msgbus.endpoints():
            msgbus.send(REPORT_ENDPOINT, ErrorReport(exc, context))
        elif self.kernel is not None:
            # No monitor to write it (not started yet, or stopped): the engine log keeps it.
            self.kernel.logger.error(
                f"component error with no error monitor running: {self.last}\n"
                + "".join(traceback.format_exception(exc)),
            )
