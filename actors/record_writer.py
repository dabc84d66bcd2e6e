"""
One writer thread per record store (the journal database, the GnuCash book).

Why a thread of its own: the records must work whichever thread publishes an event, and a
durable write (SQLite FULL sync, a GnuCash save) takes milliseconds that the order path must
not wait for. So the actor's bus handlers only turn each event into plain values and hand a
job to this queue; the thread that opened the store runs every job, one at a time, in the
order handed over, each its own committed transaction. SQLite and piecash objects never leave
the thread that made them. `call` waits for a job's result (start-up reads, the session
summary, a rare look-up of an order from an earlier run); since the queue is in order, it
sees every write handed over before it.

Failures: a job that fails transiently (a locked SQLite file, a PostgreSQL connection lost) is
retried with exponential backoff and jitter (tenacity), up to `retry_limit` retries
(API_RETRY_LIMIT). One that still fails is kept, with what it was writing, for the actor to
report as a critical error (`take_failures`); the jobs after it still run.

What a crash can lose: jobs handed over but not yet run (milliseconds of records). After a
restart the venue's reconciliation reports those orders and fills again, and the journal
records them as orders it did not initialise; none of this decides what the node sends.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import OperationalError
from tenacity import Retrying
from tenacity import retry_if_exception
from tenacity import stop_after_attempt
from tenacity import wait_exponential_jitter

# The record keepers hear an event before any strategy does (strategies subscribe at 0): a
# strategy handler that raises cannot keep a fill from the records.
RECORDS_PRIORITY = 10
S = TypeVar("S")
T = TypeVar("T")


def transient_store_error(exc: BaseException) -> bool:
    """A database error that trying again can cure: a lock, a dropped or refused connection."""
    if isinstance(exc, (OperationalError, DisconnectionError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@dataclass(frozen=True)
class WriteFailure:
    what: str
    error: BaseException
    attempts: int


# What a job writes, for the report of a failure: text, or a callable that makes it, so the
# handler on the order path does not format a row that is almost never shown.
Description = str | Callable[[], str]


@dataclass(frozen=True)
class _Job(Generic[S]):
    run: Callable[[S], object]
    what: Description
    result: Future | None = None


_STOP = object()


class RecordWriter(Generic[S]):
    """A store and the thread that owns it; jobs run in the order they are handed over."""

    def __init__(self, name: str, retry_limit: int = 3, backoff_s: float = 0.2,
                 backoff_max_s: float = 5.0) -> None:
        self.name = name
        self.retry_limit = retry_limit
        self.retries = 0
        self._retrying = Retrying(
            stop=stop_after_attempt(retry_limit + 1),
            wait=wait_exponential_jitter(multiplier=backoff_s, max=backoff_max_s, jitter=backoff_s),
            retry=retry_if_exception(transient_store_error),
            reraise=True,
        )
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._failures: queue.SimpleQueue[WriteFailure] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    # -- life ---------------------------------------------------------------------------------

    def start(self, open_store: Callable[[], S], close_store: Callable[[S], None]) -> None:
        """Open the store in the writer thread; raises what opening it raised."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} writer already started")
        opened: Future = Future()
        self._thread = threading.Thread(
            target=self._run, args=(open_store, close_store, opened),
            name=f"{self.name}-writer", daemon=True,
        )
        self._thread.start()
        opened.result()

    def stop(self) -> None:
        """Run every job handed over, close the store, end the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join()
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    # -- jobs ---------------------------------------------------------------------------------

    def submit(self, run: Callable[[S], object], what: Description) -> None:
        """Hand over a write; it runs after every job handed over before it."""
        self._require_running()
        self._queue.put(_Job(run, what))

    def call(self, run: Callable[[S], T], what: str = "read") -> T:
        """Run a job after the writes already handed over and wait for its result."""
        self._require_running()
        if threading.current_thread() is self._thread:
            raise RuntimeError(f"{self.name} writer: call() from its own thread would wait forever")
        result: Future = Future()
        self._queue.put(_Job(run, what, result))
        return result.result()

    def take_failures(self) -> list[WriteFailure]:
        """Writes that failed for good since the last call (thread-safe)."""
        failures = []
        while True:
            try:
                failures.append(self._failures.get_nowait())
            except queue.Empty:
                return failures

    def _require_running(self) -> None:
        if self._thread is None:
            raise RuntimeError(f"{self.name} writer is not running")

    # -- the thread ---------------------------------------------------------------------------

    def _run(self, open_store: Callable[[], S], close_store: Callable[[S], None], opened: Future) -> None:
        try:
            store = open_store()
        except BaseException as exc:  # handed to start(), which raises it in the caller
            opened.set_exception(exc)
            return
        opened.set_result(None)
        try:
            while True:
                job = self._queue.get()
                if job is _STOP:
                    return
                self._execute(store, job)
        finally:
            close_store(store)

    def _execute(self, store: S, job: _Job[S]) -> None:
        attempts = 0

        def attempt() -> object:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                self.retries += 1
            return job.run(store)

        try:
            value = self._retrying(attempt)
        except Exception as exc:  # kept for the actor to report; later jobs still run
            if job.result is not None:
                job.result.set_exception(exc)
            else:
                what = job.what() if callable(job.what) else job.what
                self._failures.put(WriteFailure(what, exc, attempts))
            return
        if job.result is not None:
            job.result.set_result(value)
