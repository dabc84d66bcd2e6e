"""
The replay data client: a Nautilus live market-data client fed from a Parquet catalog.

At construction it puts the catalog's instruments into the node's cache (so the sandbox venue
and the strategies find them). Nothing streams until `begin(kernel)` is called, once the
node's trader is running and every strategy has subscribed; `begin` also switches the node's
time-bar aggregators (5-minute bars built from the 1-minute bars, ...) to the data's own
time, since a replay faster than real time would otherwise close them on the wall clock.
Each item is then handed to the node at `speed` (real time, N times faster, or as fast as the
node takes it: the client waits until the data, risk and execution queues are empty before
the next timestamp, so an order a bar triggers is filled before the next bar arrives).
The node lives in the data's time: its clocks are TestClocks (livenode/clocks.py) that the
client advances before each new timestamp, firing every time event due before it in
timestamp order on the loop, as a backtest does, so a hard exit set for 15:55 fires at 15:55
of the replayed day and every order, fill, risk event and summary carries the data's time.
After the last item the clocks run on to the end of the replay window, so the last session's
close (its summary, its exits) still happens.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import MessageBus
from nautilus_trader.common.component import TestClock
from nautilus_trader.common.component import TimeEventHandler
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.data.aggregation import TimeBarAggregator
from nautilus_trader.live.data_client import LiveMarketDataClient
from nautilus_trader.live.factories import LiveDataClientFactory
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from adapters.replay.config import REPLAY_CLIENT_ID
from adapters.replay.config import ReplayDataClientConfig

IDLE_TURNS = 3
TimeEventErrorHandler = Callable[[BaseException, Any], None]


def fire_due_time_events(clocks: list[TestClock], before_ns: int, on_error: TimeEventErrorHandler) -> int:
    """
    Fire every time event of `clocks` due before `before_ns`, oldest first, each with every
    clock set to its time; events a callback schedules inside the range fire in turn (the
    backtest engine's rule); then set every clock to `before_ns`. Returns how many fired. A callback's exception goes to
    `on_error` and the replay goes on.
    """
    limit = before_ns - 1
    pending: list[tuple[int, int, TimeEventHandler]] = []
    order = itertools.count()

    def collect() -> None:
        for clock in clocks:
            if clock.timestamp_ns() < limit:
                for handler in clock.advance_time(limit, set_time=False):
                    heapq.heappush(pending, (handler.event.ts_event, next(order), handler))

    collect()
    fired = 0
    while pending:
        ts_event, _, handler = heapq.heappop(pending)
        for clock in clocks:
            if clock.timestamp_ns() < ts_event:
                clock.set_time(ts_event)
        try:
            handler.handle()
        except Exception as exc:  # reported as a component error; the replay goes on
            on_error(exc, handler.event)
        fired += 1
        collect()  # what the callback scheduled inside the range
    # The item at `before_ns` is processed at its own time (events due exactly then fire
    # after it, with the next call), as the backtest engine orders them.
    for clock in clocks:
        if clock.timestamp_ns() < before_ns:
            clock.set_time(before_ns)
    return fired


def use_data_time_for_time_bars(data_engine: Any) -> int:
    """
    Switch every running time-bar aggregator of `data_engine` to its own clock advanced by the
    data's timestamps (Nautilus's historical mode, the same rules a backtest applies); returns
    how many were switched.
    """
    switched = 0
    for aggregator in data_engine._bar_aggregators.values():
        if isinstance(aggregator, TimeBarAggregator) and not aggregator.historical_mode:
            aggregator.stop_timer()
            aggregator.set_clock(TestClock())
            aggregator.set_historical_mode(True, data_engine.process)
            switched += 1
    return switched


def node_is_idle(kernel: Any) -> bool:
    """True when the live data, risk and execution engines have nothing queued."""
    return (
        kernel.data_engine.data_qsize() == 0
        and kernel.data_engine.cmd_qsize() == 0
        and kernel.risk_engine.cmd_qsize() == 0
        and kernel.risk_engine.evt_qsize() == 0
        and kernel.exec_engine.cmd_qsize() == 0
        and kernel.exec_engine.evt_qsize() == 0
    )


class ReplayDataClient(LiveMarketDataClient):
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        config: ReplayDataClientConfig,
        name: str | None = None,
    ) -> None:
        super().__init__(
            loop=loop,
            client_id=ClientId(name or REPLAY_CLIENT_ID),
            venue=None,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=InstrumentProvider(),
            config=config,
        )
        self._config = config
        self._catalog = ParquetDataCatalog(config.catalog_path)
        for instrument in self._catalog.instruments():
            if cache.instrument(instrument.id) is None:
                cache.add_instrument(instrument)
        self._stream_task: asyncio.Task | None = None
        self._on_step: Callable[[int], None] | None = None
        self.finished = asyncio.Event()
        self.caught_up = asyncio.Event()  # the warm-up part (if any) has been processed
        self.items_sent = 0
        self.last_ts: int | None = None  # the latest data time the node may have acted on

    # -- data -----------------------------------------------------------------------------------

    def load_items(self) -> list[Bar | QuoteTick]:
        """Everything replayed, in timestamp order (bars before quotes of the same time)."""
        start, end = pd.Timestamp(self._config.start), pd.Timestamp(self._config.end)
        items: list[Any] = []
        for bar_type in self._config.bar_types:
            bars = self._catalog.bars(bar_types=[bar_type], start=start, end=end)
            items += [b for b in bars if b.ts_init < end.value]
        for instrument_id in self._config.quote_instrument_ids:
            quotes = self._catalog.quote_ticks(instrument_ids=[instrument_id], start=start, end=end)
            items += [q for q in quotes if q.ts_init < end.value]
        # A stable sort keyed by time alone keeps bars ahead of quotes, as loaded.
        items.sort(key=lambda item: item.ts_init)
        return items

    def begin(self, kernel: Any, clocks: list[TestClock], on_time_event_error: TimeEventErrorHandler,
              on_step: Callable[[int], None] | None = None) -> None:
        """
        Start streaming into `kernel`'s node (call once the trader is running), advancing
        `clocks` (every clock of the node, TestClocks: livenode/clocks.py) in the data's time.
        `on_step(ts)` is called once per new data time after the warm-up, before anything at
        that time (its timers, its items) reaches the node: the runner makes it durable, so a
        killed run's restart warms up through every time the node may have acted on.
        """
        if self._stream_task is not None:
            raise RuntimeError("the replay has already begun")
        if not clocks or not all(isinstance(c, TestClock) for c in clocks):
            raise RuntimeError("a replay needs the node built with TestClocks (livenode.clocks.trading_node)")
        self._on_step = on_step
        self._stream_task = self.create_task(self._stream(kernel, clocks, on_time_event_error))

    async def _wait_idle(self, is_idle: Any) -> None:
        """
        Yield to the loop until the node has processed everything the last item caused.

        Nautilus's live engines enqueue with `loop.call_soon_threadsafe`, so a message can be
        on its way (a scheduled callback) while every queue reads empty, for one loop turn per
        hop; the node counts as idle only after IDLE_TURNS consecutive empty turns.
        """
        quiet = 0
        while quiet < IDLE_TURNS:
            await asyncio.sleep(0)
            quiet = quiet + 1 if is_idle() else 0

    async def _stream(self, kernel: Any, clocks: list[TestClock], on_error: TimeEventErrorHandler) -> None:
        def is_idle() -> bool:
            return node_is_idle(kernel)

        async def advance_to(ts_ns: int) -> None:
            # What the last item caused is processed first, then the time events due before
            # `ts_ns` fire, and what they send is processed before the next item arrives.
            await self._wait_idle(is_idle)
            if fire_due_time_events(clocks, ts_ns, on_error):
                await self._wait_idle(is_idle)

        # The strategies' subscriptions are commands on the data engine's queue: the time-bar
        # aggregators exist only once those are processed.
        await self._wait_idle(is_idle)
        switched = use_data_time_for_time_bars(kernel.data_engine)
        self._log.info(f"{switched} time-bar aggregator(s) now follow the data's time")
        items = self.load_items()
        self._log.info(f"Replaying {len(items)} items at speed {self._config.speed or 'max'}")
        speed = self._config.speed
        warm_up_until = self._config.warm_up_until_ns
        if warm_up_until is None:
            self.caught_up.set()
        wall_start = time.monotonic()
        first_ts = items[0].ts_init if items else 0
        previous_ts: int | None = None
        for item in items:
            if not self.caught_up.is_set() and item.ts_init > warm_up_until:
                await self._wait_idle(is_idle)
                self._log.info(f"Warm-up done: resuming at {item.ts_init}")
                self.caught_up.set()
                # Pacing restarts here: the warm-up went as fast as the node took it.
                wall_start, first_ts = time.monotonic(), item.ts_init
            if speed > 0 and self.caught_up.is_set():
                due = wall_start + (item.ts_init - first_ts) / 1e9 / speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if item.ts_init != previous_ts:
                if self._on_step is not None and self.caught_up.is_set():
                    self._on_step(item.ts_init)
                # From here the node may act at this time (its timers fire first).
                self.last_ts = item.ts_init
                await advance_to(item.ts_init)
                # A strategy may subscribe to built bars mid-session (cheap: a few aggregators).
                use_data_time_for_time_bars(kernel.data_engine)
            self._handle_data(item)
            self.items_sent += 1
            self.last_ts = item.ts_init
            previous_ts = item.ts_init
        # The window's last session closes too (its exits, its summary).
        if self._on_step is not None and self.caught_up.is_set():
            self._on_step(pd.Timestamp(self._config.end).value)
        await advance_to(pd.Timestamp(self._config.end).value + 1)
        self.caught_up.set()
        self._log.info(f"Replay finished: {self.items_sent} items")
        self.finished.set()

    # -- connection and subscriptions (the data is local: nothing to do) -------------------------

    async def _connect(self) -> None:
        self._log.info(f"Replay catalog {self._config.catalog_path}")

    async def _disconnect(self) -> None:
        if self._stream_task is not None and not self._stream_task.done():
            self._stream_task.cancel()

    async def _subscribe_bars(self, command: Any) -> None:
        pass

    async def _unsubscribe_bars(self, command: Any) -> None:
        pass

    async def _subscribe_quote_ticks(self, command: Any) -> None:
        pass

    async def _unsubscribe_quote_ticks(self, command: Any) -> None:
        pass

    async def _subscribe_trade_ticks(self, command: Any) -> None:
        pass

    async def _unsubscribe_trade_ticks(self, command: Any) -> None:
        pass

    async def _subscribe_instrument(self, command: Any) -> None:
        pass

    async def _subscribe_instruments(self, command: Any) -> None:
        pass


class ReplayDataClientFactory(LiveDataClientFactory):
    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: ReplayDataClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> ReplayDataClient:
        return ReplayDataClient(loop, msgbus, cache, clock, config, name=name)
