"""
The IB Gateway simulator, checked by two independent real clients: ib_insync and the Nautilus
adapter's InteractiveBrokersClient (nautilus-ibapi). Everything runs on loopback with an
ephemeral port, over a tiny hand-built catalog whose quotes step up one cent every 10 seconds
from 470.00/470.02 (SPY) at the 09:30 open on 2024-01-02, so every price below is hand-computed.
The replay clock is frozen (speed 0) and moved by the tests.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from ib_insync import IB
from ib_insync import LimitOrder
from ib_insync import MarketOrder
from ib_insync import Stock
from ib_insync import StopOrder

from adapters.ib_gateway_sim.broker import FillPlan
from adapters.ib_gateway_sim.broker import ib_commission
from adapters.ib_gateway_sim.gateway_thread import GatewayThread
from adapters.ib_gateway_sim.market import synthetic_isin
from adapters.ib_gateway_sim.protocol import FrameBuffer
from adapters.ib_gateway_sim.protocol import Hello
from adapters.ib_gateway_sim.protocol import ProtocolError
from adapters.ib_gateway_sim.protocol import encode_field
from adapters.ib_gateway_sim.protocol import encode_message
from adapters.ib_gateway_sim.protocol import negotiate
from adapters.ib_gateway_sim.protocol import parse_hello
from adapters.ib_gateway_sim.protocol import split_fields
from tests.ib_sim_support import OPEN
from tests.ib_sim_support import build_catalog
from tests.ib_sim_support import make_gateway

START = OPEN + pd.Timedelta(minutes=10)  # 60 quote steps in: SPY 470.60 / 470.62


def wait_until(ib: IB, predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """Let ib_insync process messages until the predicate holds (fails the test otherwise)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        try:
            ib.sleep(0.02)
        except ConnectionError:
            # ib_insync aborts a pending sleep when the socket closes; the predicate decides
            pass


