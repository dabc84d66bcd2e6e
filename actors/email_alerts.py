"""
Email alerts: SMTP with STARTTLS, sent from a worker thread so the event loop never waits.

The actor turns what it hears into ``Alert``s: alerts published by the risk layer on
``alerts.<kind>`` (signal, rebalance, kill switch, critical errors, circuit breakers, the
watchdog) and the order events it follows itself (fills, cancels, positions closed). Each kind
is switchable (notify_on_fill = NOTIFY_ON_FILL, notify_on_exit = NOTIFY_ON_EXIT, ...).

``EmailSender`` owns the queue and the thread: the first alert of a burst opens a batch window
(batch_window_s); everything that arrives inside it goes out as one message. A failed send is
logged and retried (max_attempts, retry_delay_s apart) and then dropped with an error line;
nothing of it reaches the trading thread. The password is never logged and never shown by
``repr`` of the config.
"""

from __future__ import annotations

import email.policy
import queue
from collections import deque
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pandas as pd
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.enums import order_side_to_str
from nautilus_trader.model.events import OrderCanceled
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import PositionClosed

from config.version import PROJECT_NAME
from risk.messages import ALERT_TOPIC_PREFIX
from strategies.records import SIGNAL_TOPIC
from strategies.records import SignalRecord
from risk.messages import Alert
from risk.messages import AlertKind

_STOP = object()


class EmailAlertsConfig(ActorConfig, frozen=True):
    """
    host, port, username, password: the SMTP server and login (login skipped without username).
    starttls: upgrade the connection with STARTTLS before logging in (required for a login).
    ca_file: a CA bundle to verify the server with (default: the system's).
    sender, recipients: the envelope.
    batch_window_s: alerts arriving within this many seconds of the first go out as one message.
    max_attempts, retry_delay_s: tries per message and the wait between them.
    notify_on_*: which kinds of alert are mailed.
    """

    host: str
    port: int
    sender: str
    recipients: list[str]
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    ca_file: str | None = None
    timeout_s: float = 10.0
    batch_window_s: float = 2.0
    max_attempts: int = 3
    retry_delay_s: float = 5.0
    notify_on_signal: bool = True
    notify_on_fill: bool = True
    notify_on_cancel: bool = True
    notify_on_exit: bool = True
    notify_on_rebalance: bool = True
    notify_on_kill_switch: bool = True
    notify_on_critical: bool = True
    notify_on_circuit_breaker: bool = True
    notify_on_watchdog: bool = True

    def __post_init__(self) -> None:
        if not self.recipients:
            raise ValueError("recipients: at least one address is required")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1..65535, got {self.port}")
        if self.username and not self.starttls:
            raise ValueError("starttls: a login (username) is only sent over STARTTLS")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")

    def __repr__(self) -> str:
        fields = [f for f in self.__struct_fields__ if f != "password"]
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in fields)
        return f"EmailAlertsConfig({shown}, password={'***' if self.password else None})"

    __str__ = __repr__

    def wants(self, kind: AlertKind) -> bool:
        return bool(getattr(self, f"notify_on_{kind.value}", True))


