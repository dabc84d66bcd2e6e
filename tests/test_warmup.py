"""HistoryWarmup: live bars held while history is requested, played in order once it is in."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

from nautilus_trader.core.uuid import UUID4

from strategies.warmup import WAIT_SECS
from strategies.warmup import HistoryWarmup


class FakeClock:
    def __init__(self) -> None:
        self.alerts: list[tuple[str, datetime]] = []

    def utc_now(self) -> datetime:
        return datetime(2024, 11, 20, 14, 30, tzinfo=UTC)

    def set_time_alert(self, name: str, when: datetime, callback) -> None:
        self.alerts.append((name, when))
        self.fire = callback


class FakeLog:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, text: str) -> None:
        self.warnings.append(text)


class FakeStrategy:
    """What HistoryWarmup uses of a Nautilus Strategy."""

    id = "Fake-1"

    def __init__(self) -> None:
        self.clock, self.log = FakeClock(), FakeLog()
        self.requests: dict[UUID4, object] = {}
        self.events: list[str] = []

    def request_bars(self, bar_type, start, callback) -> UUID4:
        request_id = UUID4()
        self.requests[request_id] = callback
        return request_id

    def on_bar(self, bar) -> None:
        self.events.append(f"bar {bar}")


def test_bars_are_held_until_every_request_is_answered_then_played_in_order() -> None:
    strategy = FakeStrategy()
    warmup = HistoryWarmup(strategy, "Test warm-up", lambda: strategy.events.append("ready"))
    warmup.request(["SPY", "QQQ"], strategy.clock.utc_now())
    assert strategy.clock.alerts[0][1] == datetime(2024, 11, 20, 14, 31, tzinfo=UTC)
    assert warmup.hold("b1") and warmup.hold("b2")
    (first, answer_first), (second, answer_second) = strategy.requests.items()
    answer_first(first)
    assert warmup.active and strategy.events == []
    answer_second(second)
    assert strategy.events == ["ready", "bar b1", "bar b2"]
    assert not warmup.hold("b3")  # live bars now go straight through
    strategy.clock.fire(None)  # the wait running out later changes nothing
    assert strategy.log.warnings == [] and strategy.events == ["ready", "bar b1", "bar b2"]


def test_a_request_never_answered_releases_the_bars_after_the_wait_and_says_so() -> None:
    strategy = FakeStrategy()
    warmup = HistoryWarmup(strategy, "Test warm-up", lambda: strategy.events.append("ready"))
    warmup.request(["SPY"], strategy.clock.utc_now())
    warmup.hold("b1")
    strategy.clock.fire(None)
    assert strategy.log.warnings == [
        f"Test warm-up: history not answered in {WAIT_SECS} s; going on without it",
    ]
    assert strategy.events == ["ready", "bar b1"]
    [(request_id, answer)] = strategy.requests.items()
    answer(request_id)  # a late answer is ignored: the bars were already played
    assert strategy.events == ["ready", "bar b1"]
