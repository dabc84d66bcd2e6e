"""
Every outgoing message the simulator builds, decoded by both real client decoders at server
version 176: nautilus-ibapi's Decoder must consume exactly the fields sent (no more, no fewer),
and ib_insync's Decoder must hand the wrapper the values we meant.
"""

from __future__ import annotations

from decimal import Decimal
from unittest.mock import MagicMock

import pytest
from ib_insync.decoder import Decoder as InsyncDecoder
from ibapi.const import UNSET_DOUBLE
from ibapi.decoder import Decoder as IbapiDecoder
from ibapi.wrapper import EWrapper

from adapters.ib_gateway_sim import messages as m
from adapters.ib_gateway_sim.protocol import SERVER_VERSION
from adapters.ib_gateway_sim.protocol import encode_message
from adapters.ib_gateway_sim.protocol import split_fields

SPEC = m.ContractSpec(
    con_id=756733,
    symbol="SPY",
    sec_type="STK",
    primary_exchange="ARCA",
    long_name="SPDR S&P 500 ETF",
    isin="US78462F1030",
    stock_type="ETF",
)
ORDER = m.OrderView(
    order_id=12,
    client_id=3,
    perm_id=1000001,
    spec=SPEC,
    action="BUY",
    total_quantity=Decimal(10),
    order_type="LMT",
    lmt_price=Decimal("470.25"),
    aux_price=None,
    tif="DAY",
    oca_group="",
    account="DU1234567",
    order_ref="O-1:12",
    outside_rth=True,
    parent_id=0,
    status="Submitted",
    filled=Decimal(4),
    remaining=Decimal(6),
    avg_fill_price=Decimal("470.20"),
    last_fill_price=Decimal("470.20"),
    exchange="SMART",
)
EXECUTION = m.ExecutionView(
    exec_id="0000e1a7.00000001.01.01",
    order_id=12,
    client_id=3,
    perm_id=1000001,
    spec=SPEC,
    time="20240102 09:40:00 America/New_York",
    account="DU1234567",
    exchange="ARCA",
    side="BOT",
    shares=Decimal(4),
    price=Decimal("470.20"),
    cum_qty=Decimal(4),
    avg_price=Decimal("470.20"),
    order_ref="O-1:12",
    commission=Decimal("1.00"),
    realized_pnl=None,
)
BAR = m.BarRow(
    "1704205800",
    Decimal("470.01"),
    Decimal("470.08"),
    Decimal("470.00"),
    Decimal("470.06"),
    Decimal(1000),
    Decimal("470.05"),
    1,
)

MESSAGES = {
    "managedAccounts": m.managed_accounts(["DU1234567"]),
    "nextValidId": m.next_valid_id(13),
    "error": m.error(12, 201, "Order rejected - reason:test"),
    "currentTime": m.current_time(1704206400),
    "contractDetails": m.contract_data(
        7, SPEC, "20240102:0400-20240102:2000", "20240102:0930-20240102:1600"
    ),
    "contractDetailsEnd": m.contract_data_end(7),
    "marketDataType": m.market_data_type(8, 1),
    "tickReqParams": m.tick_req_params(8, Decimal("0.01"), "9c0001"),
    "tickPrice": m.tick_price(8, m.TickType.BID, Decimal("470.60"), Decimal(300)),
    "tickSize": m.tick_size(8, m.TickType.VOLUME, Decimal(1000)),
    "tickString": m.tick_string(8, m.TickType.LAST_TIMESTAMP, "1704206400"),
    "tickSnapshotEnd": m.tick_snapshot_end(8),
    "tickByTickBidAsk": m.tick_by_tick_bid_ask(
        9, 1704206400, Decimal("470.60"), Decimal("470.62"), Decimal(300), Decimal(200)
    ),
    "tickByTickAllLast": m.tick_by_tick_last(
        9, 1, 1704206400, Decimal("470.61"), Decimal(100), "ARCA"
    ),
    "tickByTickMidPoint": m.tick_by_tick_midpoint(9, 1704206400, Decimal("470.61")),
    "historicalData": m.historical_data(
        10, "20240102 09:30:00 America/New_York", "20240102 09:40:00 America/New_York", [BAR, BAR]
    ),
    "historicalDataUpdate": m.historical_data_update(10, BAR),
    "realtimeBar": m.real_time_bar(11, 1704206400, BAR),
    "openOrder": m.open_order(ORDER),
    "openOrderEnd": m.open_order_end(),
    "orderStatus": m.order_status(ORDER),
    "execDetails": m.execution_data(-1, EXECUTION),
    "execDetailsEnd": m.execution_data_end(5),
    "commissionReport": m.commission_report(EXECUTION),
    "completedOrdersEnd": m.completed_orders_end(),
    "position": m.position_data("DU1234567", SPEC, Decimal(10), Decimal("470.62")),
    "positionEnd": m.position_end(),
    "accountSummary": m.account_summary(4, "DU1234567", "NetLiquidation", "100000.00", "USD"),
    "accountSummaryEnd": m.account_summary_end(4),
    "updateAccountValue": m.account_value("NetLiquidation", "100000.00", "USD", "DU1234567"),
    "updatePortfolio": m.portfolio_value(
        SPEC,
        Decimal(10),
        Decimal("470.61"),
        Decimal("4706.10"),
        Decimal("470.62"),
        Decimal("-0.10"),
        Decimal(0),
        "DU1234567",
    ),
    "updateAccountTime": m.account_update_time("09:40"),
    "accountDownloadEnd": m.account_download_end("DU1234567"),
    "accountUpdateMulti": m.account_update_multi(
        6, "DU1234567", "NetLiquidation", "100000.00", "USD"
    ),
    "accountUpdateMultiEnd": m.account_update_multi_end(6),
}

