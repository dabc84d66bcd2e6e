"""
The gateway: a loopback TCP server that speaks the TWS API to each connected client.

One ``Gateway`` owns the market, the broker and the fault switches; each connection is a
``Session`` that does the handshake, routes the client's messages to handlers, and receives
market data and order events. A single pump task advances the replay clock, matches orders
and streams quotes, trades and bars to the subscriptions.

Every method that changes state runs on the gateway's event loop. Tests drive it from another
thread through ``GatewayThread`` (``gateway_thread.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal

import pandas as pd

from adapters.ib_gateway_sim import messages as m
from adapters.ib_gateway_sim.broker import Broker
from adapters.ib_gateway_sim.broker import Event
from adapters.ib_gateway_sim.broker import Execution
from adapters.ib_gateway_sim.broker import OrderError
from adapters.ib_gateway_sim.broker import OrderRequest
from adapters.ib_gateway_sim.broker import OrderUpdate
from adapters.ib_gateway_sim.history import HistoryRequestError
from adapters.ib_gateway_sim.history import aggregate
from adapters.ib_gateway_sim.history import duration_start
from adapters.ib_gateway_sim.history import ib_datetime
from adapters.ib_gateway_sim.history import parse_end
from adapters.ib_gateway_sim.market import EXCHANGE_TZ
from adapters.ib_gateway_sim.market import NS
from adapters.ib_gateway_sim.market import Market
from adapters.ib_gateway_sim.market import Quote
from adapters.ib_gateway_sim.market import ReplayClock
from adapters.ib_gateway_sim.market import Tape
from adapters.ib_gateway_sim.market import _regular_session
from adapters.ib_gateway_sim.messages import ContractSpec
from adapters.ib_gateway_sim.messages import In
from adapters.ib_gateway_sim.messages import TickType
from adapters.ib_gateway_sim.protocol import HANDSHAKE_PREFIX
from adapters.ib_gateway_sim.protocol import SERVER_VERSION
from adapters.ib_gateway_sim.protocol import Field
from adapters.ib_gateway_sim.protocol import FieldReader
from adapters.ib_gateway_sim.protocol import FrameBuffer
from adapters.ib_gateway_sim.protocol import ProtocolError
from adapters.ib_gateway_sim.protocol import encode_message
from adapters.ib_gateway_sim.protocol import negotiate
from adapters.ib_gateway_sim.protocol import parse_hello
from adapters.ib_gateway_sim.protocol import split_fields

log = logging.getLogger("ib_gateway_sim")

LOOPBACK = "127.0.0.1"
NO_VALID_ID = -1
FARM_OK_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
REAL_TIME_BAR_NS = 5 * NS


@dataclass(frozen=True)
class GatewayConfig:
    account: str = "DU1234567"
    starting_cash: Decimal = Decimal("100000")
    pump_interval_seconds: float = 0.02
    server_version: int = SERVER_VERSION
    # Added to replay time in every timestamp clients see and taken off the ones they send:
    # market.as_now_offset presents the replay as happening now to a node on wall time.
    wire_offset_ns: int = 0

    def __post_init__(self) -> None:
        if self.starting_cash <= 0:
            raise ValueError(f"starting_cash must be positive, got {self.starting_cash}")
        if self.pump_interval_seconds <= 0:
            raise ValueError(
                f"pump_interval_seconds must be positive, got {self.pump_interval_seconds}"
            )


@dataclass
class Subscription:
    """One streaming request of a session."""

    kind: str  # mkt, bidask, last, midpoint, rtbars, keepup
    spec: ContractSpec
    last_quote: Quote | None = None
    last_ns: int = 0  # bars/trades already sent up to here
    bar_size: str = ""
    use_rth: bool = False
    format_date: int = 1


@dataclass
class FaultState:
    connectivity_lost: bool = False
    market_farm_down: bool = False
    hmds_down: bool = False
    reserved_client_ids: set[int] = field(default_factory=set)
    refused_client_ids: list[int] = field(default_factory=list)  # each startApi refused with 326
    unresolvable: set[str] = field(default_factory=set)


class Session:
    def __init__(
        self, gateway: Gateway, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.gateway = gateway
        self.reader = reader
        self.writer = writer
        self.client_id: int | None = None
        self.subscriptions: dict[int, Subscription] = {}
        self.account_updates = False
        self.positions_subscribed = False
        self.account_multi_req: int | None = None
        self.received: list[list[str]] = []  # every incoming message, for tests and debugging

    def send(self, fields: list[Field]) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode_message(fields))

    def error(self, req_id: int, code: int, text: str) -> None:
        self.send(m.error(req_id, code, text))

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()

    async def run(self) -> None:
        buffer = FrameBuffer()
        try:
            prefix = await self.reader.readexactly(len(HANDSHAKE_PREFIX))
            if prefix != HANDSHAKE_PREFIX:
                raise ProtocolError(f"expected {HANDSHAKE_PREFIX!r}, got {prefix!r}")
            hello_payload = None
            while hello_payload is None:
                data = await self.reader.read(4096)
                if not data:
                    return
                for payload in buffer.feed(data):
                    if hello_payload is None:
                        hello_payload = payload
            version = negotiate(parse_hello(hello_payload), self.gateway.config.server_version)
            now = pd.Timestamp(self.gateway.wire_now_ns(), tz="UTC").tz_convert(EXCHANGE_TZ)
            self.writer.write(encode_message([version, now.strftime("%Y%m%d %H:%M:%S %Z")]))
            while True:
                data = await self.reader.read(65536)
                if not data:
                    return
                for payload in buffer.feed(data):
                    self.gateway.dispatch(self, split_fields(payload))
                await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        except ProtocolError as exc:
            log.warning("closing a connection after a protocol error: %s", exc)
        finally:
            self.gateway.sessions.discard(self)
            self.close()


class Gateway:
    """The simulated IB Gateway."""

    def __init__(
        self, market: Market, clock: ReplayClock, config: GatewayConfig | None = None
    ) -> None:
        self.market = market
        self.clock = clock
        self.config = config or GatewayConfig()
        self.broker = Broker(
            market, self.config.account, self.config.starting_cash, self.config.wire_offset_ns
        )
        self.faults = FaultState()
        self.sessions: set[Session] = set()
        self.host = LOOPBACK
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pump: asyncio.Task[None] | None = None
        self._last_pump_ns = clock.now_ns()
        self._handlers: dict[int, Callable[[Session, FieldReader], None]] = {
            In.START_API: self._start_api,
            In.REQ_IDS: self._req_ids,
            In.REQ_CURRENT_TIME: self._req_current_time,
            In.REQ_MANAGED_ACCTS: lambda s, r: s.send(m.managed_accounts([self.config.account])),
            In.REQ_MARKET_DATA_TYPE: lambda s, r: None,
            In.REQ_CONTRACT_DATA: self._req_contract_data,
            In.REQ_MKT_DATA: self._req_mkt_data,
            In.CANCEL_MKT_DATA: self._cancel_subscription,
            In.REQ_TICK_BY_TICK_DATA: self._req_tick_by_tick,
            In.CANCEL_TICK_BY_TICK_DATA: self._cancel_tick_by_tick,
            In.REQ_REAL_TIME_BARS: self._req_real_time_bars,
            In.CANCEL_REAL_TIME_BARS: self._cancel_subscription,
            In.REQ_HISTORICAL_DATA: self._req_historical_data,
            In.CANCEL_HISTORICAL_DATA: self._cancel_subscription,
            In.PLACE_ORDER: self._place_order,
            In.CANCEL_ORDER: self._cancel_order,
            In.REQ_GLOBAL_CANCEL: lambda s, r: self._publish(self.broker.cancel_all()),
            In.REQ_OPEN_ORDERS: self._req_open_orders,
            In.REQ_ALL_OPEN_ORDERS: self._req_open_orders,
            In.REQ_AUTO_OPEN_ORDERS: lambda s, r: None,
            In.REQ_COMPLETED_ORDERS: lambda s, r: s.send(m.completed_orders_end()),
            In.REQ_EXECUTIONS: self._req_executions,
            In.REQ_POSITIONS: self._req_positions,
            In.CANCEL_POSITIONS: self._cancel_positions,
            In.REQ_ACCOUNT_SUMMARY: self._req_account_summary,
            In.CANCEL_ACCOUNT_SUMMARY: lambda s, r: None,
            In.REQ_ACCOUNT_UPDATES: self._req_account_updates,
            In.REQ_ACCOUNT_UPDATES_MULTI: self._req_account_updates_multi,
            In.CANCEL_ACCOUNT_UPDATES_MULTI: lambda s, r: None,
        }

    def wire(self, replay_ns: int) -> int:
        """A replay-time instant as clients see it (GatewayConfig.wire_offset_ns)."""
        return replay_ns + self.config.wire_offset_ns

    def wire_now_ns(self) -> int:
        return self.wire(self.clock.now_ns())

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, port: int = 0) -> int:
        """Listen on loopback (port 0 picks a free one) and start the market pump."""
        await self._listen(port)
        self._pump = asyncio.get_running_loop().create_task(self._run_pump())
        return self.port

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(self._on_connect, LOOPBACK, port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("IB Gateway simulator listening on %s:%d", LOOPBACK, self.port)

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        await self._close_listener()
        for session in list(self.sessions):
            session.close()

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            for session in list(self.sessions):
                session.close()
            await self._server.wait_closed()
            self._server = None

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self.sessions.add(session)
        await session.run()

    # -- faults ---------------------------------------------------------------------------------

    def broadcast_error(self, code: int, text: str) -> None:
        for session in self.api_sessions():
            session.error(NO_VALID_ID, code, text)

    def lose_connectivity(self) -> None:
        """IB's servers become unreachable: 1100; data and order routing stop."""
        self.faults.connectivity_lost = True
        self.broadcast_error(1100, "Connectivity between IB and Trader Workstation has been lost.")

    def restore_connectivity(self, data_lost: bool = False) -> None:
        """1101 (data lost: clients must resubscribe) or 1102 (data maintained)."""
        self.faults.connectivity_lost = False
        if data_lost:
            for session in self.sessions:
                session.subscriptions.clear()
            self.broadcast_error(
                1101,
                "Connectivity between IB and Trader Workstation has been restored - data lost.",
            )
        else:
            self.broadcast_error(
                1102,
                "Connectivity between IB and Trader Workstation has been restored - data maintained.",
            )

    def drop_connections(self) -> None:
        """Close every API socket (what a gateway crash looks like to the clients)."""
        for session in list(self.sessions):
            session.close()

    async def restart(self, downtime_seconds: float) -> None:
        """The nightly restart: sockets close, nothing listens for a while, then it comes back
        with its orders, positions and executions intact (IB keeps them server-side)."""
        port = self.port
        await self._close_listener()
        await asyncio.sleep(downtime_seconds)
        await self._listen(port)

    def market_farm_outage(self) -> None:
        self.faults.market_farm_down = True
        self.broadcast_error(2103, "Market data farm connection is broken:usfarm")

    def market_farm_restored(self) -> None:
        self.faults.market_farm_down = False
        self.broadcast_error(2104, "Market data farm connection is OK:usfarm")

    def hmds_outage(self) -> None:
        self.faults.hmds_down = True
        self.broadcast_error(2105, "HMDS data farm connection is broken:ushmds")

    def hmds_restored(self) -> None:
        self.faults.hmds_down = False
        self.broadcast_error(2106, "HMDS data farm connection is OK:ushmds")

    def reserve_client_id(self, client_id: int) -> None:
        """Pretend another application holds this client id (error 326 for newcomers)."""
        self.faults.reserved_client_ids.add(client_id)

    def release_client_id(self, client_id: int) -> None:
        self.faults.reserved_client_ids.discard(client_id)

    def make_unresolvable(self, symbol: str) -> None:
        """Contract requests for this symbol get error 200, as for an unknown contract."""
        self.faults.unresolvable.add(symbol)

    # -- routing --------------------------------------------------------------------------------

    def api_sessions(self) -> list[Session]:
        return [s for s in self.sessions if s.client_id is not None]

    def dispatch(self, session: Session, fields: list[str]) -> None:
        session.received.append(fields)
        if not fields:
            raise ProtocolError("empty message")
        try:
            msg_id = int(fields[0])
        except ValueError:
            raise ProtocolError(f"message id must be an integer, got {fields[0]!r}") from None
        if session.client_id is None and msg_id != In.START_API:
            log.warning("message %d before startApi ignored", msg_id)
            return
        handler = self._handlers.get(msg_id)
        if handler is None:
            log.warning("unsupported message %d: %s", msg_id, fields)
            session.error(
                NO_VALID_ID,
                321,
                f"Error validating request.-'sim' : cause - the simulator does not serve message {msg_id}",
            )
            return
        reader = FieldReader(fields, f"message {msg_id}")
        reader.skip(1)
        handler(session, reader)

    def _start_api(self, session: Session, r: FieldReader) -> None:
        r.skip(1)  # version
        client_id = r.int("clientId")
        taken = {s.client_id for s in self.api_sessions()} | self.faults.reserved_client_ids
        if client_id in taken:
            self.faults.refused_client_ids.append(client_id)
            session.error(
                NO_VALID_ID,
                326,
                "Unable to connect as the client id is already in use. Retry with a unique client id.",
            )
            # IB closes the socket right after the error; a moment's grace lets the error arrive
            asyncio.get_running_loop().call_later(0.05, session.close)
            return
        session.client_id = client_id
        session.send(m.next_valid_id(self.broker.max_order_id() + 1))
        session.send(m.managed_accounts([self.config.account]))
        if self.faults.connectivity_lost:
            # The Gateway itself has no link to IB: a client connecting now is told so at once
            # (and hears 1101/1102 when the link is back), not that the farms are fine.
            session.error(NO_VALID_ID, 1100, "Connectivity between IB and Trader Workstation has been lost.")
            return
        for code, text in FARM_OK_NOTICES:
            session.error(NO_VALID_ID, code, text)

    def _req_ids(self, session: Session, r: FieldReader) -> None:
        session.send(m.next_valid_id(self.broker.max_order_id() + 1))

    def _req_current_time(self, session: Session, r: FieldReader) -> None:
        session.send(m.current_time(self.wire_now_ns() // NS))

    # -- contracts ------------------------------------------------------------------------------

    @staticmethod
    def _read_contract(r: FieldReader) -> tuple[int, str, str]:
        con_id = r.int("conId")
        symbol = r.str("symbol")
        sec_type = r.str("secType")
        r.skip(6)  # lastTradeDate, strike, right, multiplier, exchange, primaryExchange
        r.skip(1)  # currency
        local_symbol = r.str("localSymbol")
        r.skip(1)  # tradingClass
        return con_id, symbol or local_symbol, sec_type

    def _resolve(self, session: Session, req_id: int, r: FieldReader) -> ContractSpec | None:
        con_id, symbol, sec_type = self._read_contract(r)
        spec = self.market.resolve(symbol, sec_type, con_id)
        if spec is None or spec.symbol in self.faults.unresolvable:
            session.error(req_id, 200, "No security definition has been found for the request")
            return None
        return spec

    def _trading_hours(self) -> tuple[str, str]:
        today = pd.Timestamp(self.clock.now_ns(), tz="UTC").tz_convert(EXCHANGE_TZ).normalize()
        trading, liquid = [], []
        for offset in range(7):
            day = (today + pd.Timedelta(days=offset)).date()
            tag = day.strftime("%Y%m%d")
            bounds = _regular_session(day)
            if bounds is None:
                trading.append(f"{tag}:CLOSED")
                liquid.append(f"{tag}:CLOSED")
                continue
            close = pd.Timestamp(bounds[1], tz="UTC").tz_convert(EXCHANGE_TZ)
            trading.append(f"{tag}:0400-{tag}:2000")
            liquid.append(f"{tag}:0930-{tag}:{close.strftime('%H%M')}")
        return ";".join(trading), ";".join(liquid)

    def _req_contract_data(self, session: Session, r: FieldReader) -> None:
        r.skip(1)  # version
        req_id = r.int("reqId")
        spec = self._resolve(session, req_id, r)
        if spec is None:
            return
        trading, liquid = self._trading_hours()
        session.send(m.contract_data(req_id, spec, trading, liquid))
        session.send(m.contract_data_end(req_id))

    # -- market data ----------------------------------------------------------------------------

    def _req_mkt_data(self, session: Session, r: FieldReader) -> None:
        r.skip(1)
        req_id = r.int("reqId")
        spec = self._resolve(session, req_id, r)
        if spec is None:
            return
        if r.bool("deltaNeutralContract"):
            r.skip(3)
        r.skip(1)  # genericTickList
        snapshot = r.bool("snapshot")
        session.send(m.market_data_type(req_id, 1))
        session.send(m.tick_req_params(req_id, spec.min_tick, "9c0001"))
        if self.faults.market_farm_down:
            session.error(req_id, 10090, "Part of requested market data is not subscribed.")
        sub = Subscription("mkt", spec, last_ns=self.clock.now_ns())
        self._send_mkt_snapshot(session, req_id, sub, self.clock.now_ns())
        if snapshot:
            session.send(m.tick_snapshot_end(req_id))
        else:
            session.subscriptions[req_id] = sub

    def _send_mkt_snapshot(
        self, session: Session, req_id: int, sub: Subscription, now: int
    ) -> None:
        tape = self.market.tapes.get(sub.spec.symbol)
        quote = self.market.quote(sub.spec.symbol, now)
        if quote is not None:
            self._send_quote(session, req_id, sub, quote)
        bar = tape.last_bar_at(now) if tape else None
        if bar is not None:
            session.send(m.tick_price(req_id, TickType.LAST, bar.close, bar.volume))
            session.send(m.tick_size(req_id, TickType.LAST_SIZE, bar.volume))
            last_time = str(self.wire(bar.ts_close_ns) // NS)
            session.send(m.tick_string(req_id, TickType.LAST_TIMESTAMP, last_time))

    def _send_quote(self, session: Session, req_id: int, sub: Subscription, quote: Quote) -> None:
        previous = sub.last_quote
        sub.last_quote = quote
        if sub.kind == "mkt":
            if previous is None or previous.bid != quote.bid:
                session.send(m.tick_price(req_id, TickType.BID, quote.bid, quote.bid_size))
            elif previous.bid_size != quote.bid_size:
                session.send(m.tick_size(req_id, TickType.BID_SIZE, quote.bid_size))
            if previous is None or previous.ask != quote.ask:
                session.send(m.tick_price(req_id, TickType.ASK, quote.ask, quote.ask_size))
            elif previous.ask_size != quote.ask_size:
                session.send(m.tick_size(req_id, TickType.ASK_SIZE, quote.ask_size))
        elif sub.kind == "bidask":
            session.send(
                m.tick_by_tick_bid_ask(
                    req_id,
                    self.wire(quote.ts_ns) // NS,
                    quote.bid,
                    quote.ask,
                    quote.bid_size,
                    quote.ask_size,
                ),
            )
        elif sub.kind == "midpoint":
            session.send(m.tick_by_tick_midpoint(req_id, self.wire(quote.ts_ns) // NS, quote.mid))

    def _req_tick_by_tick(self, session: Session, r: FieldReader) -> None:
        req_id = r.int("reqId")
        spec = self._resolve(session, req_id, r)
        if spec is None:
            return
        tick_type = r.str("tickType")
        kinds = {"BidAsk": "bidask", "Last": "last", "AllLast": "last", "MidPoint": "midpoint"}
        if tick_type not in kinds:
            session.error(
                req_id,
                10_189,
                f"Failed to request tick-by-tick data: unknown tickType {tick_type!r}",
            )
            return
        now = self.clock.now_ns()
        sub = Subscription(kinds[tick_type], spec, last_ns=now, bar_size=tick_type)
        session.subscriptions[req_id] = sub
        quote = self.market.quote(spec.symbol, now)
        if quote is not None and sub.kind != "last":
            self._send_quote(session, req_id, sub, quote)

    def _cancel_tick_by_tick(self, session: Session, r: FieldReader) -> None:
        session.subscriptions.pop(r.int("reqId"), None)

    def _cancel_subscription(self, session: Session, r: FieldReader) -> None:
        r.skip(1)
        session.subscriptions.pop(r.int("reqId"), None)

    def _req_real_time_bars(self, session: Session, r: FieldReader) -> None:
        r.skip(1)
        req_id = r.int("reqId")
        spec = self._resolve(session, req_id, r)
        if spec is None:
            return
        r.skip(2)  # barSize (always 5 s at IB), whatToShow
        use_rth = r.bool("useRTH")
        now = self.clock.now_ns()
        session.subscriptions[req_id] = Subscription(
            "rtbars",
            spec,
            last_ns=now - now % REAL_TIME_BAR_NS,
            use_rth=use_rth,
        )

    def _req_historical_data(self, session: Session, r: FieldReader) -> None:
        req_id = r.int("reqId")
        spec = self._resolve(session, req_id, r)
        if spec is None:
            return
        r.skip(1)  # includeExpired
        end_text = r.str("endDateTime")
        bar_size = r.str("barSizeSetting")
        duration = r.str("durationStr")
        use_rth = r.bool("useRTH")
        r.skip(1)  # whatToShow: bars come from the catalog's trade bars either way
        format_date = r.int("formatDate", 1)
        keep_up = r.bool("keepUpToDate")
        if self.faults.hmds_down:
            session.error(
                req_id,
                162,
                "Historical Market Data Service error message:HMDS data farm connection is broken:ushmds",
            )
            return
        now = self.clock.now_ns()
        try:
            offset = self.config.wire_offset_ns
            end_ns = min(parse_end(end_text, self.wire(now)) - offset, now)
            start_ns = duration_start(duration, end_ns)
            tape = self.market.tapes[spec.symbol]
            rows = aggregate(
                tape.bars_between(start_ns, end_ns), bar_size, use_rth, format_date, offset
            )
        except HistoryRequestError as exc:
            session.error(req_id, 321, f"Error validating request.-'bW' : cause - {exc}")
            return
        if keep_up and rows:
            # the last row may still be forming at IB; it arrives as the first update instead
            rows = rows[:-1]
        session.send(
            m.historical_data(
                req_id,
                ib_datetime(self.wire(start_ns)),
                ib_datetime(self.wire(end_ns)),
                [row for _, row in rows],
            )
        )
        if keep_up:
            session.subscriptions[req_id] = Subscription(
                "keepup",
                spec,
                last_ns=rows[-1][0] if rows else start_ns,
                bar_size=bar_size,
                use_rth=use_rth,
                format_date=format_date,
            )

    # -- orders ---------------------------------------------------------------------------------

    def _place_order(self, session: Session, r: FieldReader) -> None:
        order_id = r.int("orderId")
        con_id, symbol, sec_type = self._read_contract(r)
        r.skip(2)  # secIdType, secId
        action = r.str("action")
        quantity = r.decimal("totalQuantity")
        order_type = r.str("orderType")
        lmt_price = r.decimal("lmtPrice")
        aux_price = r.decimal("auxPrice")
        tif = r.str("tif")
        oca_group = r.str("ocaGroup")
        account = r.str("account")
        r.skip(2)  # openClose, origin
        order_ref = r.str("orderRef")
        transmit = r.bool("transmit")
        parent_id = r.int("parentId")
        r.skip(4)  # blockOrder, sweepToFill, displaySize, triggerMethod
        outside_rth = r.bool("outsideRth")
        r.skip(1)  # hidden
        if sec_type == "BAG":
            session.error(order_id, 201, "Order rejected - reason:combo orders are not simulated")
            return
        r.skip(3)  # sharesAllocation, discretionaryAmt, goodAfterTime
        good_till_date = r.str("goodTillDate")
        spec = self.market.resolve(symbol, sec_type, con_id)
        if spec is None or spec.symbol in self.faults.unresolvable:
            session.error(order_id, 200, "No security definition has been found for the request")
            return
        if account and account != self.config.account:
            session.error(
                order_id,
                321,
                f"Error validating request.-'bN' : cause - The account code {account} is not managed here",
            )
            return
        if self.faults.connectivity_lost:
            session.error(
                order_id, 1100, "Connectivity between IB and Trader Workstation has been lost."
            )
        request = OrderRequest(
            order_id=order_id,
            client_id=session.client_id or 0,
            spec=spec,
            action=action,
            quantity=quantity if quantity is not None else Decimal(0),
            order_type=order_type,
            lmt_price=lmt_price,
            aux_price=aux_price,
            tif=tif or "DAY",
            outside_rth=outside_rth,
            account=account or self.config.account,
            order_ref=order_ref,
            oca_group=oca_group,
            parent_id=parent_id,
            transmit=transmit,
            good_till_date=good_till_date,
        )
        now = self.clock.now_ns()
        events = self.broker.place(request, now)
        self._publish(events)

    def _cancel_order(self, session: Session, r: FieldReader) -> None:
        r.skip(1)
        order_id = r.int("orderId")
        self._publish(self.broker.cancel(order_id, session.client_id or 0))

    def _sessions_for_client(self, client_id: int) -> list[Session]:
        # IB reports an order to the client that placed it and to the master client id 0
        return [s for s in self.api_sessions() if s.client_id in (client_id, 0)]

    def _publish(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, OrderUpdate):
                for session in self._sessions_for_client(event.order.client_id):
                    session.send(m.open_order(event.order))
                    session.send(m.order_status(event.order))
            elif isinstance(event, Execution):
                for session in self._sessions_for_client(event.execution.client_id):
                    session.send(m.execution_data(NO_VALID_ID, event.execution))
                    session.send(m.commission_report(event.execution))
                self._send_position_updates(event.execution.spec.symbol)
                self._send_account_updates()
            elif isinstance(event, OrderError):
                for session in self._sessions_for_client(event.client_id):
                    session.error(event.order_id, event.code, event.text)

    def _req_open_orders(self, session: Session, r: FieldReader) -> None:
        for order in self.broker.orders.values():
            if order.is_open:
                view = order.view()
                session.send(m.open_order(view))
                session.send(m.order_status(view))
        session.send(m.open_order_end())

    def _req_executions(self, session: Session, r: FieldReader) -> None:
        r.skip(1)
        req_id = r.int("reqId")
        filter_client = r.int("clientId")
        r.skip(2)  # acctCode, time
        symbol = r.str("symbol")
        for execution in self.broker.executions:
            if filter_client and execution.client_id != filter_client:
                continue
            if symbol and execution.spec.symbol != symbol:
                continue
            session.send(m.execution_data(req_id, execution))
            session.send(m.commission_report(execution))
        session.send(m.execution_data_end(req_id))

    # -- account --------------------------------------------------------------------------------

    def _req_positions(self, session: Session, r: FieldReader) -> None:
        session.positions_subscribed = True
        for symbol, position in self.broker.positions.items():
            session.send(
                m.position_data(
                    self.config.account,
                    self.market.specs[symbol],
                    position.quantity,
                    position.avg_cost,
                ),
            )
        session.send(m.position_end())

    def _cancel_positions(self, session: Session, r: FieldReader) -> None:
        session.positions_subscribed = False

    def _send_position_updates(self, symbol: str) -> None:
        position = self.broker.positions[symbol]
        for session in self.api_sessions():
            if session.positions_subscribed:
                session.send(
                    m.position_data(
                        self.config.account,
                        self.market.specs[symbol],
                        position.quantity,
                        position.avg_cost,
                    ),
                )

    def _req_account_summary(self, session: Session, r: FieldReader) -> None:
        r.skip(1)
        req_id = r.int("reqId")
        r.skip(1)  # group
        tags = {t for t in r.str("tags").split(",") if t}
        for tag, value in self.broker.account_values(self.clock.now_ns()).items():
            if not tags or tag in tags:
                session.send(m.account_summary(req_id, self.config.account, tag, str(value), "USD"))
        session.send(
            m.account_summary(req_id, self.config.account, "AccountType", "INDIVIDUAL", "")
        )
        session.send(m.account_summary_end(req_id))

    def _req_account_updates(self, session: Session, r: FieldReader) -> None:
        r.skip(1)
        session.account_updates = r.bool("subscribe")
        if session.account_updates:
            self._send_account_update(session)
            session.send(m.account_download_end(self.config.account))

    def _req_account_updates_multi(self, session: Session, r: FieldReader) -> None:
        r.skip(1)
        req_id = r.int("reqId")
        session.account_multi_req = req_id
        for key, value in self.broker.account_values(self.clock.now_ns()).items():
            session.send(
                m.account_update_multi(req_id, self.config.account, key, str(value), "USD")
            )
        session.send(m.account_update_multi_end(req_id))

    def _send_account_update(self, session: Session) -> None:
        now = self.clock.now_ns()
        for key, value in self.broker.account_values(now).items():
            session.send(m.account_value(key, str(value), "USD", self.config.account))
        for symbol, position in self.broker.positions.items():
            price = self.broker.mark(symbol, now)
            value = position.quantity * price
            session.send(
                m.portfolio_value(
                    self.market.specs[symbol],
                    position.quantity,
                    price,
                    value.quantize(Decimal("0.01")),
                    position.avg_cost,
                    ((price - position.avg_cost) * position.quantity).quantize(Decimal("0.01")),
                    position.realized_pnl,
                    self.config.account,
                ),
            )
        local = pd.Timestamp(self.wire(now), tz="UTC").tz_convert(EXCHANGE_TZ)
        session.send(m.account_update_time(local.strftime("%H:%M")))

    def _send_account_updates(self) -> None:
        for session in self.api_sessions():
            if session.account_updates:
                self._send_account_update(session)

    # -- the pump -------------------------------------------------------------------------------

    async def _run_pump(self) -> None:
        while True:
            await asyncio.sleep(self.config.pump_interval_seconds)
            try:
                self.pump()
            except Exception:
                log.exception("market pump failed")
                raise

    def pump(self) -> None:
        """One step: match orders against the current quotes and stream market data."""
        now = self.clock.now_ns()
        previous = self._last_pump_ns
        self._last_pump_ns = now
        if self.faults.connectivity_lost:
            return
        symbols = {o.request.spec.symbol for o in self.broker.orders.values() if o.is_open}
        for symbol in sorted(symbols):
            self._publish(self.broker.match(symbol, now))
        if self.faults.market_farm_down:
            return
        for session in self.api_sessions():
            for req_id, sub in list(session.subscriptions.items()):
                self._stream(session, req_id, sub, previous, now)

    def _stream(
        self, session: Session, req_id: int, sub: Subscription, previous: int, now: int
    ) -> None:
        tape = self.market.tapes.get(sub.spec.symbol)
        if tape is None:
            return
        if sub.kind in ("mkt", "bidask", "midpoint"):
            quote = tape.quote_at(now)
            if quote is not None and quote != sub.last_quote:
                self._send_quote(session, req_id, sub, quote)
        if sub.kind in ("mkt", "last"):
            for bar in tape.bars_between(sub.last_ns, now):
                # a minute's trading is reported as one print at its close
                if sub.kind == "mkt":
                    session.send(m.tick_price(req_id, TickType.LAST, bar.close, bar.volume))
                    session.send(m.tick_size(req_id, TickType.VOLUME, bar.volume))
                else:
                    session.send(
                        m.tick_by_tick_last(
                            req_id,
                            1,
                            self.wire(bar.ts_close_ns) // NS,
                            bar.close,
                            bar.volume,
                            sub.spec.primary_exchange,
                        ),
                    )
            sub.last_ns = now
        elif sub.kind == "rtbars":
            while sub.last_ns + REAL_TIME_BAR_NS <= now:
                start = sub.last_ns
                sub.last_ns += REAL_TIME_BAR_NS
                row = self._real_time_bar(tape, start, sub.last_ns)
                if row is not None:
                    session.send(m.real_time_bar(req_id, self.wire(start) // NS, row))
        elif sub.kind == "keepup":
            closed = tape.bars_between(sub.last_ns, now)
            if not closed:
                return
            rows = aggregate(
                closed, sub.bar_size, sub.use_rth, sub.format_date, self.config.wire_offset_ns
            )
            for _close_ns, row in rows:
                session.send(m.historical_data_update(req_id, row))
            sub.last_ns = closed[-1].ts_close_ns

    @staticmethod
    def _real_time_bar(tape: Tape, start: int, end: int) -> m.BarRow | None:
        """A 5-second bar of quote midpoints (the catalog holds no trades finer than minutes):
        it opens at the quote standing at its start and spans every quote inside it."""
        first = tape.quote_at(start)
        mids = [q.mid for q in tape.quotes_between(start, end)]
        if first is not None:
            mids.insert(0, first.mid)
        if not mids:
            return None
        return m.BarRow("", mids[0], max(mids), min(mids), mids[-1], Decimal(0), mids[-1], 0)
