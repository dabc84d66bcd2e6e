"""
The shared shape of the intraday session strategies (opening range, VWAP reversion, end of
day): a watchlist universe in one instance, a trading window in exchange time cut at an early
close, candidate filters, bullish trades in the stock and bearish ones in a mapped 1x inverse
ETF, a protective stop placed on each fill, a hard exit at the window end, the same-session
blocklist, and ``self_check()``.

Subclasses keep only their signal: ``on_session_start`` and ``on_session_bar``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_DOWN
from decimal import Decimal
from typing import ClassVar

import msgspec
import pandas as pd
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.config import NonNegativeInt
from nautilus_trader.config import PositiveInt
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarSpecification
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AggregationSource
from nautilus_trader.model.enums import BarAggregation
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import PriceType
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.events import OrderCanceled
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderExpired
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import OrderRejected
from nautilus_trader.model.events import PositionClosed
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.orders import Order
from nautilus_trader.model.position import Position
from nautilus_trader.trading.strategy import Strategy

from strategies import blocklist
from strategies.account import account_equity
from strategies.bearish import DEFAULT_INVERSE_ETFS
from strategies.bearish import bearish_choice_problems
from strategies.bearish import inverse_map_problems
from strategies.bearish import leveraged_problems
from strategies.candidates import CandidateFilter
from strategies.candidates import DailyVolumeTracker
from strategies.candidates import completed_session_volumes
from strategies.readiness import ReadinessReport
from strategies.records import ExitReason
from strategies.records import RiskRecord
from strategies.records import SignalRecord
from strategies.records import exit_reason_of
from strategies.records import exit_tag
from strategies.records import publish_risk
from strategies.records import publish_signal
from strategies.sessions import EXCHANGE_TZ
from strategies.sessions import Session
from strategies.sessions import SessionTracker
from strategies.sessions import ny_date
from strategies.sessions import session_for
from strategies.warmup import HistoryWarmup

# Cash kept back from each buy for slippage and commission so a cash account never goes short.
CASH_CUSHION = Decimal("0.99")

# The venue's daily bars (IB: one per session, its regular-hours volume with use_rth).
DAILY_BARS = BarSpecification(1, BarAggregation.DAY, PriceType.LAST)


class NotYetSupportedError(ValueError):
    """A configuration choice that is named but not implemented yet."""


class SessionStrategyConfig(StrategyConfig, frozen=True):
    """
    Parameters shared by the session strategies.

    bar_types: the bars of every instrument the strategy reads or buys (watchlist and inverse
        ETFs), one bar type per instrument (1-minute, or 5-minute where only that exists).
    watchlist: symbols whose bars generate signals.
    capital_fraction: share of account equity this strategy may commit in total.
    bearish_instrument: inverse_etf, long_put (not yet supported) or disabled.
    inverse_etfs: underlying symbol -> 1x inverse ETF symbol; leveraged ETFs are refused.
    allow_leveraged_for_test: TEST ONLY: accept leveraged inverse ETFs (the shared sample data
        has only 3x ones); logged as a warning and reported by self_check() as not ready.
    stop_fraction: protective stop distance below the fill price.
    min_price, max_price, min_average_daily_volume (0 = off), average_volume_sessions,
    max_spread_fraction: the candidate filters.
    warmup_days: calendar days of the data client's daily bars requested at start for the
        average daily volume (live: IB's; bars are held until they arrive). 0: none, the
        average waits for `average_volume_sessions` sessions of the strategy's own bars.
    """

    bar_types: tuple[BarType, ...]
    watchlist: tuple[str, ...]
    capital_fraction: Decimal = Decimal("0.3")
    bearish_instrument: str = "inverse_etf"
    inverse_etfs: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_INVERSE_ETFS))
    allow_leveraged_for_test: bool = False
    stop_fraction: Decimal = Decimal("0.02")
    min_price: Decimal = Decimal("5")
    max_price: Decimal = Decimal("2000")
    min_average_daily_volume: Decimal = Decimal("1000000")
    average_volume_sessions: PositiveInt = 20
    max_spread_fraction: Decimal = Decimal("0.015")
    warmup_days: NonNegativeInt = 0

    def __post_init__(self) -> None:
        if self.bearish_instrument == "long_put":
            raise NotYetSupportedError(
                "bearish_instrument='long_put' is not yet supported (long puts come in a later "
                "issue); use 'inverse_etf' or 'disabled'",
            )
        problems = self.validation_problems()
        if not self.allow_leveraged_for_test:
            problems += self.leveraged_problems()
        if problems:
            raise ValueError("; ".join(problems))

    def symbols(self) -> list[str]:
        return [bar_type.instrument_id.symbol.value for bar_type in self.bar_types]

    def leveraged_problems(self) -> list[str]:
        # The whole map is checked, used or not: a leveraged entry is a mistake wherever it is.
        return leveraged_problems(self.inverse_etfs, self.symbols())

    def active_inverse_etfs(self) -> dict[str, str]:
        """The inverse map restricted to the watchlist (the pairs this strategy may use)."""
        if self.bearish_instrument != "inverse_etf":
            return {}
        return {u: i for u, i in self.inverse_etfs.items() if u in self.watchlist}

    def validation_problems(self) -> list[str]:
        problems = bearish_choice_problems(self.bearish_instrument)
        problems += inverse_map_problems(self.inverse_etfs)
        symbols = self.symbols()
        if len(set(symbols)) != len(symbols):
            problems.append(f"bar_types: one bar type per instrument, got {', '.join(symbols)}")
        if not self.watchlist:
            problems.append("watchlist: at least one symbol is required")
        for symbol in self.watchlist:
            if symbol not in symbols:
                problems.append(f"watchlist: {symbol} has no bar type in bar_types")
        for underlying, inverse in self.active_inverse_etfs().items():
            if inverse not in symbols:
                problems.append(
                    f"inverse_etfs: {underlying} -> {inverse} but bar_types has no {inverse} bars",
                )
        for name in ("capital_fraction", "stop_fraction", "max_spread_fraction"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                problems.append(f"{name}: must be in (0, 1], got {value}")
        if not 0 < self.min_price < self.max_price:
            problems.append(
                f"min_price, max_price: need 0 < min_price < max_price, got {self.min_price}, {self.max_price}",
            )
        if self.min_average_daily_volume < 0:
            problems.append(f"min_average_daily_volume: must be >= 0, got {self.min_average_daily_volume}")
        return problems


def parse_hhmm(field: str, text: str) -> dt.time:
    try:
        return dt.time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{field}: expected a time HH:MM, got {text!r}") from None


@dataclass
class Holding:
    """
    A position this strategy opened (or is opening) and still manages.

    Reserved when the entry order is sent and released when the position closes, or when the
    entry ends (denied, rejected, cancelled, expired) with nothing filled.
    """

    signal_symbol: str  # the watchlist symbol whose signal it came from
    traded_symbol: str  # what was bought: the stock or its inverse ETF
    side: str  # "bullish" or "bearish"
    mode: str  # the rule that fired, e.g. "breakout", "reversion", "fade", "continuation"
    entered_ns: int
    entry_order_id: ClientOrderId
    stop_order_id: ClientOrderId | None = None
    exit_order_id: ClientOrderId | None = None  # the closing order while it works
    closing: bool = False  # an exit is under way; never send a second one
    retry_exit: ExitReason | None = None  # the reason of an exit that failed: sent again at the next bar


class SessionStrategy(Strategy):
    """Base of the session strategies: universe, window, filters, orders, stops, blocklist."""

    # Exchange times "HH:MM": new positions only strictly inside ENTRY_WINDOW (and before
    # EXIT_TIME); everything still held is sold at EXIT_TIME. Both are cut at an early close.
    ENTRY_WINDOW: ClassVar[tuple[str, str]]
    EXIT_TIME: ClassVar[str]

    def __init__(self, config: SessionStrategyConfig) -> None:
        super().__init__(config)
        self._sessions = SessionTracker()
        self._filter = CandidateFilter(
            config.min_price, config.max_price, config.min_average_daily_volume,
            config.max_spread_fraction,
        )
        self.instruments: dict[str, Instrument] = {}
        self.bar_type_of: dict[str, BarType] = {bt.instrument_id.symbol.value: bt for bt in config.bar_types}
        self.volumes = {symbol: DailyVolumeTracker(config.average_volume_sessions) for symbol in self.bar_type_of}
        self.last_close: dict[str, Decimal] = {}
        self.holdings: dict[str, Holding] = {}
        self.session: Session | None = None
        self.entry_start_ns = 0
        self.entry_end_ns = 0
        self.exit_ns = 0
        # Live bars are held until the volume history is in (or the wait runs out).
        self._warmup = HistoryWarmup(self, "Volume history", self._finish_history)
        self._daily_history: list[Bar] = []

    # -- lifecycle ------------------------------------------------------------------------

    def on_start(self) -> None:
        missing = []
        for symbol, bar_type in self.bar_type_of.items():
            instrument = self.cache.instrument(bar_type.instrument_id)
            if instrument is None:
                missing.append(str(bar_type.instrument_id))
                continue
            self.instruments[symbol] = instrument
        if missing:
            self.log.error(f"Instruments not in the cache: {', '.join(missing)}")
            self.stop()
            return
        if self.config.allow_leveraged_for_test:
            for problem in self.config.leveraged_problems():
                self.log.warning(f"TEST-ONLY OVERRIDE allow_leveraged_for_test: {problem}")
        if self.config.warmup_days:
            self._request_volume_history()
        for bar_type in self.config.bar_types:
            self.subscribe_bars(bar_type)
            self.subscribe_quote_ticks(bar_type.instrument_id)

    def _request_volume_history(self) -> None:
        start = self.clock.utc_now() - pd.Timedelta(days=self.config.warmup_days)
        self._warmup.request(
            [BarType(b.instrument_id, DAILY_BARS, AggregationSource.EXTERNAL) for b in self.config.bar_types],
            start,
        )

    def on_historical_data(self, data: Data) -> None:
        if isinstance(data, Bar) and data.bar_type.spec == DAILY_BARS and self._warmup.active:
            self._daily_history.append(data)

    def _finish_history(self) -> None:
        today = pd.Timestamp(self.clock.timestamp_ns(), tz="UTC").tz_convert(EXCHANGE_TZ).date()
        for symbol, tracker in self.volumes.items():
            bars = [b for b in self._daily_history if b.bar_type.instrument_id.symbol.value == symbol]
            sessions, notes = completed_session_volumes(bars, today)
            for note in notes:
                self.log.warning(f"Volume history: {note}")
            tracker.seed(sessions)
            self.log.info(
                f"{symbol}: {len(sessions)} sessions of volume history, average daily volume "
                f"{tracker.average() if tracker.average() is not None else 'not yet known'}",
            )
        self._daily_history.clear()

    def on_stop(self) -> None:
        for instrument in self.instruments.values():
            self.cancel_all_orders(instrument.id)

    # -- schedule ---------------------------------------------------------------------------

    def windows_for(self, session: Session) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
        start, end = (parse_hhmm("window", t) for t in self.ENTRY_WINDOW)
        return {
            "entries": session.window(start, end),
            "exit": session.window(start, parse_hhmm("exit", self.EXIT_TIME)),
        }

    def _start_session(self, session: Session, now_ns: int) -> None:
        self.session = session
        windows = self.windows_for(session)
        self.entry_start_ns, self.entry_end_ns = (t.value for t in windows["entries"])
        self.exit_ns = windows["exit"][1].value
        if self.exit_ns > now_ns and self.exit_ns > self.entry_start_ns:
            self.clock.set_time_alert_ns(
                name=f"{self.id}-hard-exit-{session.date}",
                alert_time_ns=self.exit_ns,
                callback=self._on_hard_exit,
            )
        self.on_session_start(session)

    def in_entry_window(self, ts_ns: int) -> bool:
        return self.entry_start_ns < ts_ns < min(self.entry_end_ns, self.exit_ns)

    # -- data -------------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        if self._warmup.hold(bar):
            return  # played once the volume history is in
        ts = bar.ts_event
        if not self._sessions.in_regular_hours(ts):
            return
        session = self._sessions.session
        assert session is not None
        if self.session is None or session.date != self.session.date:
            self._start_session(session, ts)
        symbol = bar.bar_type.instrument_id.symbol.value
        self.volumes[symbol].add(session.date, bar.volume.as_decimal())
        self.last_close[symbol] = bar.close.as_decimal()
        self._repair(symbol)
        self.on_session_bar(symbol, bar)

    def on_session_start(self, session: Session) -> None:
        """Reset the per-day state (subclasses)."""

    def on_session_bar(self, symbol: str, bar: Bar) -> None:
        """One regular-hours bar of any configured instrument (subclasses)."""

    # -- candidates and orders -------------------------------------------------------------

    def rejection(self, symbol: str) -> str | None:
        """Why `symbol` may not be bought now, or None."""
        if self.session is not None and blocklist.is_blocked(self.cache, self.session.date, symbol):
            return "already traded this session (blocklist)"
        price = self.last_close.get(symbol)
        if price is None:
            return "no price yet"
        quote = self.cache.quote_tick(self.bar_type_of[symbol].instrument_id)
        return self._filter.rejection(price, self.volumes[symbol].average(), quote)

    def bearish_symbol(self, signal_symbol: str) -> str | None:
        """The instrument a bearish signal on `signal_symbol` buys, or None when it has none."""
        if self.config.bearish_instrument != "inverse_etf":
            return None
        return self.config.active_inverse_etfs().get(signal_symbol)

    def strategy_capital(self) -> Decimal:
        venue = next(iter(self.instruments.values())).id.venue
        return account_equity(self.portfolio, self.cache, venue) * self.config.capital_fraction

    def enter(self, signal_symbol: str, side: str, mode: str, budget: Decimal, ts_ns: int) -> bool:
        """Buy `budget` worth of the stock (bullish) or its inverse ETF (bearish)."""
        traded = signal_symbol if side == "bullish" else self.bearish_symbol(signal_symbol)
        if traded is None:
            self.log.info(f"{mode} {side} signal on {signal_symbol}: no bearish instrument, skipped")
            return False
        if traded in self.holdings:
            return False
        for symbol in {signal_symbol, traded}:
            reason = self.rejection(symbol)
            if reason is not None:
                self.log.info(f"{mode} {side} signal on {signal_symbol}: {symbol} {reason}")
                return False
        instrument = self.instruments[traded]
        price = self.last_close[traded]
        free = self.portfolio.account(instrument.id.venue).balance_free(USD)
        cash = free.as_decimal() * CASH_CUSHION if free is not None else Decimal(0)
        shares = (min(budget, cash) / price).to_integral_value(rounding=ROUND_DOWN)
        if shares < 1:
            self.log.warning(f"{mode} {side} on {signal_symbol}: budget {budget} buys no {traded} at {price}")
            return False
        assert self.session is not None
        # Blocked as the order is sent, and kept blocked when the entry is refused: the cause
        # of a refusal (the day-trade count, the venue refusing the symbol, the account) holds
        # for the rest of the session, and trying the ticker again on each later signal bar
        # would only send the same order to be refused again. The holding is released instead
        # (on_order_denied ...), so the other tickers and the next sessions still trade.
        blocklist.block(self.cache, self.session.date, signal_symbol, traded)
        publish_signal(
            self.msgbus,
            SignalRecord(
                ts_ns, str(self.id), str(self.instruments[signal_symbol].id), f"{mode}:{side}",
                {"price": str(self.last_close[signal_symbol])},
                f"buys {shares} {traded}",
            ),
        )
        order = self.order_factory.market(
            instrument_id=instrument.id,
            order_side=OrderSide.BUY,
            quantity=instrument.make_qty(shares),
            time_in_force=TimeInForce.DAY,
            tags=[f"{mode}:{side}:{signal_symbol}"],
        )
        # Recorded before it is sent: the gate denies inside submit_order, and the denial
        # releases the holding at once.
        self.holdings[traded] = Holding(
            signal_symbol, traded, side, mode, ts_ns, order.client_order_id,
        )
        self.submit_order(order)
        return traded in self.holdings

    def exit(self, traded_symbol: str, reason: ExitReason) -> None:
        holding = self.holdings.get(traded_symbol)
        if holding is None or holding.closing:
            return
        holding.closing = True
        instrument = self.instruments[traded_symbol]
        self.cancel_all_orders(instrument.id)
        position = self._position(instrument.id)
        if position is None:
            # Nothing filled yet: the entry's cancel releases the holding. Should the entry
            # fill before its cancel lands, on_order_filled leaves this exit to the next bar.
            holding.retry_exit = reason
            return
        holding.retry_exit = None
        # Built here rather than by close_all_positions: its id must be known before it is
        # sent, since a denial arrives inside submit_order.
        order = self.order_factory.market(
            instrument_id=instrument.id,
            order_side=Order.closing_side(position.side),
            quantity=position.quantity,
            time_in_force=TimeInForce.GTC,
            reduce_only=True,
            tags=[exit_tag(reason)],
        )
        holding.exit_order_id = order.client_order_id
        self.submit_order(order, position_id=position.id)

    def _position(self, instrument_id: InstrumentId) -> Position | None:
        positions = self.cache.positions_open(instrument_id=instrument_id, strategy_id=self.id)
        return next(iter(positions), None)

    def on_order_filled(self, event: OrderFilled) -> None:
        symbol = event.instrument_id.symbol.value
        holding = self.holdings.get(symbol)
        if holding is None or event.order_side != OrderSide.BUY:
            return
        position = self._position(event.instrument_id)
        if position is None:
            return
        if holding.stop_order_id is not None:
            stop = self.cache.order(holding.stop_order_id)
            if stop is not None and stop.is_open:
                self.cancel_order(stop)
        self._place_stop(holding, position)
        if holding.closing and holding.exit_order_id is None:
            holding.closing = False  # the exit waited for this entry: the next bar sends it

    def _place_stop(self, holding: Holding, position: Position) -> None:
        """A stop-market sell of the whole position, stop_fraction below its average price."""
        instrument = self.instruments[holding.traded_symbol]
        trigger = Decimal(str(position.avg_px_open)) * (1 - self.config.stop_fraction)
        stop = self.order_factory.stop_market(
            instrument_id=instrument.id,
            order_side=OrderSide.SELL,
            quantity=position.quantity,
            trigger_price=instrument.make_price(trigger.quantize(Decimal("0.01"), rounding=ROUND_DOWN)),
            time_in_force=TimeInForce.GTC,
            reduce_only=True,
            tags=[exit_tag(ExitReason.STOP_LOSS)],
        )
        holding.stop_order_id = stop.client_order_id
        self.submit_order(stop)

    # -- orders that end unfilled -----------------------------------------------------------

    def on_order_denied(self, event: OrderDenied) -> None:
        self._order_ended(event.client_order_id, f"denied: {event.reason}")

    def on_order_rejected(self, event: OrderRejected) -> None:
        self._order_ended(event.client_order_id, f"rejected: {event.reason}")

    def on_order_canceled(self, event: OrderCanceled) -> None:
        self._order_ended(event.client_order_id, "cancelled")

    def on_order_expired(self, event: OrderExpired) -> None:
        self._order_ended(event.client_order_id, "expired")

    def _order_ended(self, client_order_id: ClientOrderId, why: str) -> None:
        """An entry, exit or stop of a holding closed without (completely) filling."""
        order = self.cache.order(client_order_id)
        holding = self.holdings.get(order.instrument_id.symbol.value) if order is not None else None
        if holding is None:
            return
        if client_order_id == holding.entry_order_id:
            self._entry_ended(holding, order, why)
        elif client_order_id == holding.exit_order_id:
            self._exit_failed(holding, order, why)
        elif client_order_id == holding.stop_order_id and not holding.closing:
            self._stop_ended(holding, order, why)

    def _entry_ended(self, holding: Holding, order: Order, why: str) -> None:
        if self._position(order.instrument_id) is not None:
            # Partly filled: a real position, its stop placed on the fill; managed as any other.
            self.log.info(
                f"Entry {order.client_order_id} {why} after {order.filled_qty} of {order.quantity}",
            )
            return
        del self.holdings[holding.traded_symbol]
        self.log.warning(
            f"Entry {order.client_order_id} into {holding.traded_symbol} {why}: nothing bought, "
            f"its place is free (the ticker stays blocked this session)",
        )

    def _exit_failed(self, holding: Holding, order: Order, why: str) -> None:
        holding.exit_order_id = None
        holding.closing = False
        position = self._position(order.instrument_id)
        if position is None:
            return  # closed anyway (the stop filled): on_position_closed releases the holding
        holding.retry_exit = exit_reason_of(order.tags) or ExitReason.WINDOW_END
        self._flag(
            holding,
            f"exit {order.client_order_id} ({holding.retry_exit}) {why}: {position.quantity} "
            f"{holding.traded_symbol} still held; the stop is placed again and the exit retried "
            f"at the next bar",
        )
        self._protect(holding, position)

    def _stop_ended(self, holding: Holding, stop: Order, why: str) -> None:
        position = self._position(stop.instrument_id)
        if position is None:
            return
        if stop.status == OrderStatus.CANCELED and holding.retry_exit is not None:
            # Cancelled for an exit that has failed since (flagged then): protect at once.
            self._protect(holding, position)
            return
        # Refused, or cancelled by someone else: unprotected until the next bar places it
        # again (at once could loop on a venue that keeps refusing it).
        self._flag(holding, f"stop {stop.client_order_id} {why}; placed again at the next bar")

    def _flag(self, holding: Holding, detail: str) -> None:
        """A held position that is not where it should be: the log and the journal say so."""
        self.log.warning(detail)
        publish_risk(
            self.msgbus,
            RiskRecord(
                self.clock.timestamp_ns(), str(self.id), "unresolved_order", detail,
                str(self.id), str(self.instruments[holding.traded_symbol].id),
            ),
        )

    def _protect(self, holding: Holding, position: Position) -> None:
        """Place the stop again unless one is still working (or being cancelled)."""
        stop_id = holding.stop_order_id
        stop = self.cache.order(stop_id) if stop_id is not None else None
        if stop is None or stop.is_closed:
            self._place_stop(holding, position)

    def _repair(self, symbol: str) -> None:
        """At each bar of a held symbol: send a failed exit again, or a missing stop."""
        holding = self.holdings.get(symbol)
        if holding is None:
            return
        position = self._position(self.instruments[symbol].id)
        exit_id = holding.exit_order_id
        exit_order = self.cache.order(exit_id) if exit_id is not None else None
        if position is not None and exit_order is not None and exit_order.is_closed:
            # The exit filled, yet shares are held: an entry fill landed after it.
            holding.closing, holding.exit_order_id = False, None
            holding.retry_exit = exit_reason_of(exit_order.tags) or ExitReason.WINDOW_END
        if holding.closing:
            return
        if holding.retry_exit is not None:
            self.exit(symbol, holding.retry_exit)
        elif position is not None:
            self._protect(holding, position)

    def on_position_closed(self, event: PositionClosed) -> None:
        symbol = event.instrument_id.symbol.value
        holding = self.holdings.get(symbol)
        if holding is None:
            return
        self.cancel_all_orders(event.instrument_id)
        entry = self.cache.order(holding.entry_order_id)
        if entry is not None and not entry.is_closed:
            return  # kept until the entry's cancel lands: a fill first reopens the position
        del self.holdings[symbol]

    def _on_hard_exit(self, event: TimeEvent) -> None:
        for symbol in list(self.holdings):
            self.exit(symbol, ExitReason.WINDOW_END)

    # -- readiness --------------------------------------------------------------------------

    def self_check(self, today: dt.date | None = None) -> ReadinessReport:
        """Instruments loaded, bars subscribed, parameters valid, and today's windows (ET)."""
        config: SessionStrategyConfig = self.config
        # Leveraged pairs only get here through the test-only override: never ready for live.
        problems = config.validation_problems() + config.leveraged_problems()
        problems += self.extra_readiness_problems()
        instruments = {str(bt.instrument_id): self.cache.instrument(bt.instrument_id) is not None for bt in config.bar_types}
        subscribed = {
            str(bt): self.msgbus.is_subscribed(f"data.bars.{bt}", self.handle_bar) for bt in config.bar_types
        }
        if today is None:
            today = ny_date(self.clock.timestamp_ns())
        session = session_for(today)
        windows = {}
        if session is not None:
            for name, (start, end) in self.windows_for(session).items():
                windows[name] = (
                    start.tz_convert(EXCHANGE_TZ).strftime("%H:%M"),
                    end.tz_convert(EXCHANGE_TZ).strftime("%H:%M"),
                ) if start < end else ("closed", "closed")
        return ReadinessReport(
            strategy=str(self.id),
            instruments_loaded=instruments,
            data_subscribed=subscribed,
            parameter_problems=tuple(problems),
            session_date=session.date.isoformat() if session else None,
            windows=windows,
            notes=tuple(self.readiness_notes()),
        )

    def extra_readiness_problems(self) -> list[str]:
        return []

    def readiness_notes(self) -> list[str]:
        return []
