"""
The central error handler: classify, retry what is transient, log what is unresolved.

- ``classify`` sorts a failure into network, broker, logic or config. Network errors and
  broker errors marked transient (pacing, a busy gateway) are retried; logic and config errors
  never are, since trying again cannot help.
- ``BackoffPolicy`` gives the wait before each retry: base x factor^(n-1), capped at
  max_delay, plus a random jitter of up to `jitter` x that delay so many clients do not retry
  in step. The random source and the sleep are injected, so the schedule is tested exactly.
- Every failure that is not resolved by a retry, and every rejected order or partial fill
  reported to it, is written as one JSON line (time, category, severity, message, exception,
  traceback, context) to ``unresolved_orders.log``.
- Critical failures (logic, config, retries exhausted) go to ``on_critical``; when their count
  reaches ``critical_limit`` the handler calls ``on_limit`` once (the error-monitor actor halts
  trading and exits positions there).
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from typing import TypeVar

import pandas as pd

UNRESOLVED_LOG_NAME = "unresolved_orders.log"
T = TypeVar("T")


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


class UnresolvedError(RuntimeError):
    """Raised by ``ErrorHandler.call`` when a call failed for good (after its retries)."""

    def __init__(self, message: str, category: ErrorCategory, attempts: int) -> None:
        super().__init__(message)
        self.category = category
        self.attempts = attempts


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


@dataclass(frozen=True)
class BackoffPolicy:
    retry_limit: int = 3  # API_RETRY_LIMIT: retries after the first attempt
    base_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.25

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        delay = min(self.max_delay, self.base_delay * self.factor ** (retry - 1))
        return delay + rng.uniform(0, self.jitter * delay)


class ErrorHandler:
    def __init__(
        self,
        log_path: Path,
        policy: BackoffPolicy,
        critical_limit: int,
        on_critical: Callable[[dict[str, Any]], None] = lambda record: None,
        on_limit: Callable[[int], None] = lambda count: None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.log_path = log_path
        self.policy = policy
        self.critical_limit = critical_limit
        self.on_critical = on_critical
        self.on_limit = on_limit
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._now_ns = now_ns
        self._lock = threading.Lock()
        self.critical_count = 0
        self.limit_reached = False
        self.retries = 0  # transient failures retried (the dashboard shows the count)

    def call(self, fn: Callable[[], T], context: dict[str, Any]) -> T:
        """Run `fn`, retrying transient failures with backoff; log and raise when it fails for good."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 (every failure is classified and logged)
                if is_transient(exc) and attempt <= self.policy.retry_limit:
                    self.retries += 1
                    self._sleep(self.policy.delay(attempt, self._rng))
                    continue
                self.report(exc, context, attempts=attempt)
                raise UnresolvedError(str(exc), classify(exc), attempt) from exc

    async def acall(
        self,
        fn: Callable[[], Awaitable[T]],
        context: dict[str, Any],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> T:
        """``call`` for coroutines (the live adapters): waits without blocking the event loop."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await fn()
            except Exception as exc:  # noqa: BLE001 (every failure is classified and logged)
                if is_transient(exc) and attempt <= self.policy.retry_limit:
                    self.retries += 1
                    await sleep(self.policy.delay(attempt, self._rng))
                    continue
                self.report(exc, context, attempts=attempt)
                raise UnresolvedError(str(exc), classify(exc), attempt) from exc

    def report(self, exc: BaseException, context: dict[str, Any], attempts: int = 1) -> dict[str, Any]:
        """Log an exception that was not resolved; critical ones count toward the limit."""
        category = classify(exc)
        exhausted = is_transient(exc) and attempts > self.policy.retry_limit
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
