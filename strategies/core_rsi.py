"""
Core-building RSI strategy: builds a long-term core position in one symbol from RSI dips,
trades around it once built, and sells it down when the weekly RSI runs hot.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from decimal import ROUND_CEILING
from decimal import ROUND_DOWN
from datetime import timedelta
from decimal import Decimal

from nautilus_trader.config import NonNegativeInt
from nautilus_trader.config import PositiveInt
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AggregationSource
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.events import OrderCanceled
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import ExecAlgorithmId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.trading.strategy import Strategy

from strategies.account import account_equity
from strategies.live_parameters import refuse_frozen_changes
from strategies.lots import LotBook
from strategies.lots import LotKind
from strategies.records import LOTS_TOPIC
from strategies.records import SAVED_LOTS_KEY
from strategies.records import LotChange
from strategies.records import ExitReason
from strategies.records import SignalRecord
from strategies.records import decode_saved_lots
from strategies.records import exit_tag
from strategies.records import publish_lot_change
from strategies.records import publish_signal
from strategies.rsi_signals import RsiSignals
from strategies.rsi_signals import week_close_ns
from strategies.sessions import SessionTracker
from strategies.warmup import HistoryWarmup

ZERO = Decimal(0)
ONE = Decimal(1)


class CoreRSIConfig(StrategyConfig, frozen=True):
    """
    Parameters for ``CoreRSI`` (defaults are the plan's). Fractions are of the bankroll.

    bar_type: the intraday signal bars (15-minute, built by the engine from minutes).
    fallback_bar_type: bars whose close the execution algorithm uses where there is no quote
        (default: bar_type).
    rsi_period: Wilder RSI length on both the intraday and the NYSE-weekly bars.
    buy_rsi: intraday RSI level (0-100) whose upward cross buys a lot.
    exit_rsi: weekly RSI level (0-100) whose upward cross starts selling the core.
    lot_fraction: size of a lot. core_sale_fraction: part of a core-building lot sold at its
        target (the rest joins the core). profit_target: the target above a lot's fill price.
    max_cycles: core-building lots at most. core_target: the core's target size.
    symbol_cap: the most the whole position may be worth.
    core_exit_fraction: part of the core's shares sold per step; core_exit_step: the rise
        above the last core sale that triggers the next one.
    fixed_bankroll: a bankroll in USD instead of the account's equity.
    capital_fraction: the share of the account's equity that is the bankroll (the live node
        gives ALLOCATION x the strategy's weight); not used with fixed_bankroll.
    exec_algorithm_id, chase_interval_secs, signal_max_age_secs: the bid-chasing algorithm
        and its timing for this strategy's buys.
    rebalance: trim the core and the position weekly, at the first session of the week.
    persist_lots: the journal keeps the lots (live): each change is published for it to write,
        and the book is rebuilt at start from what it saved. False keeps them in memory only
        (backtests: nothing is published).
    warmup_days: calendar days of the data client's own bars of the bar_type's spec requested
        at start to warm both RSIs before trading (live: IB's historical bars; the weekly RSI
        needs rsi_period + 1 NYSE weeks). 0: none (a backtest warms up on its earlier data).
    """

    instrument_id: InstrumentId
    bar_type: BarType
    fallback_bar_type: BarType | None = None
    rsi_period: PositiveInt = 7
    buy_rsi: float = 30.0
    exit_rsi: float = 75.0
    lot_fraction: float = 0.01
    core_sale_fraction: float = 0.75
    profit_target: float = 0.01
    max_cycles: PositiveInt = 20
    core_target: float = 0.05
    symbol_cap: float = 0.10
    core_exit_fraction: float = 0.01
    core_exit_step: float = 0.01
    fixed_bankroll: Decimal | None = None
    capital_fraction: Decimal = Decimal(1)
    exec_algorithm_id: str = "BidChaser"
    chase_interval_secs: PositiveInt = 60
    signal_max_age_secs: PositiveInt = 900
    rebalance: bool = True
    persist_lots: bool = False
    warmup_days: NonNegativeInt = 0

    def __post_init__(self) -> None:
        for name in ("buy_rsi", "exit_rsi"):
            value = getattr(self, name)
            if not 0 < value < 100:
                raise ValueError(f"{name} is on the 0-100 RSI scale, got {value}")
        for name in (
            "lot_fraction",
            "core_sale_fraction",
            "profit_target",
            "core_target",
            "symbol_cap",
            "core_exit_fraction",
            "core_exit_step",
        ):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be a fraction in (0, 1], got {value}")
        if self.core_target > self.symbol_cap:
            raise ValueError(
                f"core_target {self.core_target} must not exceed symbol_cap {self.symbol_cap}",
            )
        if self.lot_fraction > self.symbol_cap:
            raise ValueError(
                f"lot_fraction {self.lot_fraction} exceeds symbol_cap {self.symbol_cap}"
            )
        if not 0 < self.capital_fraction <= 1:
            raise ValueError(f"capital_fraction must be a fraction in (0, 1], got {self.capital_fraction}")
        if self.fixed_bankroll is not None and not self.fixed_bankroll > 0:
            raise ValueError(
                f"fixed_bankroll must be a positive USD amount, got {self.fixed_bankroll}"
            )


@dataclass
class _BuyIntent:
    lot_id: str
    kind: LotKind
    quantity: Decimal


@dataclass
class _SellIntent:
    purpose: str  # target, core-exit, trim
    lot_ids: list[str]  # lots the fills are taken from, in order
    quantity: Decimal
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    adopted: bool = False  # a broker order taken back after a restart (no algorithm around it)


@dataclass
class CoreRSIRecord:
    """What the strategy did, for reports and tests (timestamps in ns)."""

    buy_signals: list[int] = field(default_factory=list)
    exit_crosses: list[int] = field(default_factory=list)
    cap_blocks: list[int] = field(default_factory=list)
    rebalances: list[tuple[int, str]] = field(default_factory=list)
    core_progress: list[tuple[int, float]] = field(default_factory=list)  # core % of target


def _d(value: float) -> Decimal:
    return Decimal(str(value))


def _whole_shares(bankroll: Decimal, fraction: float, price: Decimal) -> Decimal:
    """The most whole shares worth `fraction` of the bankroll at `price`."""
    return (bankroll * _d(fraction) / price).to_integral_value(rounding=ROUND_DOWN)


class CoreRSI(Strategy):
    """
    Rules, per symbol (levels on the 0-100 RSI scale; sizes are fractions of the bankroll,
    the account's equity or `fixed_bankroll`, measured at the signal):

    - A buy signal is the intraday Wilder RSI crossing above `buy_rsi` (from strictly below to
      strictly above). Each signal buys one lot of `lot_fraction` through the bid-chasing
      execution algorithm (limit at the bid, moved every `chase_interval_secs`).
    - Core building: while fewer than `max_cycles` core-building lots were bought and the core
      (with the quarter every open core-building lot will leave) is below `core_target`, a
      signal buys a core-building lot. Its target, `profit_target` above its fill price, sells
      `core_sale_fraction` of it (rounded down to whole shares); the rest becomes a core lot.
    - Trading: otherwise a signal buys a trading lot, sold whole at its target; its net profit
      is booked as a reduction of the core's cost basis.
    - Core exit: when the weekly RSI (NYSE weeks) crosses above `exit_rsi`, sell
      `core_exit_fraction` of the core's shares at the market, then each further
      `core_exit_step` above the last core sale (a resting limit), until the weekly RSI falls
      below `exit_rsi` or the core is gone.
    - Cap: no buy makes the position worth more than `symbol_cap`; at the cap it only sells.
    - Weekly rebalancing, at the first regular-hours bar of the week's first session: a core
      above `core_target` is trimmed to it, then a position above `symbol_cap` is trimmed to
      it (trading lots first, then core-building lots, then core), and the log says so.
    """

    # What may change while it runs (the dashboard's parameter change, `update_config`).
    LIVE_PARAMETERS = (
        "buy_rsi", "exit_rsi", "lot_fraction", "profit_target", "core_sale_fraction", "core_target",
        "symbol_cap", "core_exit_fraction", "core_exit_step", "max_cycles", "capital_fraction",
        "fixed_bankroll",
    )

    def __init__(self, config: CoreRSIConfig) -> None:
        super().__init__(config)
        # The parameters in force: the config until update_config replaces them (Nautilus
        # configs are frozen, and a strategy's `config` attribute is read-only).
        self.params = config
        self.signals = RsiSignals(
            config.instrument_id, config.rsi_period, config.buy_rsi, config.exit_rsi
        )
        self.instrument: Instrument | None = None
        self.book: LotBook | None = None
        self.record = CoreRSIRecord()
        self._algo_id = ExecAlgorithmId(config.exec_algorithm_id)
        self._sessions = SessionTracker()
        self._buys: dict[ClientOrderId, _BuyIntent] = {}
        self._sells: dict[ClientOrderId, _SellIntent] = {}
        self._targets: dict[str, ClientOrderId] = {}  # lot id -> its resting target order
        self._trimming: set[str] = set()  # lots whose target is cancelled for a trim
        self._exit_active = False
        self._exit_chunk = ZERO
        self._exit_order: ClientOrderId | None = None
        self._last_core_sale: Decimal | None = None
        self._rebalanced_week = -1
        self._week_close = -1  # close (ns) of the NYSE week the latest bar belongs to
        self._last_price = ZERO
        self._last_bankroll = ZERO
        self._core_target = _d(config.core_target)
        # Warm-up: live bars that arrive before the history are held, then played after it.
        self._warmup = HistoryWarmup(self, "Core RSI warm-up", self._on_warmup_done)
        self._warmup_bars = 0
        self._warmup_last_ns = -1
        self._targets_due: list[str] = []  # lots whose targets wait for the first bar

    def update_config(self, config: CoreRSIConfig) -> None:
        """Apply new LIVE_PARAMETERS from the next bar on; the rest cannot change while it runs."""
        refuse_frozen_changes(self.params, config, self.LIVE_PARAMETERS)
        # The crosses keep whether they are armed: a new level applies to the next RSI value.
        self.signals.buy_cross.level = config.buy_rsi
        self.signals.exit_cross.level = config.exit_rsi
        self.signals.exit_level = config.exit_rsi
        self._core_target = _d(config.core_target)
        self.params = config

    def progress(self) -> dict[str, object]:
        """The core's progress and the open lots by kind (for the dashboard)."""
        if self.book is None:
            return {}
        latest = self.record.core_progress[-1][1] if self.record.core_progress else 0.0
        return {
            "core_pct_of_target": round(latest, 2),
            "cycles": f"{self.cycles()}/{self.params.max_cycles}",
            **{f"{kind.value}_lots": len(self.book.open_lots(kind)) for kind in LotKind},
        }

    def indicators_in_use(self) -> dict[str, object]:
        """The levels the RSI crosses are compared with (for the dashboard)."""
        return {"buy_rsi": self.signals.buy_cross.level, "exit_rsi": self.signals.exit_cross.level}

    def indicator_values(self) -> dict[str, float]:
        """The intraday and weekly RSI, 0-100 (the dashboard's indicator panel)."""
        values = {}
        if self.signals.rsi_intraday.initialized:
            values["rsi"] = self.signals.rsi_intraday.value * 100
        if self.signals.weekly_value is not None:
            values["rsi_weekly"] = self.signals.weekly_value
        return values

    # -- lifecycle -------------------------------------------------------------------------

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        if self.instrument is None:
            self.log.error(f"Instrument {self.config.instrument_id} not in the cache")
            self.stop()
            return
        self.book = self._load_book()
        self.bankroll()
        if self.book.lots:
            self.log.info(
                f"Reloaded {len(self.book.lots)} lots from the journal: "
                f"{self.book.open_quantity()} shares open",
            )
            self._restore_targets()
        if self.config.warmup_days:
            self._request_warmup()
        # Sizes and sells price at the bid when quotes flow (live, or a catalog with quotes).
        self.subscribe_quote_ticks(self.config.instrument_id)
        self.subscribe_bars(self.config.bar_type)

    def _load_book(self) -> LotBook:
        instrument, strategy = str(self.config.instrument_id), self.id.value
        if not self.config.persist_lots:
            return LotBook(instrument, strategy)
        saved = self.cache.get(SAVED_LOTS_KEY)
        # The journal subscribes before any strategy starts; a saved entry alone may be a
        # stale copy from a persistent cache (Redis) with no journal running now.
        missing = []
        if not self.msgbus.has_subscribers(LOTS_TOPIC):
            missing.append(f"nothing subscribes to {LOTS_TOPIC!r}")
        if saved is None:
            missing.append(f"no saved lots under cache key {SAVED_LOTS_KEY!r}")
        if missing:
            # Starting empty would buy a core the journal may already hold: refuse instead.
            raise RuntimeError(
                f"{strategy}: persist_lots is set but no journal is running to keep the lots "
                f"({'; '.join(missing)}); add the journal actor (JOURNAL=true) or set "
                f"persist_lots=False",
            )
        return LotBook.restore(instrument, strategy, decode_saved_lots(saved), self._publish_lot)

    def _publish_lot(self, record: LotChange) -> None:
        publish_lot_change(self.msgbus, record)

    def _request_warmup(self) -> None:
        # The data client's own bars of the same spec: an engine-built bar type (15-MINUTE
        # INTERNAL from minutes) has no history of its own to ask for.
        bar_type = BarType(
            self.config.instrument_id, self.config.bar_type.spec, AggregationSource.EXTERNAL
        )
        start = self.clock.utc_now() - timedelta(days=self.config.warmup_days)
        self._warmup.request([bar_type], start)
        self.log.info(f"Warming up the RSIs from {bar_type} bars since {start:%Y-%m-%d}")

    def on_historical_data(self, data: Data) -> None:
        # The history only feeds the RSIs: a cross in it is not a signal to act on now.
        if isinstance(data, Bar) and self._warmup.active:
            self.signals.update(data)
            self._warmup_bars += 1
            self._warmup_last_ns = max(self._warmup_last_ns, data.ts_event)

    def _on_warmup_done(self) -> None:
        weekly = self.signals.weekly_value
        self.log.info(
            f"Warm-up done: {self._warmup_bars} bars; intraday RSI "
            f"{'ready' if self.signals.rsi_intraday.initialized else 'not ready'}, weekly RSI "
            f"{'not ready' if weekly is None else f'{weekly:.1f}'}",
        )

    def _restore_targets(self) -> None:
        """
        After a restart: a working sell the broker still holds for an open lot's exact target
        (the node claims the instrument's broker orders for this strategy) is adopted as that
        lot's target; any other working order of ours is cancelled; a lot left without a
        target gets one at the next bar, once the pre-trade gate has opened after start.
        """
        wanted = {lot.lot_id: self._target_for(lot.lot_id) for lot in self.book.open_lots()
                  if lot.kind != LotKind.CORE}
        for order in self.cache.orders_open(
            instrument_id=self.config.instrument_id, strategy_id=self.id
        ):
            lot_id = next(
                (
                    lot_id for lot_id, target in wanted.items()
                    if target is not None and lot_id not in self._targets
                    and order.side == OrderSide.SELL and order.has_price
                    and (order.leaves_qty.as_decimal(), order.price.as_decimal()) == target
                ),
                None,
            )
            if lot_id is None:
                self.cancel_order(order)
                continue
            quantity = order.leaves_qty.as_decimal()
            self._sells[order.client_order_id] = _SellIntent(
                "target", [lot_id], quantity, adopted=True
            )
            self._targets[lot_id] = order.client_order_id
            self.log.info(f"Lot {lot_id}: adopted working target {order.client_order_id}")
        self._targets_due = [lot_id for lot_id in wanted if lot_id not in self._targets]

    def on_stop(self) -> None:
        # The lots' profit targets stay working at the broker (GTC): they are the lots' exits
        # while the node is down, and the next start adopts them.
        return

    def on_reset(self) -> None:
        # The lot book is rebuilt from the journal's saved lots (or empty) at the next start.
        self.signals.reset()
        self.record = CoreRSIRecord()
        self._buys.clear()
        self._sells.clear()
        self._targets.clear()
        self._trimming.clear()
        self._exit_active = False
        self._exit_order = None
        self._last_core_sale = None
        self._rebalanced_week = -1
        self._week_close = -1
        self._warmup.reset()
        self._warmup_bars = 0
        self._warmup_last_ns = -1
        self._targets_due.clear()

    # -- sizes -----------------------------------------------------------------------------

    def bankroll(self) -> Decimal:
        # From the parameters in force: the operator may change the bankroll while it runs.
        if self.params.fixed_bankroll is not None:
            bankroll = self.params.fixed_bankroll
        else:
            equity = account_equity(self.portfolio, self.cache, self.config.instrument_id.venue)
            bankroll = equity * self.params.capital_fraction
        self._last_bankroll = bankroll
        return bankroll

    def cycles(self) -> int:
        """Core-building lots bought (a core lot was one before its target sale)."""
        started = sum(1 for lot in self.book.lots.values() if lot.kind != LotKind.TRADING)
        pending = sum(
            1
            for intent in self._buys.values()
            if intent.kind == LotKind.CORE_BUILDING and intent.lot_id not in self.book.lots
        )
        return started + pending

    def _kept_by_core(self, quantity: Decimal) -> Decimal:
        sold = (quantity * _d(self.params.core_sale_fraction)).to_integral_value(
            rounding=ROUND_DOWN
        )
        return quantity - sold

    def committed_core_shares(self) -> Decimal:
        core = self.book.open_quantity(LotKind.CORE)
        for lot in self.book.open_lots(LotKind.CORE_BUILDING):
            core += min(lot.open_quantity, self._kept_by_core(lot.quantity))
        for intent in self._buys.values():
            if intent.kind == LotKind.CORE_BUILDING and intent.lot_id not in self.book.lots:
                core += self._kept_by_core(intent.quantity)
        return core

    def _pending_buy_shares(self) -> Decimal:
        pending = ZERO
        for intent in self._buys.values():
            lot = self.book.lots.get(intent.lot_id)
            pending += intent.quantity - (lot.quantity if lot else ZERO)
        return pending

    def _reference_price(self, bar: Bar) -> Decimal:
        quote = self.cache.quote_tick(self.config.instrument_id)
        if quote is not None and quote.bid_price.raw > 0:
            return quote.bid_price.as_decimal()
        return bar.close.as_decimal()

    def _ceil_tick(self, price: Decimal) -> Decimal:
        tick = self.instrument.price_increment.as_decimal()
        return (price / tick).to_integral_value(rounding=ROUND_CEILING) * tick

    # -- signals ---------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        if self._warmup.hold(bar):
            return
        if bar.ts_event <= self._warmup_last_ns:
            return  # already counted from the history
        due, self._targets_due = self._targets_due, []
        for lot_id in due:
            if lot_id not in self._targets and self.book.get(lot_id).is_open:
                self._place_target(lot_id)
        update = self.signals.update(bar)
        if update is None:
            return
        self._last_price = bar.close.as_decimal()
        if update.weekly_bars:
            self._on_weekly(update.exit_cross, update.rsi_weekly, bar)
        if self.config.rebalance:
            self._maybe_rebalance(bar)
        if update.buy_signal:
            self.record.buy_signals.append(bar.ts_event)
            self._publish_signal(bar, "rsi_cross_up", update.rsi_intraday, update.rsi_weekly)
            self._on_buy_signal(bar)
        # Progress is measured against the bankroll of the latest decision (signal or
        # rebalance): valuing the account on every bar would cost more than the strategy.
        core_value = self.book.open_quantity(LotKind.CORE) * self._last_price
        target = self._last_bankroll * self._core_target
        self.record.core_progress.append(
            (bar.ts_event, float(core_value / target * 100) if target else 0.0)
        )

    def _on_buy_signal(self, bar: Bar) -> None:
        if self._buys:
            self.log.info("Buy signal skipped: the previous buy is still being worked")
            return
        price = self._reference_price(bar)
        bankroll = self.bankroll()
        shares = (bankroll * _d(self.params.lot_fraction) / price).to_integral_value(
            rounding=ROUND_DOWN
        )
        if shares < 1:
            self.log.warning(f"Bankroll {bankroll} buys no share at {price}")
            return
        held = self.book.open_quantity() + self._pending_buy_shares()
        cap = bankroll * _d(self.params.symbol_cap)
        if (held + shares) * price > cap:
            self.record.cap_blocks.append(bar.ts_event)
            self.log.info(
                f"Cap: {held} shares held + {shares} at {price} would exceed "
                f"{self.params.symbol_cap:.0%} of {bankroll}; not buying",
            )
            return
        core_value = self.committed_core_shares() * price
        building = self.cycles() < self.params.max_cycles and core_value < bankroll * _d(
            self.params.core_target
        )
        kind = LotKind.CORE_BUILDING if building else LotKind.TRADING
        order_id = self._submit(OrderSide.BUY, shares, price, mode="chase", tag=f"lot={kind.value}")
        if self.cache.order(order_id).status == OrderStatus.CANCELED:
            # The pre-trade gate denied the first child inside submit_order (outside the entry
            # window, say) and the bid chaser closed the primary before it was recorded here:
            # nothing is pending, the next signal may buy.
            self.log.warning(f"Buy {order_id} ended as it was placed (denied); nothing pending")
            return
        self._buys[order_id] = _BuyIntent(order_id.value, kind, shares)

    def _publish_signal(
        self,
        bar: Bar,
        signal_type: str,
        rsi_intraday: float | None,
        rsi_weekly: float | None,
        note: str = "",
    ) -> None:
        """Tell the journal and the alerts what was decided, with the RSI values behind it."""
        indicators = {
            name: f"{value:.2f}"
            for name, value in (("rsi_15m", rsi_intraday), ("rsi_weekly", rsi_weekly))
            if value is not None
        }
        publish_signal(
            self.msgbus,
            SignalRecord(bar.ts_event, str(self.id), str(self.config.instrument_id), signal_type, indicators, note),
        )

    def _on_weekly(self, exit_cross: bool, rsi_weekly: float | None, bar: Bar) -> None:
        if exit_cross:
            self.record.exit_crosses.append(bar.ts_event)
            self._publish_signal(bar, "weekly_exit_cross", None, rsi_weekly)
            core = self.book.open_quantity(LotKind.CORE)
            if core > 0 and not self._exit_active:
                self._exit_active = True
                chunk = (core * _d(self.params.core_exit_fraction)).to_integral_value(
                    rounding=ROUND_DOWN
                )
                self._exit_chunk = max(chunk, ONE)
                self._last_core_sale = None
                self.log.info(
                    f"Weekly RSI {rsi_weekly:.1f} crossed above {self.params.exit_rsi}: "
                    f"selling the core {self._exit_chunk} shares per step"
                )
                self._place_core_exit(self._reference_price(bar))
        elif self._exit_active and rsi_weekly is not None and rsi_weekly < self.params.exit_rsi:
            self._exit_active = False
            self.log.info(
                f"Weekly RSI {rsi_weekly:.1f} back below {self.params.exit_rsi}: core exit stops"
            )
            if self._exit_order is not None:
                self.cancel_order(self.cache.order(self._exit_order))

    def _place_core_exit(self, price: Decimal) -> None:
        core_lots = self.book.open_lots(LotKind.CORE)
        core = sum((lot.open_quantity for lot in core_lots), ZERO)
        if core <= 0:
            self._exit_active = False
            return
        quantity = min(self._exit_chunk, core)
        order_id = self._submit(
            OrderSide.SELL, quantity, price, mode="rest", tag="core-exit", extended_hours=True,
            reason=ExitReason.CORE_EXIT,
        )
        self._sells[order_id] = _SellIntent(
            "core-exit", [lot.lot_id for lot in core_lots], quantity
        )
        self._exit_order = order_id

    # -- rebalancing -----------------------------------------------------------------------

    def _maybe_rebalance(self, bar: Bar) -> None:
        if bar.ts_event > self._week_close:
            self._week_close = week_close_ns(bar.ts_event)
        week = self._week_close
        if week == self._rebalanced_week or not self._sessions.in_regular_hours(bar.ts_event):
            return
        self._rebalanced_week = week
        for lot in self.book.open_lots():
            if (
                lot.kind != LotKind.CORE
                and lot.lot_id not in self._targets
                and lot.lot_id not in self._trimming
            ):
                self._place_target(lot.lot_id)
        if any(intent.purpose == "trim" for intent in self._sells.values()):
            self.log.warning("Rebalance skipped: last week's trim is still working")
            return
        price = self._reference_price(bar)
        bankroll = self.bankroll()
        core_lots = self.book.open_lots(LotKind.CORE)
        core = sum((lot.open_quantity for lot in core_lots), ZERO)
        core_trim = max(core - _whole_shares(bankroll, self.params.core_target, price), ZERO)
        if core_trim > 0:
            order_id = self._submit_trim(
                bar, "core", core, self.params.core_target, bankroll, price, core_trim, "trim-core",
            )
            self._sells[order_id] = _SellIntent(
                "trim", [lot.lot_id for lot in core_lots], core_trim
            )
        total = self.book.open_quantity() - core_trim
        total_trim = max(total - _whole_shares(bankroll, self.params.symbol_cap, price), ZERO)
        if total_trim > 0:
            order = [
                *self.book.open_lots(LotKind.TRADING),
                *self.book.open_lots(LotKind.CORE_BUILDING),
                *self.book.open_lots(LotKind.CORE),
            ]
            taken, lots = ZERO, []
            for lot in order:
                if taken >= total_trim:
                    break
                lots.append(lot.lot_id)
                taken += lot.open_quantity
                target = self._targets.get(lot.lot_id)
                if target is not None:  # its shares are sold now; the target is re-placed after
                    self._trimming.add(lot.lot_id)
                    self.cancel_order(self.cache.order(target))
            order_id = self._submit_trim(
                bar, "position", total, self.params.symbol_cap, bankroll, price, total_trim,
                "trim-total",
            )
            self._sells[order_id] = _SellIntent("trim", lots, total_trim)

    def _submit_trim(
        self,
        bar: Bar,
        holding: str,
        shares: Decimal,
        fraction: float,
        bankroll: Decimal,
        price: Decimal,
        trim: Decimal,
        tag: str,
    ) -> ClientOrderId:
        """Record why a holding above its share of the bankroll is trimmed, then sell the excess."""
        message = (
            f"Rebalance: {holding} {shares} shares ({shares * price:.2f} USD) is above "
            f"{fraction:.0%} of {bankroll:.2f}; trimming {trim}"
        )
        self.log.info(message)
        self.record.rebalances.append((bar.ts_event, message))
        self._publish_signal(bar, "rebalance", None, self.signals.weekly_value, message)
        return self._submit(
            OrderSide.SELL, trim, price, mode="rest", tag=tag, extended_hours=True,
            reason=ExitReason.REBALANCE_TRIM,
        )

    # -- orders ----------------------------------------------------------------------------

    def _submit(
        self,
        side: OrderSide,
        quantity: Decimal,
        price: Decimal,
        mode: str,
        tag: str,
        extended_hours: bool = False,
        reason: ExitReason | None = None,
    ) -> ClientOrderId:
        """A limit order through the bid chaser; a sale carries why it sells (`reason`)."""
        if (side == OrderSide.SELL) != (reason is not None):
            raise ValueError(f"reason: a sale needs an exit reason and a buy none, got {side} {reason}")
        params = {
            "mode": mode,
            "chase_interval_secs": self.config.chase_interval_secs,
            "max_signal_age_secs": self.config.signal_max_age_secs,
            "fallback_bar_type": str(self.config.fallback_bar_type or self.config.bar_type),
            "extended_hours": extended_hours,
        }
        order = self.order_factory.limit(
            instrument_id=self.config.instrument_id,
            order_side=side,
            quantity=self.instrument.make_qty(quantity),
            price=self.instrument.make_price(price),
            time_in_force=TimeInForce.GTC,
            exec_algorithm_id=self._algo_id,
            exec_algorithm_params=params,
            tags=[tag] if reason is None else [tag, exit_tag(reason)],
        )
        self.submit_order(order)
        return order.client_order_id

    def _target_for(self, lot_id: str) -> tuple[Decimal, Decimal] | None:
        """The shares a lot's profit target sells and its price, or None if it sells none."""
        lot = self.book.get(lot_id)
        if lot.kind == LotKind.CORE_BUILDING:
            quantity = lot.open_quantity - self._kept_by_core(lot.quantity)
        elif lot.kind == LotKind.TRADING:
            quantity = lot.open_quantity
        else:
            return None
        if quantity <= 0:
            return None
        return quantity, self._ceil_tick(lot.price * (ONE + _d(self.params.profit_target)))

    def _place_target(self, lot_id: str) -> None:
        target = self._target_for(lot_id)
        if target is None:
            if self.book.get(lot_id).kind == LotKind.CORE_BUILDING:
                self.book.convert(lot_id, LotKind.CORE)
            return
        quantity, price = target
        # A resting target must be able to fill in any session the data covers.
        order_id = self._submit(
            OrderSide.SELL,
            quantity,
            price,
            mode="rest",
            tag=f"target={self.book.get(lot_id).kind.value}",
            extended_hours=True,
            reason=ExitReason.TARGET,
        )
        if self.cache.order(order_id).status == OrderStatus.CANCELED:
            # Denied inside submit_order (a halt at the gate, say): try again at the next bar.
            self.log.warning(f"Target {order_id} of lot {lot_id} ended as it was placed (denied)")
            self._targets_due.append(lot_id)
            return
        self._sells[order_id] = _SellIntent("target", [lot_id], quantity)
        self._targets[lot_id] = order_id

    def _primary_id(self, client_order_id: ClientOrderId) -> ClientOrderId:
        order = self.cache.order(client_order_id)
        if order is not None and order.exec_spawn_id is not None:
            return order.exec_spawn_id
        return client_order_id

    def on_order_filled(self, event: OrderFilled) -> None:
        primary = self._primary_id(event.client_order_id)
        quantity = event.last_qty.as_decimal()
        price = event.last_px.as_decimal()
        commission = event.commission.as_decimal()
        if primary in self._buys:
            intent = self._buys[primary]
            self.book.add_buy_fill(
                intent.lot_id, intent.kind, event.ts_event, quantity, price, commission
            )
            return
        intent = self._sells.get(primary)
        if intent is None:
            self.log.error(
                f"Fill {event.trade_id} of {event.client_order_id} belongs to no order of ours"
            )
            return
        intent.filled += quantity
        intent.notional += quantity * price
        remaining, fee_left = quantity, commission
        for lot_id in intent.lot_ids:
            lot = self.book.get(lot_id)
            take = min(remaining, lot.open_quantity)
            if take <= 0:
                continue
            fee = fee_left if take == remaining else commission * take / quantity
            self.book.record_sale(lot_id, event.ts_event, take, price, fee, intent.purpose)
            fee_left -= fee
            remaining -= take
            if remaining == 0:
                break
        if remaining > 0:
            # Another sell (a trim, a core-exit step) took shares from the same lots first:
            # the rest comes from the oldest other open lots, and the log says so.
            self.log.warning(
                f"Fill {event.trade_id}: {remaining} of {quantity} shares sold by {primary} "
                f"exceed the open shares of lots {intent.lot_ids}; taken from other open lots",
            )
            for lot in self.book.open_lots():
                take = min(remaining, lot.open_quantity)
                fee = fee_left if take == remaining else commission * take / quantity
                self.book.record_sale(lot.lot_id, event.ts_event, take, price, fee, intent.purpose)
                fee_left -= fee
                remaining -= take
                if remaining == 0:
                    break
        if remaining > 0:
            raise RuntimeError(
                f"Fill {event.trade_id}: {primary} sold {remaining} shares more than the lot "
                f"book of {self.config.instrument_id} holds",
            )
        if intent.adopted and intent.filled == intent.quantity:
            # No algorithm closes an adopted order's sequence: its last fill ends it.
            del self._sells[primary]
            self._targets.pop(intent.lot_ids[0], None)
            self._on_target_done(intent.lot_ids[0])

    def on_order_canceled(self, event: OrderCanceled) -> None:
        # The bid chaser closes a primary when its work is over (filled, stale or cancelled).
        primary = event.client_order_id
        if primary in self._buys:
            intent = self._buys.pop(primary)
            if intent.lot_id in self.book.lots:
                self._place_target(intent.lot_id)
            return
        intent = self._sells.pop(primary, None)
        if intent is None:
            return
        if intent.purpose == "target":
            lot_id = intent.lot_ids[0]
            self._targets.pop(lot_id, None)
            lot = self.book.get(lot_id)
            if intent.filled == intent.quantity:
                self._on_target_done(lot_id)
            elif lot.is_open and lot_id not in self._trimming:
                # Rejected, expired or cancelled by hand: re-placing at once could loop on a
                # venue that keeps refusing; the weekly rebalance gives the lot a target again.
                self.log.warning(
                    f"Target of lot {lot_id} ended with {intent.filled} of {intent.quantity} sold"
                )
        elif intent.purpose == "core-exit":
            self._exit_order = None
            if intent.filled > 0:
                self._last_core_sale = intent.notional / intent.filled
            if self._exit_active and intent.filled == intent.quantity:
                step = self._ceil_tick(
                    self._last_core_sale * (ONE + _d(self.params.core_exit_step))
                )
                self._place_core_exit(step)
        elif intent.purpose == "trim":
            # Lots whose targets were cancelled for the trim get targets for what is left.
            for lot_id in intent.lot_ids:
                self._trimming.discard(lot_id)
                lot = self.book.get(lot_id)
                if lot.is_open and lot.kind != LotKind.CORE and lot_id not in self._targets:
                    self._place_target(lot_id)

    def _on_target_done(self, lot_id: str) -> None:
        lot = self.book.get(lot_id)
        if lot.kind == LotKind.CORE_BUILDING:
            self.book.convert(lot_id, LotKind.CORE)
        elif lot.kind == LotKind.TRADING and not lot.is_open:
            self.book.book_cost_basis_reduction(self.clock.timestamp_ns(), lot.realised_pnl, lot_id)
            self.log.info(
                f"Trading lot {lot_id} closed: {lot.realised_pnl:.2f} USD off the core's cost basis"
            )

    # -- reporting -------------------------------------------------------------------------

    def report_state(self) -> dict[str, object]:
        """Everything a report draws: histories (ns, value) and the summary figures."""
        return {
            "instrument_id": str(self.config.instrument_id),
            "summary": self.summary(),
            "rsi_intraday": list(self.signals.history_intraday),
            "rsi_weekly": list(self.signals.history_weekly),
            "buy_signals": list(self.record.buy_signals),
            "exit_crosses": list(self.record.exit_crosses),
            "core_progress": list(self.record.core_progress),
            "cost_basis_reductions": list(self.book.reductions),
            "buy_rsi": self.params.buy_rsi,
            "exit_rsi": self.params.exit_rsi,
            "core_target": self.params.core_target,
        }

    def summary(self) -> dict[str, object]:
        """Figures for the report: exact decimals as strings."""
        bankroll = self.config.fixed_bankroll
        open_lots = self.book.open_lots()
        return {
            "cycles": self.cycles(),
            "open_shares": str(sum((lot.open_quantity for lot in open_lots), ZERO)),
            # What the open shares cost, with the part of their buy commissions not yet realised.
            "open_cost": str(
                sum(
                    (
                        lot.open_quantity * lot.price
                        + lot.commission * lot.open_quantity / lot.quantity
                        for lot in open_lots
                    ),
                    ZERO,
                )
            ),
            "core_shares": str(self.book.open_quantity(LotKind.CORE)),
            "core_cost_basis": str(self.book.core_cost_basis()),
            "cost_basis_reduction": str(self.book.cost_basis_reduction),
            "realised_by_kind": {k: str(v) for k, v in self.book.realised_by_kind().items()},
            "buy_signals": len(self.record.buy_signals),
            "exit_crosses": len(self.record.exit_crosses),
            "cap_blocks": len(self.record.cap_blocks),
            "rebalances": [message for _, message in self.record.rebalances],
            "empty_bars_skipped": self.signals.empty_bars_skipped,
            "fixed_bankroll": str(bankroll) if bankroll is not None else None,
        }
