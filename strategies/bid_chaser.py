"""
Bid chasing: an execution algorithm any strategy can route limit orders through.

A strategy submits a LIMIT order with ``exec_algorithm_id=ExecAlgorithmId("BidChaser")``.
That order is the *primary*: it never reaches the venue. The algorithm works it through
child orders spawned from it (ids ``<primary>-E1``, ``-E2``, ...), which carry the fills:

- BUY (mode ``chase``, the default for buys): a limit child at the current bid. If it is not
  filled within ``chase_interval_secs`` (default 60 s) it is cancelled and a new child for the
  unfilled rest is placed at the new bid. This repeats until the order is filled or the signal
  is stale: older than ``max_signal_age_secs`` counted from the primary's creation.
- SELL (mode ``rest``, the default for sells): one limit child at the primary's own price that
  rests until filled or cancelled (profit targets rest at their target price).

The interval and the signal's age are measured twice: on the component clock (a timer, exact
in a backtest and the only trigger live when no data arrives) and in market-data time, from
the latest quote or ``fallback_bar_type`` bar of the instrument when the child was placed to
the first quote or bar stamped at or past the deadline. The data-time deadline acts only where
the clock and the data are more than an interval apart (a live node's wall clock during a
replay faster than real time, or a feed that lags): there the timer would never come due
while the market moves on. Whichever comes first moves the child, once.

Where there is no quote for the instrument (bars-only data, such as a backtest over a catalog
without quotes) the bid falls back to the close of the latest bar of ``fallback_bar_type``
(an order parameter), and failing that to the primary's own limit price. Each fallback is
counted (`stats.fallback_prices`) so a report can say how often the bid was not known.

Extended hours: a child placed outside the NYSE regular session (or any child when the order
asks for ``extended_hours``) carries the tag ``IBOrderTags(outsideRth=True)``, which the
Interactive Brokers execution client turns into ``outsideRth`` on the IB order; other venues,
and the backtest's simulated one, ignore the tag.

When a sequence ends (filled, stale, rejected, expired, or a child cancelled by anyone but the
algorithm: the venue or a person) the primary is closed locally as CANCELED: it was only ever
a parent. A strategy that cancels the primary ends the sequence and the
algorithm cancels the working child. Strategies learn that a sequence is over from the
primary's OrderCanceled event.

Per-order parameters (``exec_algorithm_params``, all optional): ``mode`` (``chase`` or
``rest``), ``chase_interval_secs``, ``max_signal_age_secs``, ``fallback_bar_type``,
``extended_hours`` (true/false).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal

from nautilus_trader.adapters.interactive_brokers.common import IBOrderTags
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.config import ExecAlgorithmConfig
from nautilus_trader.config import PositiveInt
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.algorithm import ExecAlgorithm
from nautilus_trader.execution.messages import CancelOrder
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.events import OrderCanceled
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderExpired
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import OrderRejected
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import ExecAlgorithmId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price
from nautilus_trader.model.orders import Order

from strategies.sessions import SessionTracker

EXTENDED_HOURS_TAG = IBOrderTags(outsideRth=True).value
MODES = ("chase", "rest")
NS_PER_SECOND = 1_000_000_000


class BidChaserConfig(ExecAlgorithmConfig, frozen=True):
    """
    chase_interval_secs: how long a buy child may rest unfilled before it is moved to the bid.
    max_signal_age_secs: a buy not filled this long after its signal is abandoned.
    Both are defaults; an order's exec_algorithm_params may override them.
    """

    exec_algorithm_id: ExecAlgorithmId | None = ExecAlgorithmId("BidChaser")
    chase_interval_secs: PositiveInt = 60
    max_signal_age_secs: PositiveInt = 900


@dataclass
class ChaseStats:
    """Counts for reports: how the algorithm priced and how often it had to chase."""

    sequences: int = 0
    sequences_resubmitted: int = 0
    resubmissions: int = 0
    stale: int = 0
    bid_prices: int = 0
    fallback_prices: int = 0
    extended_hours_orders: int = 0
    children: int = 0

    @property
    def resubmitted_fraction(self) -> float:
        return self.sequences_resubmitted / self.sequences if self.sequences else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "sequences": self.sequences,
            "sequences_resubmitted": self.sequences_resubmitted,
            "resubmitted_fraction": self.resubmitted_fraction,
            "resubmissions": self.resubmissions,
            "stale": self.stale,
            "bid_prices": self.bid_prices,
            "fallback_prices": self.fallback_prices,
            "extended_hours_orders": self.extended_hours_orders,
            "children": self.children,
        }


@dataclass
class _Sequence:
    primary_id: ClientOrderId
    mode: str
    remaining: Decimal
    interval_ns: int
    stale_at_ns: int
    fallback_bar_type: BarType | None
    extended_hours: bool
    instrument_id: InstrumentId
    # The same deadlines in market-data time (None: no data for the instrument yet).
    stale_at_data_ns: int | None = None
    chase_due_data_ns: int | None = None
    child_id: ClientOrderId | None = None
    cancel_asked: bool = False  # the algorithm asked to cancel the current child (to move it)
    attempts: int = 0
    stale: bool = False
    timers: list[str] = field(default_factory=list)


def with_outside_rth(tags: list[str]) -> list[str]:
    """
    The tags with IB's outsideRth set. IB's execution client reads only the first
    ``IBOrderTags:`` tag, so one the strategy already gave is amended, not appended to.
    """
    prefix = "IBOrderTags:"
    for i, tag in enumerate(tags):
        if tag.startswith(prefix):
            fields = IBOrderTags.parse(tag.removeprefix(prefix)).dict() | {"outsideRth": True}
            return [*tags[:i], IBOrderTags(**fields).value, *tags[i + 1 :]]
    return [*tags, EXTENDED_HOURS_TAG]


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise ValueError(f"exec_algorithm_params extended_hours: expected true or false, got {value!r}")


class BidChaser(ExecAlgorithm):
    """Limit orders at the bid, cancelled and re-placed at the new bid until filled or stale."""

    def __init__(self, config: BidChaserConfig | None = None) -> None:
        super().__init__(config or BidChaserConfig())
        self._sequences: dict[ClientOrderId, _Sequence] = {}
        self._sessions = SessionTracker()
        self._quoted: set[InstrumentId] = set()
        self._barred: set[BarType] = set()
        self.stats = ChaseStats()

    # -- intake ----------------------------------------------------------------------------

    def on_order(self, order: Order) -> None:
        if order.order_type != OrderType.LIMIT:
            raise ValueError(
                f"BidChaser works LIMIT orders only; {order.client_order_id} is "
                f"{order.order_type.name}",
            )
        params = dict(order.exec_algorithm_params or {})
        mode = str(params.get("mode", "chase" if order.side == OrderSide.BUY else "rest"))
        if mode not in MODES:
            raise ValueError(
                f"exec_algorithm_params mode of {order.client_order_id}: expected one of "
                f"{', '.join(MODES)}, got {mode!r}",
            )
        interval = int(params.get("chase_interval_secs", self.config.chase_interval_secs))
        max_age = int(params.get("max_signal_age_secs", self.config.max_signal_age_secs))
        if interval <= 0 or max_age <= 0:
            raise ValueError(
                f"exec_algorithm_params of {order.client_order_id}: chase_interval_secs and "
                f"max_signal_age_secs must be positive, got {interval} and {max_age}",
            )
        fallback = params.get("fallback_bar_type")
        fallback_bar_type = BarType.from_str(str(fallback)) if fallback else None
        signal_data_ns = self._latest_data_ns(order.instrument_id, fallback_bar_type)
        sequence = _Sequence(
            primary_id=order.client_order_id,
            mode=mode,
            remaining=order.quantity.as_decimal(),
            interval_ns=interval * NS_PER_SECOND,
            stale_at_ns=order.ts_init + max_age * NS_PER_SECOND,
            fallback_bar_type=fallback_bar_type,
            extended_hours=_flag(params.get("extended_hours", False)),
            instrument_id=order.instrument_id,
            stale_at_data_ns=(
                None if signal_data_ns is None else signal_data_ns + max_age * NS_PER_SECOND
            ),
        )
        self._sequences[order.client_order_id] = sequence
        self.stats.sequences += 1
        if order.instrument_id not in self._quoted:
            # Live, the cache holds quotes only for subscribed instruments.
            self.subscribe_quote_ticks(order.instrument_id)
            self._quoted.add(order.instrument_id)
        if fallback_bar_type is not None and fallback_bar_type not in self._barred:
            # Its bars are the market-data clock where there are no quotes.
            self.subscribe_bars(fallback_bar_type)
            self._barred.add(fallback_bar_type)
        self._place_child(order, sequence)

    # -- pricing ---------------------------------------------------------------------------

    def current_bid(self, order: Order, sequence: _Sequence) -> Price:
        """The best bid, or (counted as a fallback) the latest bar close, or the order's price."""
        quote = self.cache.quote_tick(order.instrument_id)
        if quote is not None and quote.bid_price.raw > 0:
            self.stats.bid_prices += 1
            return quote.bid_price
        self.stats.fallback_prices += 1
        if sequence.fallback_bar_type is not None:
            bar = self.cache.bar(sequence.fallback_bar_type)
            if bar is not None:
                return bar.close
        return order.price

    def _latest_data_ns(self, instrument_id: InstrumentId, bar_type: BarType | None) -> int | None:
        """When the latest quote or bar (of `bar_type`) of the instrument happened, if any."""
        stamps = []
        quote = self.cache.quote_tick(instrument_id)
        if quote is not None:
            stamps.append(quote.ts_event)
        bar = self.cache.bar(bar_type) if bar_type is not None else None
        if bar is not None:
            stamps.append(bar.ts_event)
        return max(stamps) if stamps else None

    def _is_regular_hours(self, ts_ns: int) -> bool:
        session = self._sessions.update(ts_ns)
        return session is not None and session.open.value <= ts_ns < session.close.value

    # -- children --------------------------------------------------------------------------

    def _place_child(self, primary: Order, sequence: _Sequence) -> None:
        instrument = self.cache.instrument(primary.instrument_id)
        if instrument is None:
            raise ValueError(f"BidChaser: instrument {primary.instrument_id} is not in the cache")
        now = self.clock.timestamp_ns()
        price = self.current_bid(primary, sequence) if sequence.mode == "chase" else primary.price
        tags = list(primary.tags or [])
        if sequence.extended_hours or not self._is_regular_hours(now):
            tags = with_outside_rth(tags)
            self.stats.extended_hours_orders += 1
        if sequence.attempts > 0:
            tags.append(f"resubmission={sequence.attempts}")
        child = self.spawn_limit(
            primary=primary,
            quantity=instrument.make_qty(sequence.remaining),
            price=instrument.make_price(price.as_decimal()),
            time_in_force=TimeInForce.GTC,
            tags=tags,
            reduce_primary=False,
        )
        sequence.child_id = child.client_order_id
        sequence.cancel_asked = False
        sequence.attempts += 1
        self.stats.children += 1
        if sequence.mode == "chase":
            name = f"{child.client_order_id}-chase"
            self.clock.set_time_alert_ns(name, now + sequence.interval_ns, self._on_chase_timer)
            sequence.timers.append(name)
            placed_data_ns = self._latest_data_ns(primary.instrument_id, sequence.fallback_bar_type)
            if placed_data_ns is not None and sequence.chase_due_data_ns is not None:
                # A replacement counts from the deadline that moved it, as its timer counts
                # from the moment that deadline came due.
                placed_data_ns = max(placed_data_ns, sequence.chase_due_data_ns)
            sequence.chase_due_data_ns = (
                None if placed_data_ns is None else placed_data_ns + sequence.interval_ns
            )
        self.submit_order(child)
        if child.status == OrderStatus.DENIED and self._sequences.get(primary.client_order_id) is sequence:
            # Denied synchronously by the pre-trade gate before Nautilus delivers this
            # strategy's order events to the algorithm: ExecAlgorithm subscribes to them only
            # after handling the strategy's first command, so the OrderDenied of the first
            # child never reaches on_order_denied and the sequence (and the strategy's
            # pending primary) would wait forever. Ended here as on_order_denied would.
            denied = next(e for e in reversed(child.events) if isinstance(e, OrderDenied))
            self._end_on_failure(child.client_order_id, f"denied: {denied.reason}")

    def _working_child(self, sequence: _Sequence) -> Order | None:
        """The sequence's current child while it is still working (not closed, not cancelling)."""
        child = self.cache.order(sequence.child_id) if sequence.child_id else None
        if child is None or child.is_closed or child.is_pending_cancel:
            return None
        return child

    def _on_chase_timer(self, event: TimeEvent) -> None:
        child_id = ClientOrderId(event.name.removesuffix("-chase"))
        child = self.cache.order(child_id)
        if child is None or child.is_closed:
            return
        sequence = self._sequences.get(child.exec_spawn_id)
        if sequence is None or sequence.child_id != child_id:
            return
        if event.ts_event >= sequence.stale_at_ns:
            sequence.stale = True
        # The replacement is placed when the venue confirms the cancel (on_order_canceled).
        sequence.cancel_asked = True
        self.cancel_order(child)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        if self._any_chase_due(tick.ts_event):
            self._on_data_time(tick.instrument_id, tick.ts_event)

    def on_bar(self, bar: Bar) -> None:
        if self._any_chase_due(bar.ts_event):
            self._on_data_time(bar.bar_type.instrument_id, bar.ts_event)

    def _any_chase_due(self, ts_event: int) -> bool:
        """
        Whether any sequence's chase deadline in data time has come: `_on_data_time` acts on no
        other, and every bar and quote arrives here, so the common case costs a few integer
        comparisons instead of building the instrument id and walking the sequences.
        """
        for sequence in self._sequences.values():
            due = sequence.chase_due_data_ns
            if due is not None and ts_event >= due:
                return True
        return False

    def _on_data_time(self, instrument_id: InstrumentId, ts_event: int) -> None:
        """
        The chase deadline measured in market-data time, for data the clock does not keep
        time with: a live node's clock is the wall clock, which a replay faster than real time
        (or a feed lagging behind) leaves behind, so its timer would not come due while the
        market moves on. Where the clock is the data's time (a backtest, a live feed) only the
        timer moves a child: a backtest fires the timer after the data of its own timestamp.
        """
        for sequence in list(self._sequences.values()):
            due = sequence.chase_due_data_ns
            if sequence.instrument_id != instrument_id or due is None or ts_event < due:
                continue
            if not self._clock_off_data_time(ts_event, sequence):
                continue
            child = self._working_child(sequence)
            if child is None:
                continue
            # Exactly what the timer does, once: the timer is no longer needed.
            self._cancel_timers(sequence)
            if sequence.stale_at_data_ns is not None and due >= sequence.stale_at_data_ns:
                sequence.stale = True
            sequence.cancel_asked = True
            self.cancel_order(child)

    def _clock_off_data_time(self, data_ns: int, sequence: _Sequence) -> bool:
        """
        True when the clock and market data stamped `data_ns` are more than the chase interval
        apart: the clock cannot measure the sequence's intervals in the data's time.
        """
        return abs(self.clock.timestamp_ns() - data_ns) > sequence.interval_ns

    # -- events ----------------------------------------------------------------------------

    def on_order_filled(self, event: OrderFilled) -> None:
        order = self.cache.order(event.client_order_id)
        sequence = self._sequences.get(order.exec_spawn_id) if order is not None else None
        if sequence is None or sequence.child_id != event.client_order_id:
            return
        sequence.remaining -= event.last_qty.as_decimal()
        if sequence.remaining <= 0:
            self._finish(sequence)

    def on_order_canceled(self, event: OrderCanceled) -> None:
        if event.client_order_id in self._sequences:
            # The strategy cancelled the primary: stop working it.
            sequence = self._sequences.pop(event.client_order_id)
            self._cancel_timers(sequence)
            child = self.cache.order(sequence.child_id) if sequence.child_id else None
            if child is not None and not child.is_closed and not child.is_pending_cancel:
                self.cancel_order(child)
            return
        order = self.cache.order(event.client_order_id)
        sequence = self._sequences.get(order.exec_spawn_id) if order is not None else None
        if sequence is None or sequence.child_id != event.client_order_id:
            return
        if sequence.remaining <= 0:
            self._finish(sequence)
            return
        if not sequence.cancel_asked:
            # Cancelled by the venue or by hand: placing it again would override that (and,
            # against a venue that cancels each child, loop until the signal is stale).
            self._end_on_failure(event.client_order_id, "cancelled outside the algorithm")
            return
        if sequence.stale or self._is_stale_now(sequence):
            self.stats.stale += 1
            self.log.info(
                f"{sequence.primary_id}: signal stale after {sequence.attempts} attempt(s), "
                f"{sequence.remaining} unfilled",
            )
            self._finish(sequence)
            return
        primary = self.cache.order(sequence.primary_id)
        if sequence.attempts == 1:
            self.stats.sequences_resubmitted += 1
        self.stats.resubmissions += 1
        self._place_child(primary, sequence)

    def _is_stale_now(self, sequence: _Sequence) -> bool:
        """Past the signal's age on the clock, or in market-data time (see _on_data_time)."""
        if self.clock.timestamp_ns() >= sequence.stale_at_ns:
            return True
        if sequence.stale_at_data_ns is None:
            return False
        data_ns = self._latest_data_ns(sequence.instrument_id, sequence.fallback_bar_type)
        return (
            data_ns is not None
            and self._clock_off_data_time(data_ns, sequence)
            and data_ns >= sequence.stale_at_data_ns
        )

    def on_order_rejected(self, event: OrderRejected) -> None:
        self._end_on_failure(event.client_order_id, f"rejected: {event.reason}")

    def on_order_denied(self, event: OrderDenied) -> None:
        self._end_on_failure(event.client_order_id, f"denied: {event.reason}")

    def on_order_expired(self, event: OrderExpired) -> None:
        self._end_on_failure(event.client_order_id, "expired")

    def _end_on_failure(self, client_order_id: ClientOrderId, why: str) -> None:
        order = self.cache.order(client_order_id)
        sequence = self._sequences.get(order.exec_spawn_id) if order is not None else None
        if sequence is None or sequence.child_id != client_order_id:
            return
        # A refusal is an outcome the journal and the error monitor record, not a fault here.
        self.log.warning(f"{client_order_id} {why}; ending the sequence of {sequence.primary_id}")
        self._finish(sequence)

    def _cancel_timers(self, sequence: _Sequence) -> None:
        for name in sequence.timers:
            if name in self.clock.timer_names:
                self.clock.cancel_timer(name)
        sequence.timers.clear()

    def _finish(self, sequence: _Sequence) -> None:
        """End a sequence and close its primary locally (it never reached the venue)."""
        self._sequences.pop(sequence.primary_id, None)
        self._cancel_timers(sequence)
        primary = self.cache.order(sequence.primary_id)
        if primary is None or primary.is_closed:
            return
        self.execute(
            CancelOrder(
                trader_id=primary.trader_id,
                strategy_id=primary.strategy_id,
                instrument_id=primary.instrument_id,
                client_order_id=primary.client_order_id,
                venue_order_id=None,
                command_id=UUID4(),
                ts_init=self.clock.timestamp_ns(),
            ),
        )

    def on_start(self) -> None:
        # Nothing to set up: each order brings its own parameters, quotes and timers.
        return

    def on_stop(self) -> None:
        self.clock.cancel_timers()

    def on_reset(self) -> None:
        self._sequences.clear()
        self.stats = ChaseStats()
