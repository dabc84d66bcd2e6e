"""
A stand-in for the venue and the gate in hand-built backtests: chosen orders end the way a
refusal would end them (denied, rejected, cancelled, expired, or partly filled and then
cancelled) and every other command goes on to the RiskEngine as usual.

It takes over the ``RiskEngine.execute`` endpoint exactly as the pre-trade gate does
(``actors/pre_trade_gate.py``), so strategy orders and execution-algorithm children alike pass
it, and it answers with the events a venue (or the gate) would send to ``ExecEngine.process``:
a denial at once, inside submit_order, as the gate denies; a venue's answer a millisecond
later, as a venue answers (never inside the strategy's submit_order call).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import CancelAllOrders
from nautilus_trader.execution.messages import CancelOrder
from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import LiquiditySide
from nautilus_trader.model.events import OrderAccepted
from nautilus_trader.model.events import OrderCanceled
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderExpired
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import OrderRejected
from nautilus_trader.model.events import OrderSubmitted
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import TradeId
from nautilus_trader.model.identifiers import VenueOrderId
from nautilus_trader.model.objects import Money
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.model.orders import Order

from strategies.records import RISK_TOPIC
from strategies.records import RiskRecord

RISK_ENGINE_ENDPOINT = "RiskEngine.execute"
EXEC_ENGINE_ENDPOINT = "ExecEngine.execute"
OUTCOMES = ("pass", "denied", "rejected", "canceled", "expired", "partial", "rest", "late", "partial-late")
VENUE_LATENCY_NS = 1_000_000


class OrderRefuser(Actor):
    """
    plan: "<SIDE> <ORDER_TYPE>" (e.g. "BUY MARKET") -> the outcomes of the successive orders of
    that kind, in order; "pass" lets one through, "partial:<qty>@<price>" fills qty at price
    and cancels the rest, "rest" accepts the order and leaves it working, never filled,
    until it is cancelled, "late:<qty>@<price>" rests as well but fills when it is cancelled
    (the cancel came too late), "partial-late:<qty>@<price>:<qty>@<price>" fills the first part
    at once and the second when it is cancelled. Orders of a kind whose outcomes are used up pass. It also keeps the
    risk records the strategies publish for the journal (`risk_records`).
    cancel_all_at: when the operator cancels every working order of every strategy.
    """

    def __init__(self, plan: dict[str, list[str]], cancel_all_at: pd.Timestamp | None = None) -> None:
        super().__init__()
        for kind, outcomes in plan.items():
            for outcome in outcomes:
                if outcome.split(":")[0] not in OUTCOMES:
                    raise ValueError(f"{kind}: unknown outcome {outcome!r}")
        self._plan = {kind: list(outcomes) for kind, outcomes in plan.items()}
        self._risk_engine: Any = None
        self._exec_engine: Any = None
        self._trader: Any = None
        self._cancel_all_at = cancel_all_at
        self.refused: list[tuple[str, str]] = []  # (client order id, outcome)
        self.risk_records: list[RiskRecord] = []
        self._resting: dict[ClientOrderId, tuple[VenueOrderId, str]] = {}  # -> (id, outcome)
        self._due: list[object] = []  # venue answers not yet delivered
        self._fills: list[ClientOrderId] = []  # one per fill made here (trade ids are unique)

    def on_start(self) -> None:
        self.msgbus.subscribe(RISK_TOPIC, self.risk_records.append)
        if self._cancel_all_at is not None:
            self.clock.set_time_alert_ns("operator-cancel-all", self._cancel_all_at.value, self._cancel_all)

    def attach(self, kernel: Any) -> None:
        """Take over the RiskEngine's endpoint (orders) and the ExecEngine's (cancels sent there)."""
        self.msgbus.deregister(RISK_ENGINE_ENDPOINT, kernel.risk_engine.execute)
        self.msgbus.register(RISK_ENGINE_ENDPOINT, self.execute)
        self.msgbus.deregister(EXEC_ENGINE_ENDPOINT, kernel.exec_engine.execute)
        self.msgbus.register(EXEC_ENGINE_ENDPOINT, self._execute_at_venue)
        self._risk_engine = kernel.risk_engine
        self._exec_engine = kernel.exec_engine
        self._trader = kernel.trader

    def _execute_at_venue(self, command: Any) -> None:
        """Cancels of the orders resting here are answered here; the rest go to the venue."""
        if isinstance(command, CancelOrder) and command.client_order_id in self._resting:
            self._cancel_resting(command.client_order_id)
            return
        if isinstance(command, CancelAllOrders) and self.refused:
            # The simulated venue would cancel the orders answered here as its own: each order
            # is cancelled where it works instead.
            answered_here = {client_order_id for client_order_id, _ in self.refused}
            for order in self.cache.orders(instrument_id=command.instrument_id, strategy_id=command.strategy_id):
                if order.client_order_id in self._resting:
                    self._cancel_resting(order.client_order_id)
                elif order.client_order_id.value not in answered_here and (order.is_open or order.is_inflight):
                    self._exec_engine.execute(
                        CancelOrder(
                            command.trader_id, command.strategy_id, command.instrument_id,
                            order.client_order_id, order.venue_order_id, UUID4(), self.clock.timestamp_ns(),
                        ),
                    )
            return
        self._exec_engine.execute(command)

    def _cancel_resting(self, client_order_id: ClientOrderId) -> None:
        order = self.cache.order(client_order_id)
        venue_order_id, outcome = self._resting.pop(client_order_id)
        account_id = self.cache.account_for_venue(order.instrument_id.venue).id
        now = self.clock.timestamp_ns() + VENUE_LATENCY_NS
        if outcome.startswith("late:"):
            self._later(self._fill(order, venue_order_id, account_id, outcome, now))
            return
        self._later(OrderCanceled(*self._ids(order), venue_order_id, account_id, UUID4(), now, now))

    def _fill(self, order: Order, venue_order_id: VenueOrderId, account_id: Any, outcome: str, ts: int) -> OrderFilled:
        """The fill an outcome "<kind>:<qty>@<price>" names, commission-free."""
        quantity, price = outcome.split(":")[1].split("@")
        self._fills.append(order.client_order_id)
        return OrderFilled(
            *self._ids(order), venue_order_id, account_id, TradeId(f"T-{order.client_order_id.value}-{len(self._fills)}"),
            None, order.side, order.order_type, Quantity.from_str(quantity), Price.from_str(price),
            USD, Money(Decimal(0), USD), LiquiditySide.TAKER, UUID4(), ts, ts,
        )

    def _cancel_all(self, _event: TimeEvent) -> None:
        """The operator's cancel-all, as the kill switch sends it (PreTradeGate.cancel_all_orders)."""
        for strategy in self._trader.strategies():
            working = {o.instrument_id for o in self.cache.orders(strategy_id=strategy.id) if not o.is_closed}
            for instrument_id in sorted(working, key=str):
                strategy.cancel_all_orders(instrument_id)

    def execute(self, command: Any) -> None:
        if isinstance(command, CancelOrder):
            self._execute_at_venue(command)
            return
        if isinstance(command, SubmitOrder):
            order = command.order
            outcomes = self._plan.get(f"{order.side.name} {order.order_type.name}", [])
            outcome = outcomes.pop(0) if outcomes else "pass"
            if outcome != "pass":
                self.refused.append((order.client_order_id.value, outcome))
                self._answer(order, command, outcome)
                return
        self._risk_engine.execute(command)

    def _answer(self, order: Order, command: SubmitOrder, outcome: str) -> None:
        if not self.cache.order_exists(order.client_order_id):
            self.cache.add_order(order, command.position_id)
        kind = outcome.split(":")[0]
        if kind == "denied":
            self._send(OrderDenied(*self._ids(order), reason="OrderRefuser denied", event_id=UUID4(),
                                   ts_init=self.clock.timestamp_ns()))
            return
        account_id = self.cache.account_for_venue(order.instrument_id.venue).id
        now = self.clock.timestamp_ns()
        self._send(OrderSubmitted(*self._ids(order), account_id, UUID4(), now, now))
        now += VENUE_LATENCY_NS  # when the venue's answers happen
        if kind == "rejected":
            self._later(OrderRejected(*self._ids(order), account_id, "OrderRefuser rejected", UUID4(), now, now))
            return
        venue_order_id = VenueOrderId(f"V-{order.client_order_id.value}")
        self._later(OrderAccepted(*self._ids(order), venue_order_id, account_id, UUID4(), now, now))
        if kind == "partial-late":
            _, now_part, late_part = outcome.split(":")
            self._later(self._fill(order, venue_order_id, account_id, f"partial:{now_part}", now))
            self._resting[order.client_order_id] = (venue_order_id, f"late:{late_part}")
            return
        if kind in ("rest", "late"):
            self._resting[order.client_order_id] = (venue_order_id, outcome)
            return
        if kind == "partial":
            self._later(self._fill(order, venue_order_id, account_id, outcome, now))
        end = OrderExpired if kind == "expired" else OrderCanceled
        self._later(end(*self._ids(order), venue_order_id, account_id, UUID4(), now, now))

    def _later(self, event: object) -> None:
        """Deliver `event` one venue latency from now, after the command's caller returned."""
        if not self._due:
            self.clock.set_time_alert_ns(
                f"refuser-{self.clock.timestamp_ns()}", self.clock.timestamp_ns() + VENUE_LATENCY_NS,
                self._deliver,
            )
        self._due.append(event)

    def _deliver(self, _event: TimeEvent) -> None:
        due, self._due = self._due, []
        for event in due:
            self._send(event)

    @staticmethod
    def _ids(order: Order) -> tuple:
        return order.trader_id, order.strategy_id, order.instrument_id, order.client_order_id

    def _send(self, event: object) -> None:
        self.msgbus.send(endpoint="ExecEngine.process", msg=event)
