"""
The error monitor: the error handler (risk/errors.py) on the message bus.

It writes rejected orders (and rejected cancels/modifies of orders still open: a cancel that
lost the race against a fill is no problem) and partial fills to ``unresolved_orders.log``, accepts failures other components report to REPORT_ENDPOINT as
``ErrorReport``s, publishes a critical alert for each critical error, and when the count of
critical errors reaches RiskConfig.critical_error_limit asks the gate to halt trading and
exit every position.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.events import OrderCancelRejected
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import OrderModifyRejected
from nautilus_trader.model.events import OrderRejected

from config.risk import RiskConfig
from risk.errors import UNRESOLVED_LOG_NAME
from risk.errors import ErrorHandler
from risk.messages import CONTROL_ENDPOINT
from risk.messages import Alert
from risk.messages import AlertKind
from risk.messages import ControlAction
from risk.messages import RiskControl

REPORT_ENDPOINT = "ErrorMonitor.report"


@dataclass(frozen=True)
class ErrorReport:
    error: BaseException
    context: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1


class ErrorMonitorConfig(ActorConfig, frozen=True):
    """log_path: the unresolved-orders log; the retry limit and critical limit come from `risk`."""

    risk: RiskConfig = RiskConfig()
    log_path: str = UNRESOLVED_LOG_NAME


class ErrorMonitor(Actor):
    def __init__(self, config: ErrorMonitorConfig) -> None:
        super().__init__(config)
        self.handler: ErrorHandler | None = None

    def on_start(self) -> None:
        self.handler = ErrorHandler(
            log_path=Path(self.config.log_path),
            retry_limit=self.config.risk.api_retry_limit,
            critical_limit=self.config.risk.critical_error_limit,
            on_critical=self._on_critical,
            on_limit=self._on_limit,
            now_ns=self.clock.timestamp_ns,
        )
        self.msgbus.register(REPORT_ENDPOINT, self.report)
        self.msgbus.subscribe("events.order.*", self._on_order_event)

    def on_stop(self) -> None:
        if REPORT_ENDPOINT in self.msgbus.endpoints():
            self.msgbus.deregister(REPORT_ENDPOINT, self.report)
        self.msgbus.unsubscribe("events.order.*", self._on_order_event)

    def snapshot(self) -> dict[str, Any]:
        """Counts for the dashboard: critical errors, and whether their limit halted trading."""
        if self.handler is None:
            return {"critical_errors": 0, "limit_reached": False}
        return {"critical_errors": self.handler.critical_count, "limit_reached": self.handler.limit_reached}

    def report(self, report: ErrorReport) -> None:
        record = self.handler.report(report.error, report.context, report.attempts)
        self.log.error(f"{record['category']} error ({record['severity']}): {record['message']}")

    def _on_order_event(self, event: Any) -> None:
        context = {
            "strategy_id": str(event.strategy_id),
            "instrument_id": str(event.instrument_id),
            "client_order_id": str(event.client_order_id),
        }
        if isinstance(event, (OrderCancelRejected, OrderModifyRejected)) and self._already_closed(event):
            # The order filled (or was cancelled) before the request reached the venue: the
            # usual race of a cancel against a fill, nothing for a person to resolve.
            self.log.info(f"{type(event).__name__} {event.client_order_id}: the order had already "
                          f"closed ({event.reason})")
        elif isinstance(event, (OrderRejected, OrderCancelRejected, OrderModifyRejected)):
            kind = {OrderRejected: "order_rejected", OrderCancelRejected: "cancel_rejected",
                    OrderModifyRejected: "modify_rejected"}[type(event)]
            self.handler.record_order_issue(kind, str(event.reason), context)
            self.log.warning(f"{kind} {event.client_order_id}: {event.reason}")
        elif isinstance(event, OrderFilled):
            order = self.cache.order(event.client_order_id)
            if order is not None and order.status == OrderStatus.PARTIALLY_FILLED:
                context.update(
                    filled=str(order.filled_qty), quantity=str(order.quantity),
                    last_qty=str(event.last_qty), last_px=str(event.last_px),
                )
                self.handler.record_order_issue(
                    "partial_fill", f"filled {order.filled_qty} of {order.quantity}", context,
                )

    def _already_closed(self, event: Any) -> bool:
        order = self.cache.order(event.client_order_id)
        return order is not None and order.is_closed

    def _on_critical(self, record: dict[str, Any]) -> None:
        alert = Alert(
            AlertKind.CRITICAL,
            f"Critical {record['category']} error: {record['message'][:120]}",
            f"{record['exception']}: {record['message']}\ncontext: {record['context']}",
            self.clock.timestamp_ns(),
            critical=True,
        )
        self.msgbus.publish(alert.topic, alert)

    def _on_limit(self, count: int) -> None:
        reason = f"{count} critical errors reached the limit of {self.config.risk.critical_error_limit}"
        self.log.error(f"Halting trading: {reason}")
        self.msgbus.send(
            CONTROL_ENDPOINT,
            RiskControl(ControlAction.HALT, reason, "error_monitor", exit_positions=True),
        )
