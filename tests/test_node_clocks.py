"""
The node's clocks (livenode/clocks.py, adapters/replay/data.py) and the record writer
(actors/record_writer.py): time events on the loop's thread, in the data's time for a replay,
and writes that work whichever thread hands them over.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from decimal import Decimal

import pytest
from nautilus_trader.common.component import TestClock
from sqlalchemy.exc import OperationalError

from actors.journal_store import JournalStore
from actors.record_writer import RecordWriter
from adapters.replay.data import fire_due_time_events
from livenode.clocks import loop_clock_class
from livenode.component_errors import involved


def test_live_time_events_run_on_the_loop_thread_and_a_cancelled_one_never_runs() -> None:
    errors: list[BaseException] = []
    ran: list[tuple[str, int]] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        clock = loop_clock_class(loop, lambda exc, event: errors.append(exc))()
        done = asyncio.Event()

        def on_alert(event) -> None:
            ran.append((event.name, threading.get_ident()))
            if event.name == "last":
                done.set()

        def raises(event) -> None:
            raise ValueError("boom in a timer")

        now = clock.utc_now()
        clock.set_time_alert("exit", now + dt.timedelta(milliseconds=20), on_alert)
        clock.set_time_alert("fails", now + dt.timedelta(milliseconds=20), raises)
        clock.set_timer("chase", dt.timedelta(milliseconds=10), callback=on_alert)
        # The loop is busy while the timer thread fires: the events wait for the loop, and the
        # chase timer is cancelled before their turn, so none of its events runs.
        threading.Event().wait(0.1)
        clock.cancel_timer("chase")
        clock.set_time_alert("last", clock.utc_now() + dt.timedelta(milliseconds=20), on_alert)
        await asyncio.wait_for(done.wait(), 5)

    asyncio.run(scenario())
    loop_thread = threading.get_ident()
    assert [name for name, _ in ran] == ["exit", "last"]
    assert {thread for _, thread in ran} == {loop_thread}
    assert [str(e) for e in errors] == ["boom in a timer"]


def test_replay_time_events_fire_in_data_time_in_order_with_chained_alerts() -> None:
    a, b = TestClock(), TestClock()
    for clock in (a, b):
        clock.set_time(1_000)
    seen: list[tuple[str, int, int]] = []
    errors: list[str] = []
    a.set_timer_ns("beat", 100, 0, 0, lambda e: seen.append(("beat", e.ts_event, a.timestamp_ns())))

    def first(event) -> None:
        seen.append(("exit", event.ts_event, b.timestamp_ns()))
        b.set_time_alert_ns("chained", 1_301, lambda e: seen.append(("chained", e.ts_event, b.timestamp_ns())))
        raise RuntimeError("a strategy bug")

    b.set_time_alert_ns("exit", 1_250, first)
    fired = fire_due_time_events([a, b], 1_400, lambda exc, event: errors.append(f"{event.name}: {exc}"))
    # Everything strictly before 1400, oldest first, each clock at the event's time; the event
    # due at 1400 itself waits for the item stamped 1400.
    assert seen == [("beat", 1_100, 1_100), ("beat", 1_200, 1_200), ("exit", 1_250, 1_250),
                    ("beat", 1_300, 1_300), ("chained", 1_301, 1_301)]
    assert fired == 5
    assert errors == ["exit: a strategy bug"]
    assert a.timestamp_ns() == b.timestamp_ns() == 1_400


def test_a_component_error_names_the_component_and_the_order() -> None:
    from nautilus_trader.test_kit.stubs.execution import TestExecStubs
    from nautilus_trader.trading.strategy import Strategy

    class Faulty(Strategy):
        def on_order(self, order) -> None:
            raise KeyError("no such holding")

    strategy = Faulty()
    order = TestExecStubs.limit_order()
    with pytest.raises(KeyError) as raised:
        strategy.on_order(order)
    found = involved(raised.value.__traceback__)
    assert found["component"] == str(strategy.id)
    assert found["handler"].endswith("Faulty.on_order")
    assert found["client_order_id"] == str(order.client_order_id)
    assert found["instrument_id"] == str(order.instrument_id)


def test_journal_writes_work_from_any_thread(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    writer: RecordWriter[JournalStore] = RecordWriter("journal")
    writer.start(lambda: JournalStore(url, durable=False), JournalStore.close)
    writer.call(lambda store: store.start_run("run-1", "paper", "T-1", "simulated"))

    def hand_over(strategy: str) -> None:
        for seq in range(20):
            writer.submit(lambda store, s=seq: store.insert(
                "signals", run_id="run-1", ts_ns=s, strategy=strategy, instrument_id="SPY.SIM",
                signal_type="test", indicators="{}", note=""), f"signal {seq}")

    threads = [threading.Thread(target=hand_over, args=(f"S-{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = writer.call(lambda store: store.rows("signals"))
    writer.stop()
    assert writer.take_failures() == []
    assert sorted((r["strategy"], r["ts_ns"]) for r in rows) == sorted(
        (f"S-{i}", s) for i in range(3) for s in range(20))


def test_a_transient_write_failure_is_retried_and_a_lasting_one_reported() -> None:
    writer: RecordWriter[dict] = RecordWriter("test", retry_limit=2, backoff_s=0.0, backoff_max_s=0.0)
    writer.start(dict, lambda store: None)
    attempts = {"locked": 0, "broken": 0}

    def locked_twice(store: dict) -> None:
        attempts["locked"] += 1
        if attempts["locked"] < 3:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        store["written"] = Decimal("1.00")

    def broken(store: dict) -> None:
        attempts["broken"] += 1
        raise ValueError("not a transient failure")

    writer.submit(locked_twice, "a fill")
    writer.submit(broken, "a lot change")
    written = writer.call(lambda store: store.get("written"))
    writer.stop()
    failures = writer.take_failures()
    assert written == Decimal("1.00") and attempts == {"locked": 3, "broken": 1}
    assert writer.retries == 2
    assert [(f.what, str(f.error), f.attempts) for f in failures] == [
        ("a lot change", "not a transient failure", 1)]