# the ibapi wrapper method each message ends in (where its name differs from ours)
IBAPI_METHOD = {
    "error": "error",
    "tickByTickBidAsk": "tickByTickBidAsk",
    "tickByTickAllLast": "tickByTickAllLast",
    "tickByTickMidPoint": "tickByTickMidPoint",
    "historicalData": "historicalDataEnd",
    "commissionReport": "commissionAndFeesReport",
}


def _wire(name: str) -> list[str]:
    return split_fields(encode_message(MESSAGES[name])[4:])


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_ibapi_decoder_consumes_exactly_the_fields_sent(name: str) -> None:
    fields = _wire(name)
    wrapper = MagicMock(spec=EWrapper)
    decoder = IbapiDecoder(wrapper, SERVER_VERSION)
    info = decoder.msgId2handleInfo[int(fields[0])]
    rest = [f.encode() for f in fields[1:]]
    if info.processMeth is not None:
        remaining = iter(rest)
        info.processMeth(decoder, remaining)
        assert next(remaining, None) is None, f"{name}: fields left over"
    else:
        decoder.interpretWithSignature(rest, info)  # checks the count exactly
    method = IBAPI_METHOD.get(name, name)
    assert getattr(wrapper, method).called, f"{name}: ibapi never called {method}"


def test_ibapi_reads_contract_details_the_adapter_needs() -> None:
    wrapper = MagicMock(spec=EWrapper)
    decoder = IbapiDecoder(wrapper, SERVER_VERSION)
    fields = iter([f.encode() for f in _wire("contractDetails")[1:]])
    decoder.processContractDataMsg(fields)
    req_id, details = wrapper.contractDetails.call_args.args
    assert req_id == 7
    c = details.contract
    assert (c.conId, c.symbol, c.secType, c.exchange, c.primaryExchange) == (
        756733,
        "SPY",
        "STK",
        "SMART",
        "ARCA",
    )
    assert details.minTick == 0.01 and details.stockType == "ETF"
    assert [(t.tag, t.value) for t in details.secIdList] == [("ISIN", "US78462F1030")]
    assert details.liquidHours == "20240102:0930-20240102:1600"


def test_ibapi_reads_the_open_order_fields_the_adapter_maps() -> None:
    wrapper = MagicMock(spec=EWrapper)
    decoder = IbapiDecoder(wrapper, SERVER_VERSION)
    decoder.processOpenOrder(iter([f.encode() for f in _wire("openOrder")[1:]]))
    order_id, contract, order, state = wrapper.openOrder.call_args.args
    assert order_id == 12 and contract.conId == 756733
    assert (order.action, order.totalQuantity, order.orderType, order.lmtPrice) == (
        "BUY",
        Decimal(10),
        "LMT",
        470.25,
    )
    assert (order.tif, order.account, order.orderRef, order.outsideRth) == (
        "DAY",
        "DU1234567",
        "O-1:12",
        True,
    )
    assert (order.clientId, order.permId, state.status) == (3, 1000001, "Submitted")
    # the adapter tells a stop from a limit by auxPrice != UNSET_DOUBLE
    assert order.auxPrice == UNSET_DOUBLE


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_ib_insync_decoder_delivers_each_message(name: str) -> None:
    wrapper = MagicMock()
    decoder = InsyncDecoder(wrapper, SERVER_VERSION)
    decoder.logger = MagicMock()  # ib_insync logs decoding failures instead of raising
    fields = _wire(name)
    decoder.handlers[int(fields[0])](fields)
    decoder.logger.exception.assert_not_called()
    assert wrapper.method_calls, f"{name}: ib_insync called nothing"


