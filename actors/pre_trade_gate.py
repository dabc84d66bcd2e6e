"""
The pre-trade gate: the one place every order passes before Nautilus's own RiskEngine.

Mechanism. Every path that submits an order in Nautilus 1.231 ends in a message-bus send to
the endpoint ``RiskEngine.execute``: ``Strategy.submit_order`` / ``submit_order_list`` (through
the strategy's OrderManager), child orders spawned by an ``ExecAlgorithm``
(``ExecAlgorithm._send_risk_command``) and orders released by the ``OrderEmulator``. The gate
takes over that endpoint: ``install_risk_layer(kernel)`` deregisters the RiskEngine's handler
and registers the gate's, which judges each SubmitOrder / SubmitOrderList against the rules in
``risk/rules.py`` and forwards approved commands (and every cancel/modify) to the real
``RiskEngine.execute``. A refused order is denied exactly as the RiskEngine denies one (an
``OrderDenied`` event to ``ExecEngine.process``), with a reason naming the rule and the numbers,
so the strategy sees the usual ``on_order_denied``.

Why not the alternatives: a Strategy base class only catches strategies that inherit from it
and misses execution-algorithm children and emulator releases; an ExecAlgorithm only sees
orders that name it. Intercepting the endpoint catches everything, in the BacktestEngine and
the live TradingNode alike (both build the same kernel), and needs no change to any strategy.
The RiskEngine itself stays behind the gate as the second line (max notional per order,
submit rate, trading state).

Nautilus keeps the RiskEngine private to the kernel, so the gate is installed explicitly once
the node is built; a gate that was never installed refuses to start rather than let orders
bypass it. The gate is also the only holder of the RiskEngine: other actors change the trading
state by sending a ``RiskControl`` to ``CONTROL_ENDPOINT``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections import deque
from decimal import Decimal
from typing import Any

import pandas as pd
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.component import TestClock
from nautilus_trader.config import ActorConfig
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.execution.messages import SubmitOrderList
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.enums import TradingState
from nautilus_trader.model.events import OrderCanceled
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderRejected
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import TradeId
from nautilus_trader.model.orders import Order

from config.risk import RiskConfig
from risk.day_trades import DayTradeCounter
from risk.messages import CONTROL_ENDPOINT
from risk.messages import ControlAction
from risk.messages import RiskControl
from risk.rules import GateContext
from risk.rules import OrderIntent
from risk.rules import Refusal
from risk.rules import build_rules
from risk.rules import evaluate
from risk.sizing import stop_distance
from risk.sizing import stop_from_tags
from strategies.account import account_equity
from strategies.records import ExitReason
from strategies.records import exit_tag
from strategies.sessions import ny_date

RISK_ENGINE_ENDPOINT = "RiskEngine.execute"
EXIT_TAG = "risk-exit"
# Why a halt's exits sell, by the halt's source; any other source (the error monitor, say) is
# a risk halt. An operator's flatten or stop is manual.
_HALT_EXIT_REASONS = {"kill_switch": ExitReason.KILL_SWITCH, "operator": ExitReason.MANUAL}
STOP_TYPES = (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
STATE_NAMES = {
    TradingState.ACTIVE: "ACTIVE",
    TradingState.HALTED: "HALTED",
    TradingState.REDUCING: "REDUCING",
}


def halt_exit_reason(source: str) -> ExitReason:
    """The exit reason the gate tags a halt's closing orders with."""
    return _HALT_EXIT_REASONS.get(source, ExitReason.RISK_HALT)


class GateNotInstalledError(RuntimeError):
    """The gate was configured but never put in front of the RiskEngine."""


class PreTradeGateConfig(ActorConfig, frozen=True):
    """
    risk: the limits and the list of rules.
    bar_types: the bars the gate watches for last prices and average volume (one per traded
        instrument; minute bars in backtests and live).
    window_on_data_time: judge the trading window on the time of the latest bar or quote of
        `bar_types` instead of the clock: a live replay's clock is the wall clock while its
        data (and its sessions) are historical.
    """

    risk: RiskConfig = RiskConfig()
    bar_types: list[BarType] = []
    window_on_data_time: bool = False


