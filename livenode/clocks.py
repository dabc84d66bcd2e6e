"""
The live node's clocks: every time event runs on the node's event loop, in the right time.

Nautilus 1.231's TradingNode builds one LiveClock for its kernel and gives every component a
new instance of that clock's class. Left alone, two things go wrong for this product:

- Live (IB): a LiveClock fires each time event on a Rust timer thread. A strategy's hard exit,
  a timeout, the bid chaser's chase timer, the journal's session-close summary and Nautilus's
  own time-bar aggregators would then run beside the event loop that runs everything else,
  although the message bus, the cache and SQLite connections must be used from one thread (the
  bus says so in its own docstring). `LoopClock` hands every time event to the node's event
  loop instead (`call_soon_threadsafe`), so all component code runs on one thread, in order,
  and a timer cancelled after it fired but before its event ran never runs.
- Replay: a replay trades days of the past. On a LiveClock every order, risk event and summary
  would be dated today, and an alert set for 15:55 of a replayed day would fire at once. The
  replay node's clocks are TestClocks that the replay feed advances to each item's time,
  firing the time events due on the loop in timestamp order, as a backtest does
  (adapters/replay/data.py): the whole node lives in the data's time.

This is done at the one place Nautilus creates the kernel's clock: `trading_node` constructs
the TradingNode while `nautilus_trader.system.kernel.LiveClock` names the clock class chosen
here (restored at once), then checks that every component clock is of that class. The
alternative, wrapping each strategy's callbacks, would miss Nautilus's own timers and every
strategy a user writes.

An exception raised by a time-event callback is caught here and handed to `on_error` (the
component-error report, livenode/component_errors.py), never lost on a timer thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import nautilus_trader.system.kernel as nautilus_kernel
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import TestClock
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.config import TradingNodeConfig
from nautilus_trader.live.node import TradingNode

TimeEventErrorHandler = Callable[[BaseException, TimeEvent], None]


class ClockWiringError(RuntimeError):
    """A component of the node did not get the clock this module chose (a Nautilus change)."""


class LoopClock(LiveClock):
    """
    A LiveClock whose time events run on the node's event loop.

    Subclassed per node by `loop_clock_class` (Nautilus creates component clocks with no
    arguments, so the loop and the error handler are class attributes of that node's class).
    """

    loop: asyncio.AbstractEventLoop
    on_error: TimeEventErrorHandler

    def __init__(self) -> None:
        super().__init__()
        # name -> the token of the timer currently set under that name; a queued event whose
        # token is no longer current belongs to a timer cancelled (or replaced) since it fired.
        self._tokens: dict[str, object] = {}

    def _on_loop(self, name: str | None, callback: Callable[[TimeEvent], None]) -> Callable[[TimeEvent], None]:
        token = object()
        if name is not None:
            self._tokens[name] = token
        loop = type(self).loop
        on_error = type(self).on_error
        tokens = self._tokens

        def run(event: TimeEvent) -> None:
            if name is not None and tokens.get(name) is not token:
                return  # cancelled after it fired, before its turn on the loop
            try:
                callback(event)
            except Exception as exc:  # reported as a component error, never lost
                on_error(exc, event)

        def fired(event: TimeEvent) -> None:  # on the timer thread: only hand the event over
            if not loop.is_closed():
                loop.call_soon_threadsafe(run, event)

        return fired

    def register_default_handler(self, callback: Callable[[TimeEvent], None]) -> None:
        super().register_default_handler(self._on_loop(None, callback))

    def set_time_alert_ns(
        self,
        name: str,
        alert_time_ns: int,
        callback: Callable[[TimeEvent], None] | None = None,
        allow_past: bool = True,
    ) -> None:
        # Without a callback Nautilus uses the default handler, already marshalled.
        wrapped = self._on_loop(name, callback) if callback is not None else None
        super().set_time_alert_ns(name, alert_time_ns, wrapped, allow_past)
        if callback is None:
            self._tokens.pop(name, None)

    def set_timer_ns(
        self,
        name: str,
        interval_ns: int,
        start_time_ns: int,
        stop_time_ns: int,
        callback: Callable[[TimeEvent], None] | None = None,
        allow_past: bool = True,
        fire_immediately: bool = False,
    ) -> None:
        wrapped = self._on_loop(name, callback) if callback is not None else None
        super().set_timer_ns(name, interval_ns, start_time_ns, stop_time_ns, wrapped, allow_past,
                             fire_immediately)
        if callback is None:
            self._tokens.pop(name, None)

    def cancel_timer(self, name: str) -> None:
        self._tokens.pop(name, None)
        super().cancel_timer(name)

    def cancel_timers(self) -> None:
        self._tokens.clear()
        super().cancel_timers()


def node_clocks(kernel: Any) -> list[Any]:
    """The kernel's clock (its engines share it) and each component's own, as Nautilus made them."""
    trader = kernel.trader
    components = [*trader.actors(), *trader.strategies(), *trader.exec_algorithms()]
    clocks = [kernel.clock] + [c.clock for c in components]
    return list({id(c): c for c in clocks}.values())


def loop_clock_class(loop: asyncio.AbstractEventLoop, on_error: TimeEventErrorHandler) -> type[LoopClock]:
    """A LoopClock class bound to one node's loop and error handler."""
    return type("NodeLoopClock", (LoopClock,), {"loop": loop, "on_error": staticmethod(on_error)})


@contextmanager
def _kernel_clock(clock_class: type) -> Iterator[None]:
    # The one seam: nautilus_trader/system/kernel.py builds `LiveClock()` for SANDBOX and LIVE.
    previous = nautilus_kernel.LiveClock
    nautilus_kernel.LiveClock = clock_class
    try:
        yield
    finally:
        nautilus_kernel.LiveClock = previous


def trading_node(
    config: TradingNodeConfig,
    loop: asyncio.AbstractEventLoop,
    replay_start_ns: int | None,
    on_error: TimeEventErrorHandler,
) -> TradingNode:
    """
    The TradingNode with this module's clocks: TestClocks at `replay_start_ns` for a replay
    (the replay feed advances them), else LoopClocks on `loop`.
    """
    clock_class: type = TestClock if replay_start_ns is not None else loop_clock_class(loop, on_error)
    with _kernel_clock(clock_class):
        node = TradingNode(config=config, loop=loop)
    clocks = node_clocks(node.kernel)
    wrong = [type(c).__name__ for c in clocks if type(c) is not clock_class]
    if wrong or not clocks:
        raise ClockWiringError(
            f"component clocks {wrong or 'none'} are not {clock_class.__name__}: this Nautilus "
            "version builds its clocks differently; livenode/clocks.py needs updating",
        )
    if replay_start_ns is not None:
        for clock in clocks:
            clock.set_time(replay_start_ns)
    return node
