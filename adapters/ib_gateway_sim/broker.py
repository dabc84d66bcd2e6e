"""
The simulated broker: orders, the matching engine, executions, commissions, positions, cash.

Everything is Decimal. Orders fill against the replayed quote (buys at the ask, sells at the
bid); limit orders fill when the quote crosses their price, stop orders trigger when it touches
theirs and then behave as market (STP) or limit (STP LMT) orders. Outside NYSE's regular
session an order waits unless it was sent with outsideRth (market orders always wait, as at
IB). Commission is IB's fixed US-stock rate: $0.005 a share, at least $1.00, at most 1% of the
trade value.

The broker returns events; the gateway decides which client sessions they go to.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from decimal import ROUND_HALF_UP
from decimal import Decimal

import pandas as pd

from adapters.ib_gateway_sim.market import EXCHANGE_TZ
from adapters.ib_gateway_sim.market import Market
from adapters.ib_gateway_sim.market import Quote
from adapters.ib_gateway_sim.market import in_regular_hours
from adapters.ib_gateway_sim.messages import ContractSpec
from adapters.ib_gateway_sim.messages import ExecutionView
from adapters.ib_gateway_sim.messages import OrderView

ORDER_TYPES = ("MKT", "LMT", "STP", "STP LMT")
TIFS = ("DAY", "GTC", "IOC")
COMMISSION_PER_SHARE = Decimal("0.005")
COMMISSION_MIN = Decimal("1.00")
COMMISSION_MAX_RATE = Decimal("0.01")
CENT = Decimal("0.01")


def ib_commission(shares: Decimal, price: Decimal) -> Decimal:
    fee = max(COMMISSION_MIN, shares * COMMISSION_PER_SHARE)
    fee = min(fee, shares * price * COMMISSION_MAX_RATE)
    return fee.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class OrderRequest:
    """What a placeOrder message asks for (the fields the simulator acts on)."""

    order_id: int
    client_id: int
    spec: ContractSpec
    action: str
    quantity: Decimal
    order_type: str
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    outside_rth: bool
    account: str
    order_ref: str
    oca_group: str
    parent_id: int
    transmit: bool
    good_till_date: str = ""


@dataclass
class FillPlan:
    """How the next order fills: split into parts, each part after a wall-clock wait."""

    parts: list[Decimal] | None = None  # quantities, in order; the rest fills with the last
    delay_seconds: float = 0.0
    part_interval_seconds: float = 0.0


@dataclass
class SimOrder:
    request: OrderRequest
    perm_id: int
    status: str = "PreSubmitted"
    filled: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)  # sum of fill price * shares, for the average
    last_fill_price: Decimal = Decimal(0)
    triggered: bool = False
    held: bool = False  # sent with transmit=False: waits for the rest of its bracket
    plan: FillPlan = field(default_factory=FillPlan)
    not_before_wall: float = 0.0

    @property
    def remaining(self) -> Decimal:
        return self.request.quantity - self.filled

    @property
    def is_open(self) -> bool:
        return self.status in ("PreSubmitted", "Submitted", "PendingSubmit")

    @property
    def avg_price(self) -> Decimal:
        return self.cost / self.filled if self.filled else Decimal(0)

    def view(self) -> OrderView:
        r = self.request
        return OrderView(
            order_id=r.order_id,
            client_id=r.client_id,
            perm_id=self.perm_id,
            spec=r.spec,
            action=r.action,
            total_quantity=r.quantity,
            order_type=r.order_type,
            lmt_price=r.lmt_price,
            aux_price=r.aux_price,
            tif=r.tif,
            oca_group=r.oca_group,
            account=r.account,
            order_ref=r.order_ref,
            outside_rth=r.outside_rth,
            parent_id=r.parent_id,
            status=self.status,
            filled=self.filled,
            remaining=self.remaining,
            avg_fill_price=self.avg_price,
            last_fill_price=self.last_fill_price,
            exchange=r.spec.routing_exchange,
            good_till_date=r.good_till_date,
        )


@dataclass
class Position:
    quantity: Decimal = Decimal(0)
    avg_cost: Decimal = Decimal(0)  # per share, commissions excluded
    realized_pnl: Decimal = Decimal(0)


@dataclass(frozen=True)
class OrderUpdate:
    order: OrderView


@dataclass(frozen=True)
class Execution:
    execution: ExecutionView


@dataclass(frozen=True)
class OrderError:
    order_id: int
    client_id: int
    code: int
    text: str


Event = OrderUpdate | Execution | OrderError


class Broker:
    """Orders, fills and the account of one simulated IB login."""

    def __init__(
        self, market: Market, account: str, starting_cash: Decimal, wire_offset_ns: int = 0
    ) -> None:
        self.market = market
        # added to replay time in what clients see (execution times): see market.as_now_offset
        self.wire_offset_ns = wire_offset_ns
        self.account = account
        self.starting_cash = starting_cash
        self.cash = starting_cash
        self.orders: dict[int, SimOrder] = {}
        self.executions: list[ExecutionView] = []
        self.positions: dict[str, Position] = {}
        self._perm_ids = itertools.count(1_000_001)
        self._exec_seq = itertools.count(1)
        self._next_plan: FillPlan | None = None
        self._next_rejection: str | None = None
        self.rejections: list[OrderError] = []  # every order or modification refused, in order

    # -- faults scripted from outside ----------------------------------------------------------

    def reject_next_order(self, reason: str) -> None:
        self._next_rejection = reason

    def plan_next_fill(self, plan: FillPlan) -> None:
        self._next_plan = plan

    # -- requests ------------------------------------------------------------------------------

    def max_order_id(self) -> int:
        return max(self.orders, default=0)

    def place(self, request: OrderRequest, now_ns: int) -> list[Event]:
        existing = self.orders.get(request.order_id)
        if existing is not None:
            return self._modify(existing, request, now_ns)
        problem = self._validate(request)
        if problem is None and self._next_rejection is not None:
            problem, self._next_rejection = self._next_rejection, None
        if problem is not None:
            error = OrderError(
                request.order_id, request.client_id, 201, f"Order rejected - reason:{problem}"
            )
            self.rejections.append(error)
            return [error]
        order = SimOrder(request, next(self._perm_ids))
        if self._next_plan is not None:
            order.plan, self._next_plan = self._next_plan, None
            order.not_before_wall = time.monotonic() + order.plan.delay_seconds
        self.orders[request.order_id] = order
        order.held = not request.transmit
        if request.transmit:
            self._release_bracket(request)
        order.status = "Submitted" if self._may_trade(order, now_ns) else "PreSubmitted"
        events: list[Event] = [OrderUpdate(order.view())]
        return events + self.match(request.spec.symbol, now_ns)

    def _release_bracket(self, request: OrderRequest) -> None:
        """The transmitting order of a bracket releases its parent and held siblings."""
        root = request.parent_id
        if not root:
            return
        for order in self.orders.values():
            r = order.request
            if order.held and (r.order_id == root or r.parent_id == root):
                order.held = False

    def _modify(self, order: SimOrder, request: OrderRequest, now_ns: int) -> list[Event]:
        if order.status == "Filled":
            return [
                OrderError(request.order_id, request.client_id, 104, "Can't modify a filled order.")
            ]
        if not order.is_open:
            # an id that already named an order: IB refuses to reuse it
            return [OrderError(request.order_id, request.client_id, 103, "Duplicate order id")]
        problem = self._validate(request)
        if problem is not None:
            error = OrderError(
                request.order_id, request.client_id, 201, f"Order rejected - reason:{problem}"
            )
            self.rejections.append(error)
            return [error]
        if request.quantity < order.filled:
            return [
                OrderError(
                    request.order_id,
                    request.client_id,
                    201,
                    "Order rejected - reason:quantity below filled",
                )
            ]
        order.request = replace(request, client_id=order.request.client_id)
        order.status = "Submitted" if self._may_trade(order, now_ns) else "PreSubmitted"
        return [OrderUpdate(order.view())] + self.match(request.spec.symbol, now_ns)

    def cancel(self, order_id: int, client_id: int) -> list[Event]:
        order = self.orders.get(order_id)
        if order is None:
            return [OrderError(order_id, client_id, 135, f"Can't find order with id ={order_id}")]
        if not order.is_open:
            return [
                OrderError(
                    order_id,
                    client_id,
                    161,
                    f"Cancel attempted when order is not in a cancellable state.  Order permId ={order.perm_id}",
                )
            ]
        order.status = "Cancelled"
        events: list[Event] = [
            OrderUpdate(order.view()),
            OrderError(order_id, order.request.client_id, 202, "Order Canceled - reason:"),
        ]
        for child in list(self.orders.values()):
            if child.request.parent_id == order_id and child.is_open:
                events += self.cancel(child.request.order_id, child.request.client_id)
        return events

    def cancel_all(self) -> list[Event]:
        events: list[Event] = []
        for order in list(self.orders.values()):
            if order.is_open:
                events += self.cancel(order.request.order_id, order.request.client_id)
        return events

    def _validate(self, r: OrderRequest) -> str | None:
        if r.spec.sec_type != "STK":
            return f"{r.spec.symbol} is an index and cannot be traded"
        if r.action not in ("BUY", "SELL"):
            return f"action must be BUY or SELL, got {r.action!r}"
        if r.quantity <= 0 or r.quantity != r.quantity.to_integral():
            return f"totalQuantity must be a positive whole number of shares, got {r.quantity}"
        if r.order_type not in ORDER_TYPES:
            return f"order type {r.order_type!r} is not supported (supported: {', '.join(ORDER_TYPES)})"
        if r.order_type in ("LMT", "STP LMT") and (r.lmt_price is None or r.lmt_price <= 0):
            return f"{r.order_type} order needs a positive lmtPrice"
        if r.order_type in ("STP", "STP LMT") and (r.aux_price is None or r.aux_price <= 0):
            return f"{r.order_type} order needs a positive auxPrice (stop price)"
        if r.tif not in TIFS and r.tif != "":
            return f"time in force {r.tif!r} is not supported (supported: {', '.join(TIFS)})"
        for price in (r.lmt_price, r.aux_price):
            if price is not None and price != price.quantize(r.spec.min_tick):
                return f"price {price} does not conform to the minimum price variation {r.spec.min_tick}"
        return None

    def _may_trade(self, order: SimOrder, now_ns: int) -> bool:
        if order.held:
            return False
        parent = self.orders.get(order.request.parent_id) if order.request.parent_id else None
        if order.request.parent_id and (parent is None or parent.status != "Filled"):
            return False  # a bracket child works only once its parent has filled
        if in_regular_hours(now_ns):
            return True
        return order.request.outside_rth and order.request.order_type != "MKT"

    # -- matching ------------------------------------------------------------------------------

    def match(self, symbol: str, now_ns: int) -> list[Event]:
        """Fill whatever the current quote allows for this symbol's open orders."""
        quote = self.market.quote(symbol, now_ns)
        events: list[Event] = []
        for order in list(self.orders.values()):
            if not order.is_open or order.request.spec.symbol != symbol:
                continue
            may_trade = self._may_trade(order, now_ns)
            if order.status == "PreSubmitted" and may_trade:
                order.status = "Submitted"
                events.append(OrderUpdate(order.view()))
            if quote is None or not may_trade or time.monotonic() < order.not_before_wall:
                continue
            price = self._fill_price(order, quote)
            if price is None:
                continue
            shares = order.remaining
            if order.plan.parts:
                shares = min(order.plan.parts.pop(0), order.remaining)
                order.not_before_wall = time.monotonic() + order.plan.part_interval_seconds
            events += self._fill(order, shares, price, now_ns)
            if order.status == "Filled":
                events += self._cancel_one_cancels_all(order)
        return events

    def _cancel_one_cancels_all(self, filled: SimOrder) -> list[Event]:
        """Bracket children are one-cancels-all among themselves, as is an explicit OCA group."""
        r = filled.request
        events: list[Event] = []
        for other in list(self.orders.values()):
            o = other.request
            if other is filled or not other.is_open:
                continue
            siblings = bool(r.parent_id) and o.parent_id == r.parent_id
            same_group = bool(r.oca_group) and o.oca_group == r.oca_group
            if siblings or same_group:
                events += self.cancel(o.order_id, o.client_id)
        return events

    def _fill_price(self, order: SimOrder, quote: Quote) -> Decimal | None:
        r = order.request
        buy = r.action == "BUY"
        touch = quote.ask if buy else quote.bid
        if touch <= 0:
            return None
        if r.order_type in ("STP", "STP LMT") and not order.triggered:
            assert r.aux_price is not None
            if (buy and quote.ask >= r.aux_price) or (not buy and quote.bid <= r.aux_price):
                order.triggered = True
            else:
                return None
        if r.order_type in ("MKT", "STP"):
            return touch
        assert r.lmt_price is not None
        if buy and touch <= r.lmt_price:
            return touch
        if not buy and touch >= r.lmt_price:
            return touch
        return None

    def _fill(self, order: SimOrder, shares: Decimal, price: Decimal, now_ns: int) -> list[Event]:
        r = order.request
        order.filled += shares
        order.cost += shares * price
        order.last_fill_price = price
        if order.remaining == 0:
            order.status = "Filled"
        commission = ib_commission(shares, price)
        realized = self._book(r.spec.symbol, r.action, shares, price, commission)
        seq = next(self._exec_seq)
        local = pd.Timestamp(now_ns + self.wire_offset_ns, tz="UTC").tz_convert(EXCHANGE_TZ)
        execution = ExecutionView(
            exec_id=f"0000e1a7.{seq:08x}.01.01",
            order_id=r.order_id,
            client_id=r.client_id,
            perm_id=order.perm_id,
            spec=r.spec,
            time=local.strftime("%Y%m%d %H:%M:%S ") + EXCHANGE_TZ,
            account=r.account or self.account,
            exchange=r.spec.primary_exchange,
            side="BOT" if r.action == "BUY" else "SLD",
            shares=shares,
            price=price,
            cum_qty=order.filled,
            avg_price=order.avg_price,
            order_ref=r.order_ref,
            commission=commission,
            realized_pnl=realized,
        )
        self.executions.append(execution)
        return [Execution(execution), OrderUpdate(order.view())]

    def _book(
        self, symbol: str, action: str, shares: Decimal, price: Decimal, commission: Decimal
    ) -> Decimal | None:
        """Update cash and the position; return the realized P&L (net of this commission) when
        the trade closed shares, else None."""
        signed = shares if action == "BUY" else -shares
        self.cash -= signed * price + commission
        pos = self.positions.setdefault(symbol, Position())
        realized: Decimal | None = None
        if pos.quantity == 0 or (pos.quantity > 0) == (signed > 0):
            total = pos.quantity + signed
            pos.avg_cost = (pos.avg_cost * abs(pos.quantity) + price * shares) / abs(total)
            pos.quantity = total
        else:
            closing = min(abs(signed), abs(pos.quantity))
            direction = 1 if pos.quantity > 0 else -1
            realized = (price - pos.avg_cost) * closing * direction - commission
            pos.realized_pnl += realized
            remainder = abs(signed) - closing
            pos.quantity += signed
            if pos.quantity == 0:
                pos.avg_cost = Decimal(0)
            elif remainder:
                pos.avg_cost = price
        return realized

    # -- account -------------------------------------------------------------------------------

    def mark(self, symbol: str, now_ns: int) -> Decimal:
        quote = self.market.quote(symbol, now_ns)
        if quote is not None:
            return quote.mid
        pos = self.positions.get(symbol)
        return pos.avg_cost if pos else Decimal(0)

    def gross_position_value(self, now_ns: int) -> Decimal:
        return sum(
            (abs(p.quantity) * self.mark(s, now_ns) for s, p in self.positions.items()),
            Decimal(0),
        )

    def net_liquidation(self, now_ns: int) -> Decimal:
        return self.cash + sum(
            (p.quantity * self.mark(s, now_ns) for s, p in self.positions.items()),
            Decimal(0),
        )

    def account_values(self, now_ns: int) -> dict[str, Decimal]:
        """The account tags IB reports, for a cash account (no margin)."""
        net = self.net_liquidation(now_ns)
        gross = self.gross_position_value(now_ns)
        available = self.cash
        values = {
            "NetLiquidation": net,
            "TotalCashValue": self.cash,
            "SettledCash": self.cash,
            "AvailableFunds": available,
            "FullAvailableFunds": available,
            "ExcessLiquidity": available,
            "FullExcessLiquidity": available,
            "BuyingPower": available,
            "EquityWithLoanValue": net,
            "GrossPositionValue": gross,
            "InitMarginReq": gross,
            "MaintMarginReq": gross,
            "FullInitMarginReq": gross,
            "FullMaintMarginReq": gross,
        }
        return {k: v.quantize(CENT, rounding=ROUND_HALF_UP) for k, v in values.items()}