class PreTradeGate(Actor):
    def __init__(self, config: PreTradeGateConfig) -> None:
        super().__init__(config)
        self.risk = config.risk
        self.rules = build_rules(config.risk.rules)
        self._risk_engine: Any = None
        self._trader: Any = None
        # The recent bars per instrument, kept as they came: their close and volume are read
        # as Decimals only when an order is judged, not on every bar.
        self._bars: dict[InstrumentId, deque[Bar]] = defaultdict(
            lambda: deque(maxlen=config.risk.volume_lookback_bars),
        )
        self._stops: dict[InstrumentId, Decimal] = {}
        self.day_trades = DayTradeCounter()
        self.halt_reason = ""
        self._exit_pending = False
        self._exit_reason = ExitReason.RISK_HALT  # why the pending exits sell (the halt's source)
        self._holds: dict[str, tuple[ControlAction, str]] = {}
        self._pauses: dict[str, tuple[int, str]] = {}  # instrument -> (until_ns, reason)
        self._paused_strategies: dict[str, str] = {}  # strategy id -> who paused it and why
        # Recent refusals and state changes, newest last: what the dashboard will show.
        self.refusals: deque[tuple[int, str, Refusal]] = deque(maxlen=1000)
        self.controls: list[tuple[int, RiskControl]] = []

    # -- installation ---------------------------------------------------------------------------

    def attach(self, risk_engine: Any, trader: Any) -> None:
        """Take over the RiskEngine.execute endpoint; approved commands go on to `risk_engine`."""
        if self._risk_engine is not None:
            raise RuntimeError("PreTradeGate is already installed")
        self.msgbus.deregister(RISK_ENGINE_ENDPOINT, risk_engine.execute)
        self.msgbus.register(RISK_ENGINE_ENDPOINT, self.execute)
        self.msgbus.register(CONTROL_ENDPOINT, self.control)
        self._risk_engine = risk_engine
        self._trader = trader

    @property
    def installed(self) -> bool:
        return self._risk_engine is not None

    @property
    def trading_state(self) -> str:
        return STATE_NAMES[self._risk_engine.trading_state]

    # -- lifecycle ------------------------------------------------------------------------------

    def on_start(self) -> None:
        if not self.installed:
            raise GateNotInstalledError(
                "PreTradeGate is configured but not installed in front of the RiskEngine; call "
                "actors.pre_trade_gate.install_risk_layer(kernel) after the node is built",
            )
        for bar_type in self.config.bar_types:
            self.subscribe_bars(bar_type)
        # Live, the cache is restored from its database at start: the day trades of the
        # window survive a restart.
        self.day_trades = day_trades_from_orders(self.cache.orders())
        self.msgbus.subscribe("events.order.*", self._on_order_event)

    def on_stop(self) -> None:
        # Nothing to release: orders sent while the node stops still pass through the gate
        # (its endpoint stays registered), and its state is read for the run's summary.
        return

    def on_bar(self, bar: Bar) -> None:
        self._bars[bar.bar_type.instrument_id].append(bar)
        self._note_last_trade(bar)

    def _note_last_trade(self, bar: Bar) -> None:
        # Nautilus's RiskEngine prices a market order from the cache's last quote or trade
        # tick, never from a bar: on bars alone it skips its notional and balance checks for
        # every market order ("Cannot check MARKET order risk: no prices"), so the second line
        # would not hold. The bar's close as the last trade gives it the price the gate judges
        # by. A bar of no volume changes no price (a trade tick needs a positive size).
        if bar.volume.raw == 0:
            return
        instrument_id = bar.bar_type.instrument_id
        self.cache.add_trade_tick(TradeTick(
            instrument_id, bar.close, bar.volume, AggressorSide.NO_AGGRESSOR,
            TradeId(f"BAR-{bar.ts_event}"), bar.ts_event, bar.ts_init,
        ))

    def _on_order_event(self, event: Any) -> None:
        if isinstance(event, OrderFilled):
            self.day_trades.record_fill(
                symbol=str(event.instrument_id),
                side="BUY" if event.order_side == OrderSide.BUY else "SELL",
                session_date=ny_date(event.ts_event),
                order_id=event.client_order_id.value,
            )
            if self.portfolio.is_flat(event.instrument_id):
                self._stops.pop(event.instrument_id, None)
        if self._exit_pending and isinstance(event, (OrderFilled, OrderCanceled, OrderRejected)):
            self._continue_exit()

    # -- the gate ---------------------------------------------------------------------------------

    def execute(self, command: Any) -> None:
        if isinstance(command, SubmitOrder):
            refusal = self._judge(command.order, stop_price=None)
            if refusal is not None:
                self._deny(command.order, refusal)
                return
        elif isinstance(command, SubmitOrderList):
            refusal = self._judge_list(command.order_list.orders)
            if refusal is not None:
                for order in command.order_list.orders:
                    self._deny(order, refusal)
                return
        self._risk_engine.execute(command)

    def _judge_list(self, orders: list[Order]) -> Refusal | None:
        """A bracket's entry is judged with its stop-loss child as the stop; children are exits."""
        entries = [o for o in orders if o.parent_order_id is None]
        for entry in entries:
            stop = next(
                (child.trigger_price.as_decimal() for child in orders
                 if child.parent_order_id == entry.client_order_id and child.order_type in STOP_TYPES),
                None,
            )
            refusal = self._judge(entry, stop_price=stop)
            if refusal is not None:
                return refusal
        return None

    def _judge(self, order: Order, stop_price: Decimal | None) -> Refusal | None:
        try:
            intent = self._intent(order, stop_price)
        except ValueError as exc:
            return Refusal("order_terms", str(exc))
        if intent is None:
            return Refusal("order_terms", f"no market price known for {order.instrument_id}")
        paused = self._paused_strategies.get(order.strategy_id.value)
        if paused is not None and not intent.reduces:
            return Refusal("strategy_paused", f"{order.strategy_id} is paused ({paused}); only exits pass")
        context = self.context(order.instrument_id)
        refusal = evaluate(self.rules, intent, context, self.risk)
        if refusal is None and not intent.reduces and intent.stop_price is not None:
            self._stops[order.instrument_id] = intent.stop_price
        return refusal

    def _intent(self, order: Order, stop_price: Decimal | None) -> OrderIntent | None:
        price = self._order_price(order)
        if price is None:
            return None
        side = "BUY" if order.side == OrderSide.BUY else "SELL"
        quantity = order.quantity.as_decimal()
        net = self.portfolio.net_position(order.instrument_id)
        net = Decimal(str(net)) if net is not None else Decimal(0)
        reduces = (side == "SELL" and 0 < quantity <= net) or (side == "BUY" and 0 < quantity <= -net)
        if stop_price is None:
            stop_price = stop_from_tags(order.tags)
        return OrderIntent(
            symbol=str(order.instrument_id),
            side=side,
            quantity=quantity,
            price=price,
            stop_price=stop_price,
            reduces=reduces,
        )

    def _order_price(self, order: Order) -> Decimal | None:
        if order.has_price:
            return order.price.as_decimal()
        if order.order_type in STOP_TYPES:
            return order.trigger_price.as_decimal()
        return self.last_price(order.instrument_id)

    def last_price(self, instrument_id: InstrumentId) -> Decimal | None:
        quote = self.cache.quote_tick(instrument_id)
        if quote is not None and quote.bid_price.as_decimal() > 0 and quote.ask_price.as_decimal() > 0:
            return (quote.bid_price.as_decimal() + quote.ask_price.as_decimal()) / 2
        bars = self._bars.get(instrument_id)
        return bars[-1].close.as_decimal() if bars else None

    def context(self, instrument_id: InstrumentId) -> GateContext:
        """The figures an order on `instrument_id` is judged against, as of now."""
        equity = self._equity(instrument_id)
        values: dict[str, Decimal] = defaultdict(Decimal)
        open_risk = Decimal(0)
        for position in self.cache.positions_open():
            price = self.last_price(position.instrument_id) or position.avg_px_open
            price = Decimal(str(price))
            qty = position.quantity.as_decimal()
            values[str(position.instrument_id)] += qty * price
            stop = self._stops.get(position.instrument_id)
            open_risk += qty * stop_distance(price, stop, self.risk)
        for working in self.cache.orders_open():
            if working.is_reduce_only or EXIT_TAG in (working.tags or []):
                continue
            price = self._order_price(working)
            if price is not None:
                stop = stop_from_tags(working.tags)
                open_risk += working.leaves_qty.as_decimal() * stop_distance(price, stop, self.risk)
        quote = self.cache.quote_tick(instrument_id)
        bars = self._bars.get(instrument_id)
        avg_volume = sum((b.volume.as_decimal() for b in bars), Decimal(0)) / len(bars) if bars else None
        now_ns = self.clock.timestamp_ns()
        return GateContext(
            equity=equity,
            position_values=dict(values),
            open_risk=open_risk,
            bid=quote.bid_price.as_decimal() if quote is not None else None,
            ask=quote.ask_price.as_decimal() if quote is not None else None,
            has_quote=quote is not None,
            avg_volume=avg_volume,
            volume_bars=len(bars) if bars else 0,
            day_trades=self.day_trades.count(ny_date(now_ns), self.risk.pdt_window_sessions),
            trading_state=self._state_for(str(instrument_id), now_ns),
            halt_reason=self._reason_for(str(instrument_id), now_ns),
            is_live=not isinstance(self.clock, TestClock),
            now_ns=self.data_ns() if self.config.window_on_data_time else now_ns,
        )

    def data_ns(self) -> int | None:
        """The time of the latest bar or quote of the watched instruments; None before any."""
        stamps = []
        for bar_type in self.config.bar_types:
            bar = self.cache.bar(bar_type)
            quote = self.cache.quote_tick(bar_type.instrument_id)
            stamps += [data.ts_event for data in (bar, quote) if data is not None]
        return max(stamps, default=None)

    def _state_for(self, instrument: str, now_ns: int) -> str:
        state = self.effective_state
        if state == "ACTIVE" and self._pauses.get(instrument, (0, ""))[0] > now_ns:
            return "PAUSED"
        return state

    def _reason_for(self, instrument: str, now_ns: int) -> str:
        until, reason = self._pauses.get(instrument, (0, ""))
        if self.effective_state == "ACTIVE" and until > now_ns:
            return f"{reason}, until {pd.Timestamp(until, tz='UTC').isoformat()}"
        return self.halt_reason

    def _equity(self, instrument_id: InstrumentId) -> Decimal:
        return account_equity(self.portfolio, self.cache, instrument_id.venue)

    def _deny(self, order: Order, refusal: Refusal) -> None:
        """Deny as the RiskEngine does: the order goes to the cache and OrderDenied is emitted."""
        self.refusals.append((self.clock.timestamp_ns(), order.client_order_id.value, refusal))
        self.log.warning(f"PreTradeGate DENIED {order.client_order_id} ({order}): {refusal}")
        if not self.cache.order_exists(order.client_order_id):
            self.cache.add_order(order)
        denied = OrderDenied(
            trader_id=order.trader_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            reason=f"PreTradeGate {refusal}",
            event_id=UUID4(),
            ts_init=self.clock.timestamp_ns(),
        )
        self.msgbus.send(endpoint="ExecEngine.process", msg=denied)

    # -- trading-state control --------------------------------------------------------------------

    def control(self, command: RiskControl) -> None:
        """
        Apply a halt, reduce-only, pause or resume asked for by the kill switch, the watchdog or
        the error monitor. Each source holds its own restriction and lifts only its own, so the
        watchdog seeing the broker back cannot undo a kill-switch halt; the engine's state is
        the strictest hold (HALT over REDUCE over none).
        """
        now = self.clock.timestamp_ns()
        self.controls.append((now, command))
        if command.action == ControlAction.PAUSE:
            self._pauses[command.instrument_id] = (command.until_ns, f"{command.source}: {command.reason}")
            return
        if command.action == ControlAction.PAUSE_STRATEGY:
            self._paused_strategies[command.strategy_id] = f"{command.source}: {command.reason}"
            return
        if command.action == ControlAction.RESUME_STRATEGY:
            self._paused_strategies.pop(command.strategy_id, None)
            return
        if command.action == ControlAction.RESUME:
            self._holds.pop(command.source, None)
        elif command.action == ControlAction.REDUCE:
            if self._holds.get(command.source, (None,))[0] != ControlAction.HALT:
                self._holds[command.source] = (ControlAction.REDUCE, command.reason)
        elif command.action == ControlAction.HALT:
            self._holds[command.source] = (ControlAction.HALT, command.reason)
            if command.cancel_orders:
                self.cancel_all_orders()
            if command.exit_positions and self.cache.positions_open():
                # Nautilus's HALTED refuses exits too, so while the exits work the engine is
                # REDUCING (and this gate refuses everything else as halted); HALTED follows
                # once the book is flat. A fill from an order already in flight when the halt
                # came is closed as it arrives.
                self._exit_pending = True
                self._exit_reason = halt_exit_reason(command.source)
                self._apply_state(command)
                self.close_all_positions(self._exit_reason)
                return
        self._apply_state(command)

    def _apply_state(self, command: RiskControl) -> None:
        kinds = {kind for kind, _ in self._holds.values()}
        if ControlAction.HALT in kinds:
            state = TradingState.REDUCING if self._exit_pending else TradingState.HALTED
        elif ControlAction.REDUCE in kinds:
            state = TradingState.REDUCING
        else:
            state = TradingState.ACTIVE
            self._exit_pending = False
        self.halt_reason = "; ".join(f"{source}: {reason}" for source, (_, reason) in self._holds.items())
        if self._risk_engine.trading_state != state:
            self.log.warning(f"Trading state -> {STATE_NAMES[state]} ({command.source}: {command.reason})")
            self._risk_engine.set_trading_state(state)

    @property
    def effective_state(self) -> str:
        """HALTED while any halt holds (also while its exits work), else the engine's state."""
        if any(kind == ControlAction.HALT for kind, _ in self._holds.values()):
            return "HALTED"
        return self.trading_state

    def _continue_exit(self) -> None:
        """While a halt waits for its exits: close what is left, then halt once flat."""
        if not self.cache.positions_open():
            self._exit_pending = False
            self._apply_state(RiskControl(ControlAction.HALT, "positions closed", "pre_trade_gate"))
            return
        working = self.cache.orders_open() + self.cache.orders_inflight()
        exiting = {o.instrument_id for o in working if EXIT_TAG in (o.tags or [])}
        for strategy in self._trader.strategies():
            for position in self.cache.positions_open(strategy_id=strategy.id):
                if position.instrument_id not in exiting:
                    strategy.close_position(position, tags=[EXIT_TAG, exit_tag(self._exit_reason)])

    def snapshot(self) -> dict[str, Any]:
        """The gate's state as plain values (for the dashboard)."""
        return {
            "trading_state": self.effective_state,
            "engine_trading_state": self.trading_state,
            "holds": {source: {"action": kind.value, "reason": reason} for source, (kind, reason) in self._holds.items()},
            "paused": {
                instrument: {"until": pd.Timestamp(until, tz="UTC").isoformat(), "reason": reason}
                for instrument, (until, reason) in self._pauses.items()
                if until > self.clock.timestamp_ns()
            },
            "paused_strategies": dict(self._paused_strategies),
            "recent_refusals": [
                {"ts": pd.Timestamp(ts, tz="UTC").isoformat(), "order": order_id, "rule": r.rule, "reason": r.reason}
                for ts, order_id, r in list(self.refusals)[-50:]
            ],
        }

    def cancel_all_orders(self) -> int:
        cancelled = 0
        for strategy in self._trader.strategies():
            instruments = {o.instrument_id for o in self.cache.orders_open(strategy_id=strategy.id)}
            for instrument_id in sorted(instruments, key=str):
                cancelled += len(self.cache.orders_open(instrument_id=instrument_id, strategy_id=strategy.id))
                strategy.cancel_all_orders(instrument_id)
        return cancelled

    def close_all_positions(self, reason: ExitReason) -> int:
        closed = 0
        for strategy in self._trader.strategies():
            for position in self.cache.positions_open(strategy_id=strategy.id):
                strategy.close_position(position, tags=[EXIT_TAG, exit_tag(reason)])
                closed += 1
        return closed


