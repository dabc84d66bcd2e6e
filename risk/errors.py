"""
The central error handler: classify, log what is unresolved, count what is critical.

- ``classify`` sorts a failure into network, broker, logic or config. Network errors and
  broker errors marked transient (pacing, a busy gateway) are the ones trying again can cure;
  the calls that can fail that way retry with tenacity where they are made (the record
  writers, actors/record_writer.py; the alert e-mails, actors/email_alerts.py), up to
  API_RETRY_LIMIT retries, and report here what still failed.
- Every failure that is not resolved by a retry, and every rejected order or partial fill
  reported to it, is written as one JSON line (time, category, severity, message, exception,
  traceback, context) to ``unresolved_orders.log``.
- Critical failures (logic, config, retries exhausted) go to ``on_critical``; when their count
  reaches ``critical_limit`` the handler calls ``on_limit`` once (the error-monitor actor halts
  trading and exits positions there).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd

UNRESOLVED_LOG_NAME = "unresolved_orders.log"


class ErrorCategory(StrEnum):
    NETWORK = "network"
    BROKER = "broker"
    LOGIC = "logic"
    CONFIG = "config"


class BrokerError(RuntimeError):
    """An error the broker reported; `transient` when trying again may succeed (pacing, busy)."""

    def __init__(self, message: str, code: int | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.transient = transient


class ConfigError(ValueError):
    """A setting that cannot work; the message names the setting."""


NETWORK_ERRORS = (ConnectionError, TimeoutError, socket.timeout, socket.gaierror, ssl.SSLError)


def classify(exc: BaseException) -> ErrorCategory:
    if isinstance(exc, BrokerError):
        return ErrorCategory.BROKER
    if isinstance(exc, NETWORK_ERRORS):
        return ErrorCategory.NETWORK
    if isinstance(exc, ConfigError) or type(exc).__name__ == "InvalidConfiguration":
        return ErrorCategory.CONFIG
    return ErrorCategory.LOGIC


def is_transient(exc: BaseException) -> bool:
    category = classify(exc)
    if category == ErrorCategory.NETWORK:
        return True
    return category == ErrorCategory.BROKER and bool(getattr(exc, "transient", False))


class ErrorHandler:
    def __init__(
        self,
        log_path: Path,
        retry_limit: int,
        critical_limit: int,
        on_critical: Callable[[dict[str, Any]], None] = lambda record: None,
        on_limit: Callable[[int], None] = lambda count: None,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.log_path = log_path
        self.retry_limit = retry_limit  # API_RETRY_LIMIT: a transient failure past it is critical
        self.critical_limit = critical_limit
        self.on_critical = on_critical
        self.on_limit = on_limit
        self._now_ns = now_ns
        self._lock = threading.Lock()
        self.critical_count = 0
        self.limit_reached = False

    def report(self, exc: BaseException, context: dict[str, Any], attempts: int = 1) -> dict[str, Any]:
        """Log an exception that was not resolved; critical ones count toward the limit."""
        category = classify(exc)
        exhausted = is_transient(exc) and attempts > self.retry_limit
        critical = category in (ErrorCategory.LOGIC, ErrorCategory.CONFIG) or exhausted or (
            category == ErrorCategory.BROKER and not is_transient(exc)
        )
        record = {
            "kind": "error",
            "category": category.value,
            "severity": "critical" if critical else "error",
            "transient": is_transient(exc),
            "attempts": attempts,
            "message": str(exc),
            "exception": type(exc).__name__,
            "traceback": "".join(traceback.format_exception(exc)),
            "context": context,
        }
        if isinstance(exc, BrokerError) and exc.code is not None:
            record["broker_code"] = exc.code
        self.write(record)
        if critical:
            self._count_critical(record)
        return record

    def record_order_issue(self, kind: str, message: str, context: dict[str, Any]) -> dict[str, Any]:
        """A rejected order or a partial fill: logged for a person to resolve, not critical."""
        record = {
            "kind": kind,
            "category": ErrorCategory.BROKER.value,
            "severity": "warning",
            "transient": False,
            "attempts": 1,
            "message": message,
            "exception": None,
            "traceback": None,
            "context": context,
        }
        self.write(record)
        return record

    def write(self, record: dict[str, Any]) -> None:
        line = {"ts": pd.Timestamp(self._now_ns(), tz="UTC").isoformat(), **record}
        with self._lock:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line, default=str) + "\n")

    def _count_critical(self, record: dict[str, Any]) -> None:
        self.critical_count += 1
        self.on_critical(record)
        if self.critical_count >= self.critical_limit and not self.limit_reached:
            self.limit_reached = True
            self.on_limit(self.critical_count)