class EmailSender:
    """A queue and one worker thread that batches alerts into messages and sends them."""

    def __init__(
        self,
        config: EmailAlertsConfig,
        log_error: Callable[[str], None],
        log_info: Callable[[str], None] = lambda _: None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self._log_error = log_error
        self._log_info = log_info
        self._sleep = sleep
        self._queue: queue.Queue[Any] = queue.Queue()
        self.sent_messages = 0
        self.failed_messages = 0
        self.failed_attempts = 0
        self.errors: deque[str] = deque(maxlen=100)  # the latest failure lines, for a dashboard
        self._thread = threading.Thread(target=self._run, name="email-alerts", daemon=True)
        self._thread.start()

    def submit(self, alert: Alert) -> None:
        """Queue an alert; returns at once."""
        self._queue.put(alert)

    def close(self, timeout: float = 30.0) -> None:
        """Send what is queued, then stop the worker."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            deadline = time.monotonic() + self.config.batch_window_s
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._deliver(batch)

    def _deliver(self, batch: list[Alert]) -> None:
        message = compose(batch, self.config)
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                self._send(message)
            except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
                self.failed_attempts += 1
                self._error(
                    f"Alert email to {self.config.host}:{self.config.port} failed (attempt "
                    f"{attempt}/{self.config.max_attempts}): {type(exc).__name__}: {exc}",
                )
                if attempt < self.config.max_attempts:
                    self._sleep(self.config.retry_delay_s)
                continue
            self.sent_messages += 1
            self._log_info(f"Alert email sent: {message['Subject']}")
            return
        self.failed_messages += 1
        self._error(f"Alert email dropped after {self.config.max_attempts} attempts: {message['Subject']}")

    def _error(self, line: str) -> None:
        self.errors.append(line)
        self._log_error(line)

    def _send(self, message: EmailMessage) -> None:
        config = self.config
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout_s) as smtp:
            smtp.ehlo()
            if config.starttls:
                context = ssl.create_default_context(cafile=config.ca_file)
                smtp.starttls(context=context)
                smtp.ehlo()
            if config.username:
                smtp.login(config.username, config.password or "")
            smtp.send_message(message)


def compose(batch: list[Alert], config: EmailAlertsConfig) -> EmailMessage:
    """One message for a batch: the subject names the first alert and how many follow."""
    # Long subjects stay on one line (RFC 5322 allows 998 characters) rather than being folded.
    message = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=998))
    critical = any(alert.critical for alert in batch)
    prefix = f"[{PROJECT_NAME}]{' CRITICAL' if critical else ''}"
    if len(batch) == 1:
        message["Subject"] = f"{prefix} {batch[0].subject}"
    else:
        message["Subject"] = f"{prefix} {len(batch)} alerts: {batch[0].subject} (+{len(batch) - 1} more)"
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    lines = []
    for alert in batch:
        stamp = pd.Timestamp(alert.ts_ns, tz="UTC").isoformat()
        lines.append(f"{stamp} [{alert.kind.value}] {alert.subject}\n{alert.body}\n")
    message.set_content("\n".join(lines))
    return message


class EmailAlerts(Actor):
    def __init__(self, config: EmailAlertsConfig) -> None:
        super().__init__(config)
        self.sender: EmailSender | None = None

    def on_start(self) -> None:
        self.sender = EmailSender(self.config, log_error=self.log.error, log_info=self.log.info)
        self.msgbus.subscribe(f"{ALERT_TOPIC_PREFIX}*", self._on_alert)
        self.msgbus.subscribe("events.order.*", self._on_order_event)
        self.msgbus.subscribe("events.position.*", self._on_position_event)
        self.msgbus.subscribe(SIGNAL_TOPIC, self._on_signal)

    def on_stop(self) -> None:
        self.msgbus.unsubscribe(f"{ALERT_TOPIC_PREFIX}*", self._on_alert)
        self.msgbus.unsubscribe("events.order.*", self._on_order_event)
        self.msgbus.unsubscribe("events.position.*", self._on_position_event)
        self.msgbus.unsubscribe(SIGNAL_TOPIC, self._on_signal)
        if self.sender is not None:
            self.sender.close()

    def _on_alert(self, alert: Alert) -> None:
        if self.config.wants(alert.kind):
            self.sender.submit(alert)

    def _on_signal(self, record: SignalRecord) -> None:
        """Strategies publish their decisions once, for the journal; a rebalance is its own kind."""
        kind = AlertKind.REBALANCE if record.signal_type == "rebalance" else AlertKind.SIGNAL
        if not self.config.wants(kind):
            return
        values = ", ".join(f"{name} {value}" for name, value in record.indicators.items())
        self.sender.submit(Alert(
            kind,
            f"{record.signal_type} {record.instrument_id} ({record.strategy})",
            "; ".join(part for part in (values, record.note) if part),
            record.ts_ns,
        ))

    def _on_order_event(self, event: Any) -> None:
        if isinstance(event, OrderFilled) and self.config.notify_on_fill:
            self.sender.submit(Alert(
                AlertKind.FILL,
                f"Filled {order_side_to_str(event.order_side)} "
                f"{event.last_qty} {event.instrument_id} @ {event.last_px}",
                f"order {event.client_order_id}, strategy {event.strategy_id}, commission {event.commission}",
                event.ts_event,
            ))
        elif isinstance(event, OrderCanceled) and self.config.notify_on_cancel:
            self.sender.submit(Alert(
                AlertKind.CANCEL,
                f"Cancelled {event.client_order_id} {event.instrument_id}",
                f"strategy {event.strategy_id}",
                event.ts_event,
            ))

    def _on_position_event(self, event: Any) -> None:
        if isinstance(event, PositionClosed) and self.config.notify_on_exit:
            self.sender.submit(Alert(
                AlertKind.EXIT,
                f"Position closed {event.instrument_id}: realised {event.realized_pnl}",
                f"position {event.position_id}, strategy {event.strategy_id}",
                event.ts_event,
            ))