@pytest.fixture(autouse=True)
def insync_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """ib_insync runs on the thread's current event loop; other modules' asyncio.run() leave
    none behind, so each test gets its own."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture(scope="module")
def catalog_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_catalog(tmp_path_factory.mktemp("ibsim") / "catalog")


@pytest.fixture
def sim(catalog_path: Path) -> Iterator[GatewayThread]:
    with GatewayThread(make_gateway(catalog_path, START)) as thread:
        yield thread


@pytest.fixture
def ib(sim: GatewayThread) -> Iterator[IB]:
    client = IB()
    client.connect("127.0.0.1", sim.port, clientId=7, timeout=5)
    errors: list[tuple[int, int, str]] = []
    client.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code, text))
    client.errors = errors  # type: ignore[attr-defined]
    yield client
    client.disconnect()


# -- protocol (pure) ---------------------------------------------------------------------------


def test_fields_are_encoded_as_ib_writes_them() -> None:
    assert encode_field(None) == ""
    assert encode_field(True) == "1"
    assert encode_field(2**31 - 1) == "2147483647"  # UNSET_INTEGER, as the gateway sends it
    assert encode_field(1.7976931348623157e308) == "1.7976931348623157E308"  # UNSET_DOUBLE
    assert encode_field(Decimal("100")) == "100"
    assert encode_field(Decimal("470.620")) == "470.620"
    assert encode_field(0.1) == "0.1"
    with pytest.raises(ProtocolError, match="NUL"):
        encode_field("a\0b")


def test_frames_survive_arbitrary_socket_chunking() -> None:
    stream = encode_message([9, 1, 42]) + encode_message([15, 1, "DU1"])
    buffer = FrameBuffer()
    payloads = [p for i in range(len(stream)) for p in buffer.feed(stream[i : i + 1])]
    assert [split_fields(p) for p in payloads] == [["9", "1", "42"], ["15", "1", "DU1"]]


def test_handshake_negotiates_176_or_names_both_ranges() -> None:
    assert parse_hello(b"v100..223 +PACEAPI") == Hello(100, 223, "+PACEAPI")
    assert negotiate(parse_hello(b"v157..176")) == 176
    with pytest.raises(ProtocolError, match=r"201..223.*176"):
        negotiate(Hello(201, 223, ""))
    with pytest.raises(ProtocolError, match="v<min>..<max>"):
        parse_hello(b"hello")


def test_commission_is_ibs_fixed_rate_with_minimum_and_cap() -> None:
    assert ib_commission(Decimal(10), Decimal("470.62")) == Decimal("1.00")  # minimum
    assert ib_commission(Decimal(1000), Decimal("50")) == Decimal("5.00")  # 0.005 a share
    assert ib_commission(Decimal(300), Decimal("0.50")) == Decimal("1.50")  # capped at 1% of 150


def test_synthetic_isin_has_a_valid_luhn_check_digit() -> None:
    assert synthetic_isin(68459423) == "US0684594239"


# -- ib_insync ----------------------------------------------------------------------------------


def test_ib_insync_qualifies_contracts_on_their_primary_exchange(ib: IB) -> None:
    spy, aapl = ib.qualifyContracts(Stock("SPY", "SMART", "USD"), Stock("AAPL", "SMART", "USD"))
    assert (spy.primaryExchange, spy.exchange, spy.secType) == ("ARCA", "SMART", "STK")
    assert aapl.primaryExchange == "NASDAQ"
    [details] = ib.reqContractDetails(Stock("SPY", "SMART", "USD"))
    assert details.minTick == 0.01
    assert details.stockType == "ETF"
    assert details.liquidHours.startswith("20240102:0930-20240102:1600")


def test_ib_insync_reads_quotes_as_the_replay_moves(sim: GatewayThread, ib: IB) -> None:
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    ticker = ib.reqMktData(spy)
    wait_until(ib, lambda: ticker.bid == 470.60 and ticker.ask == 470.62)
    assert ticker.bidSize == 300 and ticker.askSize == 200
    sim.call(sim.gateway.clock.advance_to, (START + pd.Timedelta(seconds=30)).value)
    wait_until(ib, lambda: ticker.bid == 470.63 and ticker.ask == 470.65)
    bid_ask = ib.reqTickByTickData(spy, "BidAsk")
    seen: list = []  # ib_insync clears ticker.tickByTicks after each batch: collect them
    bid_ask.updateEvent += lambda ticker: seen.extend(ticker.tickByTicks)
    wait_until(ib, lambda: len(seen) > 0)
    assert (seen[-1].bidPrice, seen[-1].askPrice, seen[-1].bidSize) == (470.63, 470.65, 300)


def test_ib_insync_places_and_cancels_a_resting_order(ib: IB) -> None:
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    trade = ib.placeOrder(spy, LimitOrder("BUY", 10, 460.00))
    wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    assert [t.order.orderId for t in ib.reqAllOpenOrders()] == [trade.order.orderId]
    ib.cancelOrder(trade.order)
    wait_until(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert trade.fills == []


def test_ib_insync_sees_execution_commission_position_and_account(ib: IB) -> None:
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    trade = ib.placeOrder(spy, MarketOrder("BUY", 10))
    wait_until(ib, lambda: trade.orderStatus.status == "Filled")
    wait_until(ib, lambda: trade.fills and trade.fills[0].commissionReport.execId)
    [fill] = trade.fills
    assert fill.execution.price == 470.62 and fill.execution.shares == 10  # the ask
    assert fill.execution.side == "BOT"
    assert fill.commissionReport.commission == 1.00
    wait_until(ib, lambda: bool(ib.positions()))
    [position] = ib.positions()
    assert (position.contract.symbol, position.position, position.avgCost) == ("SPY", 10, 470.62)
    # cash 100000 - 4706.20 - 1.00, plus 10 shares marked at the mid 470.61
    summary = {v.tag: v.value for v in ib.accountSummary()}
    assert summary["NetLiquidation"] == "99998.90"
    assert summary["TotalCashValue"] == "95292.80"

    sell = ib.placeOrder(spy, LimitOrder("SELL", 10, 470.60))  # bid 470.60 meets it
    wait_until(ib, lambda: sell.orderStatus.status == "Filled")
    wait_until(ib, lambda: sell.fills and sell.fills[0].commissionReport.execId)
    # (470.60 - 470.62) * 10 - 1.00 commission on the closing trade
    assert sell.fills[0].commissionReport.realizedPNL == pytest.approx(-1.20)
    assert {f.execution.execId for f in ib.reqExecutions()} == {
        fill.execution.execId,
        sell.fills[0].execution.execId,
    }


def test_stop_order_triggers_when_the_ask_reaches_it(sim: GatewayThread, ib: IB) -> None:
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    trade = ib.placeOrder(spy, StopOrder("BUY", 5, 470.70))
    wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    sim.call(sim.gateway.clock.advance_to, (START + pd.Timedelta(seconds=70)).value)  # ask 470.69
    ib.sleep(0.2)
    assert trade.orderStatus.status == "Submitted"
    sim.call(sim.gateway.clock.advance_to, (START + pd.Timedelta(seconds=80)).value)  # ask 470.70
    wait_until(ib, lambda: trade.orderStatus.status == "Filled")
    assert trade.fills[0].execution.price == 470.70


def test_outside_regular_hours_only_outside_rth_orders_trade(sim: GatewayThread, ib: IB) -> None:
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    sim.call(
        sim.gateway.clock.advance_to, pd.Timestamp("2024-01-02 16:30", tz="America/New_York").value
    )
    regular = ib.placeOrder(spy, LimitOrder("BUY", 1, 480.00))
    extended = LimitOrder("BUY", 1, 480.00)
    extended.outsideRth = True
    extended_trade = ib.placeOrder(spy, extended)
    wait_until(ib, lambda: extended_trade.orderStatus.status == "Filled")
    assert regular.orderStatus.status == "PreSubmitted"


def test_historical_bars_are_open_stamped_minutes(ib: IB) -> None:
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    bars = ib.reqHistoricalData(spy, "", "600 S", "1 min", "TRADES", useRTH=True, formatDate=2)
    assert len(bars) == 10
    assert bars[0].date == OPEN.to_pydatetime()  # the bar closing 09:31 is IB's 09:30 bar
    assert (bars[0].open, bars[0].close, bars[-1].close) == (470.01, 470.06, 470.60)
    five = ib.reqHistoricalData(spy, "", "600 S", "5 mins", "TRADES", useRTH=True, formatDate=2)
    assert [(b.open, b.high, b.low, b.close, b.volume) for b in five] == [
        (470.01, 470.32, 470.00, 470.30, 5000),
        (470.31, 470.62, 470.30, 470.60, 5000),
    ]


# -- faults as ib_insync sees them ----------------------------------------------------------------


def test_connectivity_loss_and_restore_arrive_as_1100_and_1102(sim: GatewayThread, ib: IB) -> None:
    sim.call(sim.gateway.lose_connectivity)
    sim.call(sim.gateway.restore_connectivity)
    wait_until(ib, lambda: [c for _, c, _ in ib.errors] == [1100, 1102])  # type: ignore[attr-defined]


def test_data_farm_outages_arrive_as_2103_to_2106_and_pause_data(
    sim: GatewayThread, ib: IB
) -> None:
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    ticker = ib.reqMktData(spy)
    wait_until(ib, lambda: ticker.bid == 470.60)
    sim.call(sim.gateway.market_farm_outage)
    sim.call(sim.gateway.hmds_outage)
    sim.call(sim.gateway.clock.advance_to, (START + pd.Timedelta(seconds=30)).value)
    ib.sleep(0.2)
    assert ticker.bid == 470.60  # no data while the farm is down
    assert len(ib.reqHistoricalData(spy, "", "600 S", "1 min", "TRADES", useRTH=True)) == 0
    sim.call(sim.gateway.market_farm_restored)
    sim.call(sim.gateway.hmds_restored)
    wait_until(ib, lambda: ticker.bid == 470.63)
    codes = [c for _, c, _ in ib.errors]  # type: ignore[attr-defined]
    assert codes[:2] == [2103, 2105] and 162 in codes and codes[-2:] == [2104, 2106]


def test_client_id_in_use_is_refused_with_326(sim: GatewayThread, ib: IB) -> None:
    second = IB()
    errors: list[int] = []
    second.errorEvent += lambda req_id, code, text, contract: errors.append(code)
    with pytest.raises((ConnectionError, asyncio.TimeoutError, TimeoutError)):
        second.connect("127.0.0.1", sim.port, clientId=7, timeout=2)
    assert errors == [326]
    sim.call(sim.gateway.reserve_client_id, 8)
    with pytest.raises((ConnectionError, asyncio.TimeoutError, TimeoutError)):
        second.connect("127.0.0.1", sim.port, clientId=8, timeout=2)
    assert errors == [326, 326]


def test_unresolvable_contract_gets_200(sim: GatewayThread, ib: IB) -> None:
    sim.call(sim.gateway.make_unresolvable, "AAPL")
    assert ib.qualifyContracts(Stock("AAPL", "SMART", "USD")) == []
    assert ib.qualifyContracts(Stock("NOPE", "SMART", "USD")) == []
    assert [c for _, c, _ in ib.errors] == [200, 200]  # type: ignore[attr-defined]


def test_rejected_order_gets_201(sim: GatewayThread, ib: IB) -> None:
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    sim.call(sim.gateway.broker.reject_next_order, "simulated margin check")
    trade = ib.placeOrder(spy, MarketOrder("BUY", 10))
    wait_until(ib, lambda: trade.orderStatus.status == "Cancelled")
    [logged] = [e for e in trade.log if e.errorCode]
    assert logged.errorCode == 201
    assert logged.message.endswith("Order rejected - reason:simulated margin check")
    assert trade.fills == []


def test_partial_fills_arrive_as_separate_executions(sim: GatewayThread, ib: IB) -> None:
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    sim.call(
        sim.gateway.broker.plan_next_fill,
        FillPlan(parts=[Decimal(4), Decimal(6)], part_interval_seconds=0.2),
    )
    trade = ib.placeOrder(spy, MarketOrder("BUY", 10))
    wait_until(ib, lambda: trade.orderStatus.status == "Filled")
    assert [f.execution.shares for f in trade.fills] == [4, 6]
    assert [f.execution.cumQty for f in trade.fills] == [4, 10]
    assert "Submitted" in [e.status for e in trade.log if e.message.startswith("Fill 4")]


def test_delayed_fill_leaves_the_order_working_first(sim: GatewayThread, ib: IB) -> None:
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    sim.call(sim.gateway.broker.plan_next_fill, FillPlan(delay_seconds=1.0))
    trade = ib.placeOrder(spy, MarketOrder("BUY", 10))
    wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    assert trade.fills == []
    wait_until(ib, lambda: trade.orderStatus.status == "Filled")
    assert trade.fills[0].execution.price == 470.62


def test_dropped_connection_is_seen_and_restart_keeps_orders_and_ids(
    sim: GatewayThread, ib: IB
) -> None:
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    resting = ib.placeOrder(spy, LimitOrder("BUY", 10, 460.00))
    wait_until(ib, lambda: resting.orderStatus.status == "Submitted")
    disconnected: list[bool] = []
    ib.disconnectedEvent += lambda: disconnected.append(True)
    sim.run(sim.gateway.restart(0.3))  # the nightly restart
    wait_until(ib, lambda: disconnected == [True])
    assert not ib.isConnected()
    ib.connect("127.0.0.1", sim.port, clientId=7, timeout=5)
    [open_trade] = ib.reqAllOpenOrders()
    order = open_trade.order
    assert (order.orderId, order.totalQuantity, order.lmtPrice) == (
        resting.order.orderId,
        10,
        460.0,
    )
    assert ib.client.getReqId() > resting.order.orderId  # next ids never repeat an order id


# -- the Nautilus adapter's client (nautilus-ibapi) -----------------------------------------------


def test_nautilus_client_connects_resolves_and_trades(sim: GatewayThread) -> None:
    from ibapi.order import Order as IBOrder
    from nautilus_trader.adapters.interactive_brokers.client import InteractiveBrokersClient
    from nautilus_trader.adapters.interactive_brokers.common import IBContract
    from nautilus_trader.cache.cache import Cache
    from nautilus_trader.common.component import LiveClock
    from nautilus_trader.common.component import MessageBus
    from nautilus_trader.model.identifiers import TraderId

    async def session() -> dict[str, object]:
        clock = LiveClock()
        client = InteractiveBrokersClient(
            asyncio.get_running_loop(),
            MessageBus(TraderId("SIM-001"), clock),
            Cache(),
            clock,
            "127.0.0.1",
            sim.port,
            client_id=3,
        )
        client.start()
        try:
            await client.wait_until_ready(10)
            [account] = client.accounts()
            [details] = await client.get_contract_details(
                IBContract(secType="STK", symbol="AAPL", exchange="SMART", currency="USD"),
            )
            fills: list[dict[str, object]] = []
            statuses: list[str] = []
            client.subscribe_event(f"execDetails-{account}", lambda **kw: fills.append(kw))
            client.subscribe_event(
                f"orderStatus-{account}", lambda **kw: statuses.append(kw["order_status"])
            )
            order = IBOrder()
            order.orderId = client.next_order_id()
            order.action, order.totalQuantity, order.orderType = "BUY", Decimal(5), "LMT"
            order.lmtPrice, order.tif, order.account, order.orderRef = 185.70, "DAY", account, "O-1"
            order.contract = details.contract
            client.place_order(order)
            for _ in range(200):
                if fills:
                    break
                await asyncio.sleep(0.02)
            positions = await client.get_positions(account)
            return {
                "account": account,
                "details": details,
                "fills": fills,
                "statuses": statuses,
                "positions": positions,
            }
        finally:
            client.stop()
            await asyncio.sleep(0.2)

    # a private loop, so ib_insync's loop in this thread is left as it was
    loop = asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(session())
    finally:
        loop.close()
    details = result["details"]
    assert details.contract.primaryExchange == "NASDAQ"  # type: ignore[attr-defined]
    assert [(t.tag, t.value[:2]) for t in details.secIdList] == [("ISIN", "US")]  # type: ignore[attr-defined]
    [fill] = result["fills"]  # type: ignore[misc]
    assert fill["order_ref"] == "O-1"
    assert fill["execution"].price == 185.62  # AAPL ask at 09:40: 185.00 + 0.02 + 0.60
    assert fill["commission_report"].commissionAndFees == 1.0
    assert "Filled" in result["statuses"]  # type: ignore[operator]
    [position] = result["positions"]  # type: ignore[misc]
    assert (position.contract.symbol, position.quantity, position.avg_cost) == (
        "AAPL",
        Decimal(5),
        185.62,
    )


# -- the CLI --------------------------------------------------------------------------------------


def test_cli_serves_a_catalog_on_loopback(catalog_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adapters.ib_gateway_sim",
            "--catalog",
            str(catalog_path),
            "--port",
            str(port),
            "--speed",
            "60",
            "--start",
            "2024-01-02 09:40",
        ],
        cwd=Path(__file__).resolve().parents[1],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        while "listening" not in line:
            assert line, "the simulator exited before listening"
            line = process.stderr.readline()
        assert f"127.0.0.1:{port}" in line
        client = IB()
        client.connect("127.0.0.1", port, clientId=1, timeout=5)
        [spy] = client.qualifyContracts(Stock("SPY", "SMART", "USD"))
        assert spy.primaryExchange == "ARCA"
        client.disconnect()
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- more of the protocol through ib_insync -------------------------------------------------------


def test_modify_reprices_a_resting_order_and_it_fills(ib: IB) -> None:
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    order = LimitOrder("BUY", 10, 460.00)
    trade = ib.placeOrder(spy, order)
    wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    order.lmtPrice = 471.00
    ib.placeOrder(spy, order)  # same order id: a modification
    wait_until(ib, lambda: trade.orderStatus.status == "Filled")
    assert trade.fills[0].execution.price == 470.62
    ib.client.placeOrder(order.orderId, spy, order)  # ib_insync itself refuses; send it raw
    wait_until(ib, lambda: 104 in [c for _, c, _ in ib.errors])  # type: ignore[attr-defined]


def test_streaming_bars_and_trades_follow_the_replay(sim: GatewayThread, ib: IB) -> None:
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    realtime = ib.reqRealTimeBars(spy, 5, "MIDPOINT", useRTH=False)
    kept = ib.reqHistoricalData(
        spy, "", "300 S", "1 min", "TRADES", useRTH=True, formatDate=2, keepUpToDate=True
    )
    trades = ib.reqTickByTickData(spy, "AllLast")
    prints: list = []  # ib_insync clears ticker.tickByTicks after each batch: collect them
    trades.updateEvent += lambda ticker: prints.extend(ticker.tickByTicks)
    # the requests travel on the socket: let the gateway hold all three before time moves
    wait_until(
        ib,
        lambda: sum(len(s.subscriptions) for s in sim.call(lambda: list(sim.gateway.sessions)))
        == 3,
    )
    # 09:35..09:38 in the reply; the 09:39 bar (closing at 09:40, now) follows as an update
    wait_until(ib, lambda: len(kept) == 5)
    assert [b.close for b in kept] == [470.36, 470.42, 470.48, 470.54, 470.60]
    sim.call(sim.gateway.clock.advance_to, (START + pd.Timedelta(seconds=60)).value)
    wait_until(ib, lambda: len(realtime) >= 12 and len(prints) >= 1)
    # twelve five-second bars of midpoints over a minute whose quotes move a cent every 10 s
    assert realtime[0].time == (START).to_pydatetime()
    assert [b.close for b in realtime[:12]] == [
        470.61,
        470.61,
        470.62,
        470.62,
        470.63,
        470.63,
        470.64,
        470.64,
        470.65,
        470.65,
        470.66,
        470.66,
    ]
    wait_until(ib, lambda: kept[-1].close == 470.66)  # the 09:40 bar, closed at 09:41
    assert [(t.price, t.size) for t in prints] == [
        (470.66, 1000)
    ]  # one print a minute, at its close


def test_bracket_children_wait_for_the_parent_and_cancel_each_other(
    sim: GatewayThread, ib: IB
) -> None:
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    resting = [ib.placeOrder(spy, o) for o in ib.bracketOrder("BUY", 10, 460.00, 470.70, 470.50)]
    wait_until(
        ib,
        lambda: [t.orderStatus.status for t in resting]
        == ["Submitted", "PreSubmitted", "PreSubmitted"],
    )
    ib.cancelOrder(resting[0].order)  # cancelling the parent cancels its children
    wait_until(ib, lambda: all(t.orderStatus.status == "Cancelled" for t in resting))

    parent, take_profit, stop_loss = [
        ib.placeOrder(spy, o) for o in ib.bracketOrder("BUY", 10, 471.00, 470.70, 470.50)
    ]
    wait_until(
        ib,
        lambda: parent.orderStatus.status == "Filled"
        and take_profit.orderStatus.status == "Submitted",
    )
    assert stop_loss.orderStatus.status == "Submitted"
    sim.call(sim.gateway.clock.advance_to, (START + pd.Timedelta(seconds=100)).value)  # bid 470.70
    wait_until(
        ib,
        lambda: take_profit.orderStatus.status == "Filled"
        and stop_loss.orderStatus.status == "Cancelled",
    )
    assert take_profit.fills[0].execution.price == 470.70
    assert stop_loss.fills == []
    assert ib.positions() == [] or ib.positions()[0].position == 0


def test_restore_with_data_lost_is_1101_and_drops_subscriptions(sim: GatewayThread, ib: IB) -> None:
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    ticker = ib.reqMktData(spy)
    wait_until(ib, lambda: ticker.bid == 470.60)
    sim.call(sim.gateway.lose_connectivity)
    sim.call(sim.gateway.restore_connectivity, True)
    wait_until(ib, lambda: [c for _, c, _ in ib.errors] == [1100, 1101])  # type: ignore[attr-defined]
    sim.call(sim.gateway.clock.advance_to, (START + pd.Timedelta(seconds=30)).value)
    ib.sleep(0.2)
    assert ticker.bid == 470.60  # the client must resubscribe after 1101
    ib.cancelMktData(spy)
    ticker = ib.reqMktData(spy)
    wait_until(ib, lambda: ticker.bid == 470.63)


def test_unserved_messages_are_answered_with_an_error_not_silence(ib: IB) -> None:
    ib.client.send(
        10, 5, 1, 0, "SPY", "STK", "", 0.0, "", "", "SMART", "", "USD", "", "", 5, False, ""
    )
    wait_until(ib, lambda: bool(ib.errors))  # type: ignore[attr-defined]
    [(req_id, code, text)] = ib.errors  # type: ignore[attr-defined]
    assert code == 321 and "message 10" in text


def test_fault_scripts_are_validated_and_applied(
    tmp_path: Path, sim: GatewayThread, ib: IB
) -> None:
    from adapters.ib_gateway_sim.faults import FaultScriptError
    from adapters.ib_gateway_sim.faults import load_fault_script
    from adapters.ib_gateway_sim.faults import run_fault_script

    bad = tmp_path / "bad.json"
    bad.write_text('[{"after": 1, "fault": "connectivity_lost"}, {"after": -1, "fault": "meteor"}]')
    with pytest.raises(
        FaultScriptError, match=r"bad.json step 1: fault must be one of .*got 'meteor'"
    ):
        load_fault_script(bad)
    script = tmp_path / "faults.json"
    script.write_text(
        '[{"after": 0, "fault": "market_farm_outage"}, {"after": 0.1, "fault": "market_farm_restored"},'
        ' {"after": 0.1, "fault": "reject_next_order", "reason": "scripted"}]',
    )
    sim.run(run_fault_script(sim.gateway, load_fault_script(script)))
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    trade = ib.placeOrder(spy, MarketOrder("BUY", 1))
    wait_until(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert [c for _, c, _ in ib.errors] == [2103, 2104, 201]  # type: ignore[attr-defined]