def day_trades_from_orders(orders: list[Order]) -> DayTradeCounter:
    """A day-trade counter rebuilt from the fills of orders (oldest first)."""
    fills = sorted(
        (event for order in orders for event in order.events if isinstance(event, OrderFilled)),
        key=lambda fill: fill.ts_event,
    )
    counter = DayTradeCounter()
    for fill in fills:
        counter.record_fill(
            symbol=str(fill.instrument_id),
            side="BUY" if fill.order_side == OrderSide.BUY else "SELL",
            session_date=ny_date(fill.ts_event),
            order_id=fill.client_order_id.value,
        )
    return counter


def install_risk_layer(kernel: Any) -> PreTradeGate:
    """
    Put the configured PreTradeGate in front of the kernel's RiskEngine (once, after the node
    is built and before it runs), and give a Watchdog its connectivity probes.
    """
    from actors.broker_link import engine_link_up
    from actors.watchdog import Watchdog

    actors = kernel.trader.actors()
    gates = [a for a in actors if isinstance(a, PreTradeGate)]
    if len(gates) != 1:
        raise GateNotInstalledError(f"expected exactly one PreTradeGate actor, found {len(gates)}")
    gates[0].attach(kernel.risk_engine, kernel.trader)
    for watchdog in (a for a in actors if isinstance(a, Watchdog)):
        # The real link, not only the clients' connected flags (see actors/broker_link.py).
        watchdog.set_probes(broker=lambda: engine_link_up(kernel.exec_engine),
                            data=lambda: engine_link_up(kernel.data_engine))
    return gates[0]
