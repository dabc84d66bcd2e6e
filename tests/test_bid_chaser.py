"""The bid-chasing execution algorithm on hand-built quotes and bars."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd
from ibapi.order import Order as IBOrder
from nautilus_trader.adapters.interactive_brokers.common import IBOrderTags
from nautilus_trader.adapters.interactive_brokers.execution import InteractiveBrokersExecutionClient
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.events import OrderCanceled
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import ExecAlgorithmId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy

from catalog.instruments import backtest_instrument_id
from strategies.bid_chaser import EXTENDED_HOURS_TAG
from strategies.bid_chaser import BidChaserConfig
from strategies.bid_chaser import with_outside_rth
from tests.engine_harness import make_engine
from tests.scenario import bars_frame

SPY = backtest_instrument_id("SPY")
T0 = pd.Timestamp("2024-04-02 14:00:00", tz="UTC")  # 10:00 New York, regular hours


class OneOrderConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    side: str = "BUY"
    quantity: int = 10
    price: str = "100.00"
    params: dict[str, Any] = {}
    on_bars: str | None = None  # submit on the first bar of this type instead of a quote
    tags: list[str] = []


class OneOrder(Strategy):
    """Submits one LIMIT order through BidChaser on the first quote (or bar) it sees."""

    def __init__(self, config: OneOrderConfig) -> None:
        super().__init__(config)
        self.primary: ClientOrderId | None = None
        self.primary_closed_at: int | None = None

    def on_start(self) -> None:
        if self.config.on_bars:
            self.subscribe_bars(BarType.from_str(self.config.on_bars))
        else:
            self.subscribe_quote_ticks(self.config.instrument_id)

    def _submit_once(self) -> None:
        if self.primary is not None:
            return
        order = self.order_factory.limit(
            instrument_id=self.config.instrument_id,
            order_side=OrderSide[self.config.side],
            quantity=Quantity.from_int(self.config.quantity),
            price=Price.from_str(self.config.price),
            time_in_force=TimeInForce.GTC,
            exec_algorithm_id=ExecAlgorithmId("BidChaser"),
            exec_algorithm_params=dict(self.config.params),
            tags=list(self.config.tags) or None,
        )
        self.primary = order.client_order_id
        self.submit_order(order)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self._submit_once()

    def on_bar(self, bar: Bar) -> None:
        self._submit_once()

    def on_order_canceled(self, event: OrderCanceled) -> None:
        if event.client_order_id == self.primary:
            self.primary_closed_at = event.ts_event


def quotes(rows: list[tuple[int, str, str]]) -> pd.DataFrame:
    """(seconds after T0, bid, ask) rows."""
    return pd.DataFrame(
        {
            "bid": [float(b) for _, b, _ in rows],
            "ask": [float(a) for _, _, a in rows],
            "bid_size": 100.0,
            "ask_size": 100.0,
        },
        index=pd.DatetimeIndex([T0 + pd.Timedelta(seconds=s) for s, _, _ in rows]),
    )


def _run_one_order(engine, algorithm, strategy):
    """Run the engine; the chaser's child orders for the strategy's one order, oldest first."""
    engine.run()
    children = sorted(
        (
            o
            for o in engine.cache.orders()
            if o.exec_spawn_id == strategy.primary and o.client_order_id != strategy.primary
        ),
        key=lambda o: o.client_order_id.value,
    )
    return engine, algorithm, strategy, children


def run(quote_rows, start_offset: pd.Timedelta = pd.Timedelta(0), bars=None, **config):
    frame = quotes(quote_rows)
    frame.index = frame.index + start_offset
    engine, algorithm = make_engine(bars, frame if quote_rows else None, chase=BidChaserConfig())
    strategy = OneOrder(OneOrderConfig(instrument_id=SPY, **config))
    engine.add_strategy(strategy)
    return _run_one_order(engine, algorithm, strategy)


def test_unfilled_buy_is_cancelled_after_60_seconds_and_resubmitted_at_the_new_bid() -> None:
    engine, algorithm, strategy, children = run(
        [(0, "100.00", "100.05"), (30, "100.20", "100.25"), (90, "100.15", "100.20")],
    )
    # t0: child 1 at the bid 100.00. t0+30 s the bid moves to 100.20 (ask 100.25: no fill).
    # t0+60 s: child 1 is cancelled and child 2 placed at 100.20, which the ask reaches at
    # t0+90 s.
    assert [(str(c.price), c.status, str(c.filled_qty)) for c in children] == [
        ("100.00", OrderStatus.CANCELED, "0"),
        ("100.20", OrderStatus.FILLED, "10"),
    ]
    assert children[0].ts_last == (T0 + pd.Timedelta(seconds=60)).value
    assert children[1].ts_init == (T0 + pd.Timedelta(seconds=60)).value
    assert "resubmission=1" in children[1].tags
    assert algorithm.stats.resubmissions == 1
    assert algorithm.stats.resubmitted_fraction == 1.0
    assert algorithm.stats.fallback_prices == 0
    # The primary never reached the venue; it is closed when the work is done.
    assert engine.cache.order(strategy.primary).status == OrderStatus.CANCELED
    assert strategy.primary_closed_at == (T0 + pd.Timedelta(seconds=90)).value


def test_a_deadline_that_falls_on_a_quote_moves_the_child_after_that_quote() -> None:
    # Nautilus's backtest fires a timer due at t after all data stamped t: child 2 is priced
    # at the t0+60 s quote's bid, 100.20, not at the bid before it. (The replay counts on it:
    # data stamped at the deadline moves the child after the venue has seen that data.)
    _, _, _, children = run(
        [(0, "100.00", "100.05"), (60, "100.20", "100.25"), (120, "100.30", "100.35")],
    )
    assert [(str(c.price), c.status) for c in children[:2]] == [
        ("100.00", OrderStatus.CANCELED),
        ("100.20", OrderStatus.CANCELED),
    ]
    assert children[1].ts_init == (T0 + pd.Timedelta(seconds=60)).value


def test_chase_stops_when_the_signal_is_stale() -> None:
    rows = [
        (0, "100.00", "100.05"),
        (30, "100.10", "100.15"),
        (90, "100.20", "100.25"),
        (150, "100.30", "100.35"),
        (210, "100.40", "100.45"),
    ]
    engine, algorithm, strategy, children = run(rows, params={"max_signal_age_secs": 150})
    # Moves at 60 s (to 100.10) and 120 s (to 100.20); at 180 s the signal is 180 s old.
    assert [(str(c.price), c.status) for c in children] == [
        ("100.00", OrderStatus.CANCELED),
        ("100.10", OrderStatus.CANCELED),
        ("100.20", OrderStatus.CANCELED),
    ]
    assert algorithm.stats.stale == 1 and algorithm.stats.resubmissions == 2
    assert strategy.primary_closed_at == (T0 + pd.Timedelta(seconds=180)).value


def test_orders_outside_regular_hours_are_marked_outside_rth_for_ib() -> None:
    # 12:00 UTC is 08:00 New York: pre-market.
    _, algorithm, _, children = run([(0, "100.00", "100.05")], start_offset=pd.Timedelta(hours=-2))
    assert EXTENDED_HOURS_TAG in children[0].tags
    assert algorithm.stats.extended_hours_orders == 1
    # Nautilus's IB execution client turns the tag into outsideRth on the IB order.
    fake_client = SimpleNamespace(
        _log=SimpleNamespace(warning=print, debug=print, info=print),
        _create_ib_conditions=lambda conditions: [],
    )
    ib_order = InteractiveBrokersExecutionClient._attach_order_tags(
        fake_client, IBOrder(), children[0]
    )
    assert ib_order.outsideRth is True


def test_orders_in_regular_hours_are_not_marked() -> None:
    _, algorithm, _, children = run([(0, "100.00", "100.05")])
    assert not any(tag.startswith("IBOrderTags:") for tag in children[0].tags or [])
    assert algorithm.stats.extended_hours_orders == 0


def test_a_strategys_own_ib_tags_are_amended_not_shadowed() -> None:
    own = IBOrderTags(allOrNone=True).value
    (amended,) = [t for t in with_outside_rth(["signal", own]) if t.startswith("IBOrderTags:")]
    parsed = IBOrderTags.parse(amended.removeprefix("IBOrderTags:"))
    assert parsed.outsideRth is True and parsed.allOrNone is True


def test_without_quotes_the_bid_falls_back_to_the_bar_close_and_is_counted() -> None:
    minute = f"{SPY}-1-MINUTE-LAST-EXTERNAL"
    bars = bars_frame([("2024-04-02 14:00", 101.5), ("2024-04-02 14:01", 101.0)])
    _, algorithm, _, children = run(
        [], bars=bars, on_bars=minute, price="99.00", params={"fallback_bar_type": minute}
    )
    # The first bar (close 101.50) triggers the order: no quote, so the child is at 101.50,
    # not at the strategy's 99.00; it fills at once against that bar.
    assert [(str(c.price), c.status) for c in children] == [("101.50", OrderStatus.FILLED)]
    assert algorithm.stats.fallback_prices == 1 and algorithm.stats.bid_prices == 0


def replayed_quotes(rows: list[tuple[int, str, str]]) -> list[QuoteTick]:
    """
    (seconds after T0, bid, ask) quotes as a fast replay delivers them: stamped with the
    market's time, but reaching a clock that runs a day later and 1000 times slower (a quote
    60 s after another arrives 60 ms after it), so the clock never sees a minute pass.
    """
    clock_start = T0 + pd.Timedelta(days=1)
    return [
        QuoteTick(
            instrument_id=SPY,
            bid_price=Price.from_str(bid),
            ask_price=Price.from_str(ask),
            bid_size=Quantity.from_int(100),
            ask_size=Quantity.from_int(100),
            ts_event=(T0 + pd.Timedelta(seconds=s)).value,
            ts_init=(clock_start + pd.Timedelta(milliseconds=s)).value,
        )
        for s, bid, ask in rows
    ]


def run_replayed(quote_rows, **config):
    engine, algorithm = make_engine(None, chase=BidChaserConfig())
    engine.add_data(replayed_quotes(quote_rows))
    strategy = OneOrder(OneOrderConfig(instrument_id=SPY, **config))
    engine.add_strategy(strategy)
    return _run_one_order(engine, algorithm, strategy)


def test_the_chase_interval_also_passes_in_market_data_time() -> None:
    engine, algorithm, strategy, children = run_replayed(
        [(0, "100.00", "100.05"), (30, "100.20", "100.25"), (60, "100.25", "100.30"),
         (90, "100.20", "100.25")],
    )
    # Child 1 at 100.00 from the quote at t0. The quote stamped t0+60 s reaches the algorithm
    # 60 ms after t0 on its clock, long before its 60 s timer: the data says the minute has
    # passed, so child 1 is cancelled and child 2 placed at that quote's bid, 100.25, which the
    # ask reaches at t0+90 s.
    assert [(str(c.price), c.status, str(c.filled_qty)) for c in children] == [
        ("100.00", OrderStatus.CANCELED, "0"),
        ("100.25", OrderStatus.FILLED, "10"),
    ]
    assert children[1].ts_init - children[0].ts_init == 60_000_000  # 60 ms on the clock
    assert "resubmission=1" in children[1].tags
    assert algorithm.stats.resubmissions == 1 and algorithm.stats.stale == 0
    assert engine.cache.order(strategy.primary).status == OrderStatus.CANCELED


def test_the_signal_also_goes_stale_in_market_data_time() -> None:
    rows = [(0, "100.00", "100.05"), (60, "100.10", "100.15"), (120, "100.20", "100.25")]
    _, algorithm, strategy, children = run_replayed(rows, params={"max_signal_age_secs": 90})
    # Moved at t0+60 s (data time); at t0+120 s the signal is 120 s old: the chase ends there.
    assert [(str(c.price), c.status) for c in children] == [
        ("100.00", OrderStatus.CANCELED),
        ("100.10", OrderStatus.CANCELED),
    ]
    assert algorithm.stats.stale == 1 and algorithm.stats.resubmissions == 1
    # Closed on the quote stamped t0+120 s, which reached the clock 120 ms after t0's.
    assert strategy.primary_closed_at == (T0 + pd.Timedelta(days=1, milliseconds=120)).value