def test_ib_insync_reads_open_order_and_execution_values() -> None:
    wrapper = MagicMock()
    decoder = InsyncDecoder(wrapper, SERVER_VERSION)
    decoder.logger = MagicMock()
    decoder.handlers[5](_wire("openOrder"))
    order_id, contract, order, state = wrapper.openOrder.call_args.args
    assert (order_id, order.lmtPrice, order.totalQuantity, order.outsideRth, state.status) == (
        12,
        470.25,
        10.0,
        True,
        "Submitted",
    )
    decoder.handlers[11](_wire("execDetails"))
    req_id, contract, execution = wrapper.execDetails.call_args.args
    assert (execution.execId, execution.shares, execution.price, execution.cumQty) == (
        EXECUTION.exec_id,
        4.0,
        470.2,
        4.0,
    )
    assert execution.time.isoformat() == "2024-01-02T14:40:00+00:00"
    decoder.handlers[59](_wire("commissionReport"))
    [report] = wrapper.commissionReport.call_args.args
    assert (report.commission, report.currency) == (1.0, "USD")


# -- historical request parsing (pure) ------------------------------------------------------------

import pandas as pd  # noqa: E402

from adapters.ib_gateway_sim.history import HistoryRequestError  # noqa: E402
from adapters.ib_gateway_sim.history import aggregate  # noqa: E402
from adapters.ib_gateway_sim.history import duration_start  # noqa: E402
from adapters.ib_gateway_sim.history import parse_end  # noqa: E402
from adapters.ib_gateway_sim.market import MinuteBar  # noqa: E402

NOW = 1_704_206_400_000_000_000  # 2024-01-02 14:40 UTC
TZ = "America/New_York"


def test_end_date_time_in_every_form_the_clients_send() -> None:
    assert parse_end("", NOW) == NOW
    assert parse_end("20240102 14:40:00 UTC", NOW) == NOW  # Nautilus: "%Y%m%d %H:%M:%S %Z"
    assert parse_end("20240102-14:40:00", NOW) == NOW  # ib_insync with a UTC datetime
    assert parse_end("20240102 09:40:00 US/Eastern", NOW) == NOW
    with pytest.raises(HistoryRequestError, match="endDateTime 'yesterday'"):
        parse_end("yesterday", NOW)


def test_durations_and_bar_sizes_are_validated_by_name() -> None:
    assert duration_start("600 S", NOW) == NOW - 600 * 10**9
    # Tuesday 2024-01-02: "1 D" is today's session, "2 D" reaches back over the weekend and
    # the New Year holiday to Friday 2023-12-29, from 04:00 exchange time
    assert duration_start("1 D", NOW) == pd.Timestamp("2024-01-02 04:00", tz=TZ).value
    assert duration_start("2 D", NOW) == pd.Timestamp("2023-12-29 04:00", tz=TZ).value
    with pytest.raises(HistoryRequestError, match="durationStr"):
        duration_start("10 minutes", NOW)
    with pytest.raises(HistoryRequestError, match="barSizeSetting '7 mins'"):
        aggregate([], "7 mins", use_rth=False, format_date=2)


def test_daily_bars_group_by_exchange_date_and_skip_extended_hours_with_rth() -> None:
    minute = 60 * 10**9
    d = Decimal

    def bar(close_ns: int, price: str) -> MinuteBar:
        return MinuteBar(close_ns, d(price), d(price), d(price), d(price), d(100))

    open_ns = NOW - 10 * minute  # 09:30 ET
    premarket = bar(open_ns - 30 * minute, "1.00")  # 09:00 ET, outside the regular session
    regular = [bar(open_ns + minute, "2.00"), bar(open_ns + 2 * minute, "3.00")]
    [(close, row)] = aggregate([premarket, *regular], "1 day", use_rth=True, format_date=1)
    assert (row.date, row.open, row.close, row.volume, row.count) == ("20240102", 2, 3, 200, 2)
    [(close, row)] = aggregate([premarket, *regular], "1 day", use_rth=False, format_date=1)
    assert (row.open, row.low, row.high, row.count) == (1, 1, 3, 3)


def test_the_replay_presented_as_now_is_shifted_by_whole_minutes() -> None:
    from adapters.ib_gateway_sim.market import as_now_offset

    minute = 60 * 10**9
    wall = pd.Timestamp("2026-11-21 21:19:52.5", tz="UTC").value
    offset = as_now_offset(NOW, wall)
    assert offset % minute == 0 and 0 <= wall - (NOW + offset) < minute
    d = Decimal

    def bar(close_ns: int, price: str) -> MinuteBar:
        return MinuteBar(close_ns, d(price), d(price), d(price), d(price), d(100))

    # two regular-session minutes of the replayed day (09:40-09:42 ET) and one pre-market
    regular = [bar(NOW + minute, "2.00"), bar(NOW + 2 * minute, "3.00")]
    premarket = bar(NOW - 60 * minute, "1.00")
    rows = aggregate([premarket, *regular], "1 min", use_rth=True, format_date=2,
                     wire_offset_ns=offset)
    # regular hours are the replayed day's; the dates are presented (shifted) open times,
    # and the close times stay in replay time for the gateway's own bookkeeping
    assert [(close, row.date) for close, row in rows] == [
        (NOW + minute, str((NOW + offset) // 10**9)),
        (NOW + 2 * minute, str((NOW + offset + minute) // 10**9)),
    ]
