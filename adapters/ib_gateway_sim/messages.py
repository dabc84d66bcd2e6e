"""
Message ids and the field layouts of outgoing messages at server version 176.

Each builder returns the list of fields of one message, message id first, exactly as
nautilus-ibapi's ``decoder.py``/``orderdecoder.py`` and ib_insync's ``decoder.py`` read them at
that version (ib_insync unpacks some messages by exact count, so no field may be missing or
extra). The tests round-trip every builder through both decoders.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum

from adapters.ib_gateway_sim.protocol import UNSET_DOUBLE
from adapters.ib_gateway_sim.protocol import UNSET_INTEGER
from adapters.ib_gateway_sim.protocol import Field


class In(IntEnum):
    """Client -> gateway message ids."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCOUNT_UPDATES = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DATA = 9
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_HISTORICAL_DATA = 20
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_REAL_TIME_BARS = 50
    CANCEL_REAL_TIME_BARS = 51
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_TICK_BY_TICK_DATA = 97
    CANCEL_TICK_BY_TICK_DATA = 98
    REQ_COMPLETED_ORDERS = 99


class Out(IntEnum):
    """Gateway -> client message ids."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ORDER_STATUS = 3
    ERR_MSG = 4
    OPEN_ORDER = 5
    ACCT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    EXECUTION_DATA = 11
    MANAGED_ACCTS = 15
    HISTORICAL_DATA = 17
    TICK_STRING = 46
    CURRENT_TIME = 49
    REAL_TIME_BARS = 50
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    MARKET_DATA_TYPE = 58
    COMMISSION_REPORT = 59
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    TICK_REQ_PARAMS = 81
    HISTORICAL_DATA_UPDATE = 90
    TICK_BY_TICK = 99
    COMPLETED_ORDERS_END = 102


class TickType(IntEnum):
    BID_SIZE = 0
    BID = 1
    ASK = 2
    ASK_SIZE = 3
    LAST = 4
    LAST_SIZE = 5
    VOLUME = 8
    CLOSE = 9
    LAST_TIMESTAMP = 45


@dataclass(frozen=True)
class ContractSpec:
    """What the gateway knows of one tradable (or index) contract."""

    con_id: int
    symbol: str
    sec_type: str  # STK or IND
    primary_exchange: str  # IB's name: NASDAQ, NYSE, ARCA, ...
    long_name: str
    isin: str
    stock_type: str  # COMMON, ETF, or "" for an index
    currency: str = "USD"
    min_tick: Decimal = Decimal("0.01")

    @property
    def routing_exchange(self) -> str:
        return "SMART" if self.sec_type == "STK" else self.primary_exchange

    def short_fields(self, exchange: str | None = None) -> list[Field]:
        """conId..tradingClass as open orders, executions and positions carry them."""
        return [
            self.con_id,
            self.symbol,
            self.sec_type,
            "",  # lastTradeDateOrContractMonth
            0.0,  # strike
            "",  # right
            "",  # multiplier
            exchange if exchange is not None else self.routing_exchange,
            self.currency,
            self.symbol,  # localSymbol
            self.symbol if self.sec_type == "STK" else "",  # tradingClass
        ]


# -- session ---------------------------------------------------------------------------------


def managed_accounts(accounts: list[str]) -> list[Field]:
    return [Out.MANAGED_ACCTS, 1, ",".join(accounts)]


def next_valid_id(order_id: int) -> list[Field]:
    return [Out.NEXT_VALID_ID, 1, order_id]


def error(req_id: int, code: int, text: str, advanced_reject_json: str = "") -> list[Field]:
    return [Out.ERR_MSG, 2, req_id, code, text, advanced_reject_json]


def current_time(epoch_seconds: int) -> list[Field]:
    return [Out.CURRENT_TIME, 1, epoch_seconds]


# -- contracts -------------------------------------------------------------------------------


def contract_data(
    req_id: int, spec: ContractSpec, trading_hours: str, liquid_hours: str
) -> list[Field]:
    order_types = (
        "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AON,AVGCOST,BASKET,COND,CONDORDER,DAY,"
        "DEACT,GAT,GTC,GTD,GTT,HID,IOC,LIT,LMT,MIT,MKT,MOC,MTL,NONALGO,OCA,OPG,PAON,"
        "PEGBENCH,POSTONLY,REL,SCALE,STP,STPLMT,TRAIL,WHATIF"
    )
    fields: list[Field] = [
        Out.CONTRACT_DATA,
        req_id,
        spec.symbol,
        spec.sec_type,
        "",  # lastTradeDateOrContractMonth
        0.0,  # strike
        "",  # right
        spec.routing_exchange,
        spec.currency,
        spec.symbol,  # localSymbol
        spec.symbol if spec.sec_type == "STK" else "",  # marketName
        spec.symbol if spec.sec_type == "STK" else "",  # tradingClass
        spec.con_id,
        spec.min_tick,
        "",  # multiplier
        order_types,
        f"SMART,{spec.primary_exchange}" if spec.sec_type == "STK" else spec.primary_exchange,
        1,  # priceMagnifier
        0,  # underConId
        spec.long_name,
        spec.primary_exchange,
        "",  # contractMonth
        "",  # industry
        "",  # category
        "",  # subcategory
        "US/Eastern",
        trading_hours,
        liquid_hours,
        "",  # evRule
        0,  # evMultiplier
    ]
    if spec.isin:
        fields += [1, "ISIN", spec.isin]
    else:
        fields += [0]
    fields += [
        1,  # aggGroup
        "",  # underSymbol
        "",  # underSecType
        "26",  # marketRuleIds
        "",  # realExpirationDate
        spec.stock_type,
        Decimal("1") if spec.sec_type == "STK" else "",  # minSize
        Decimal("1") if spec.sec_type == "STK" else "",  # sizeIncrement
        Decimal("100") if spec.sec_type == "STK" else "",  # suggestedSizeIncrement
    ]
    return fields


def contract_data_end(req_id: int) -> list[Field]:
    return [Out.CONTRACT_DATA_END, 1, req_id]


# -- market data -----------------------------------------------------------------------------


def market_data_type(req_id: int, data_type: int) -> list[Field]:
    return [Out.MARKET_DATA_TYPE, 1, req_id, data_type]


def tick_req_params(req_id: int, min_tick: Decimal, bbo_exchange: str) -> list[Field]:
    return [Out.TICK_REQ_PARAMS, req_id, min_tick, bbo_exchange, 3]


def tick_price(
    req_id: int, tick_type: int, price: Decimal, size: Decimal, attrib_mask: int = 0
) -> list[Field]:
    return [Out.TICK_PRICE, 6, req_id, tick_type, price, size, attrib_mask]


def tick_size(req_id: int, tick_type: int, size: Decimal) -> list[Field]:
    return [Out.TICK_SIZE, 6, req_id, tick_type, size]


def tick_string(req_id: int, tick_type: int, value: str) -> list[Field]:
    return [Out.TICK_STRING, 6, req_id, tick_type, value]


def tick_by_tick_bid_ask(
    req_id: int,
    epoch_seconds: int,
    bid: Decimal,
    ask: Decimal,
    bid_size: Decimal,
    ask_size: Decimal,
) -> list[Field]:
    return [Out.TICK_BY_TICK, req_id, 3, epoch_seconds, bid, ask, bid_size, ask_size, 0]


def tick_by_tick_last(
    req_id: int,
    tick_type: int,
    epoch_seconds: int,
    price: Decimal,
    size: Decimal,
    exchange: str,
) -> list[Field]:
    return [Out.TICK_BY_TICK, req_id, tick_type, epoch_seconds, price, size, 0, exchange, ""]


def tick_by_tick_midpoint(req_id: int, epoch_seconds: int, mid: Decimal) -> list[Field]:
    return [Out.TICK_BY_TICK, req_id, 4, epoch_seconds, mid]


@dataclass(frozen=True)
class BarRow:
    """One bar as IB reports it: stamped at its open, volume and WAP as decimals."""

    date: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    wap: Decimal
    count: int


def historical_data(req_id: int, start: str, end: str, bars: list[BarRow]) -> list[Field]:
    fields: list[Field] = [Out.HISTORICAL_DATA, req_id, start, end, len(bars)]
    for bar in bars:
        fields += [bar.date, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.wap, bar.count]
    return fields


def historical_data_update(req_id: int, bar: BarRow) -> list[Field]:
    return [
        Out.HISTORICAL_DATA_UPDATE,
        req_id,
        bar.count,
        bar.date,
        bar.open,
        bar.close,
        bar.high,
        bar.low,
        bar.wap,
        bar.volume,
    ]


def real_time_bar(req_id: int, epoch_seconds: int, bar: BarRow) -> list[Field]:
    return [
        Out.REAL_TIME_BARS,
        3,
        req_id,
        epoch_seconds,
        bar.open,
        bar.high,
        bar.low,
        bar.close,
        bar.volume,
        bar.wap,
        bar.count,
    ]


# -- orders ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderView:
    """The order fields the gateway reports back in openOrder and orderStatus."""

    order_id: int
    client_id: int
    perm_id: int
    spec: ContractSpec
    action: str
    total_quantity: Decimal
    order_type: str
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    oca_group: str
    account: str
    order_ref: str
    outside_rth: bool
    parent_id: int
    status: str
    filled: Decimal
    remaining: Decimal
    avg_fill_price: Decimal
    last_fill_price: Decimal
    exchange: str
    good_till_date: str = ""


def _price_or_unset(price: Decimal | None) -> Field:
    return price if price is not None else UNSET_DOUBLE


def open_order(o: OrderView) -> list[Field]:
    """openOrder at server version 176 (no version field: ORDER_CONTAINER and later)."""
    fields: list[Field] = [Out.OPEN_ORDER, o.order_id, *o.spec.short_fields(o.exchange)]
    fields += [
        o.action,
        o.total_quantity,
        o.order_type,
        _price_or_unset(o.lmt_price),
        _price_or_unset(o.aux_price),
        o.tif,
        o.oca_group,
        o.account,
        "O",  # openClose
        0,  # origin: customer
        o.order_ref,
        o.client_id,
        o.perm_id,
        o.outside_rth,
        False,  # hidden
        0.0,  # discretionaryAmt
        "",  # goodAfterTime
        "",  # sharesAllocation (deprecated)
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
        "",  # faProfile (still sent below version 177)
        "",  # modelCode
        o.good_till_date,
        "",  # rule80A
        UNSET_DOUBLE,  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        0,  # auctionStrategy
        UNSET_DOUBLE,  # startingPrice
        UNSET_DOUBLE,  # stockRefPrice
        UNSET_DOUBLE,  # delta
        UNSET_DOUBLE,  # stockRangeLower
        UNSET_DOUBLE,  # stockRangeUpper
        UNSET_INTEGER,  # displaySize
        False,  # blockOrder
        False,  # sweepToFill
        False,  # allOrNone
        UNSET_INTEGER,  # minQty
        3,  # ocaType
        False,  # eTradeOnly
        False,  # firmQuoteOnly
        UNSET_DOUBLE,  # nbboPriceCap
        o.parent_id,
        0,  # triggerMethod
        UNSET_DOUBLE,  # volatility
        0,  # volatilityType
        "",  # deltaNeutralOrderType: empty, so no delta-neutral block follows
        UNSET_DOUBLE,  # deltaNeutralAuxPrice
    ]
    fields += [
        False,  # continuousUpdate
        0,  # referencePriceType
        UNSET_DOUBLE,  # trailStopPrice
        UNSET_DOUBLE,  # trailingPercent
        UNSET_DOUBLE,  # basisPoints
        UNSET_INTEGER,  # basisPointsType
        "",  # comboLegsDescrip
        0,  # comboLegs count
        0,  # orderComboLegs count
        0,  # smartComboRoutingParams count
        UNSET_INTEGER,  # scaleInitLevelSize
        UNSET_INTEGER,  # scaleSubsLevelSize
        UNSET_DOUBLE,  # scalePriceIncrement
        "",  # hedgeType
        False,  # optOutSmartRouting
        "",  # clearingAccount
        "IB",  # clearingIntent
        False,  # notHeld
        False,  # deltaNeutralContract present
        "",  # algoStrategy
        False,  # solicited
        False,  # whatIf
        o.status,
        "",  # initMarginBefore
        "",  # maintMarginBefore
        "",  # equityWithLoanBefore
        "",  # initMarginChange
        "",  # maintMarginChange
        "",  # equityWithLoanChange
        "",  # initMarginAfter
        "",  # maintMarginAfter
        "",  # equityWithLoanAfter
        UNSET_DOUBLE,  # commission
        UNSET_DOUBLE,  # minCommission
        UNSET_DOUBLE,  # maxCommission
        "",  # commissionCurrency
        "",  # warningText
        False,  # randomizeSize
        False,  # randomizePrice
        0,  # conditions count
        "",  # adjustedOrderType
        UNSET_DOUBLE,  # triggerPrice
        UNSET_DOUBLE,  # trailStopPrice
        UNSET_DOUBLE,  # lmtPriceOffset
        UNSET_DOUBLE,  # adjustedStopPrice
        UNSET_DOUBLE,  # adjustedStopLimitPrice
        UNSET_DOUBLE,  # adjustedTrailingAmount
        0,  # adjustableTrailingUnit
        "",  # softDollarTier name
        "",  # softDollarTier value
        "",  # softDollarTier displayName
        UNSET_DOUBLE,  # cashQty
        False,  # dontUseAutoPriceForHedge
        False,  # isOmsContainer
        False,  # discretionaryUpToLimitPrice
        False,  # usePriceMgmtAlgo
        UNSET_INTEGER,  # duration
        UNSET_INTEGER,  # postToAts
        False,  # autoCancelParent
        UNSET_INTEGER,  # minTradeQty
        UNSET_INTEGER,  # minCompeteSize
        UNSET_DOUBLE,  # competeAgainstBestOffset
        UNSET_DOUBLE,  # midOffsetAtWhole
        UNSET_DOUBLE,  # midOffsetAtHalf
    ]
    return fields


def open_order_end() -> list[Field]:
    return [Out.OPEN_ORDER_END, 1]


def order_status(o: OrderView, why_held: str = "") -> list[Field]:
    return [
        Out.ORDER_STATUS,
        o.order_id,
        o.status,
        o.filled,
        o.remaining,
        o.avg_fill_price,
        o.perm_id,
        o.parent_id,
        o.last_fill_price,
        o.client_id,
        why_held,
        0.0,  # mktCapPrice
    ]


@dataclass(frozen=True)
class ExecutionView:
    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    spec: ContractSpec
    time: str  # "YYYYMMDD HH:MM:SS America/New_York"
    account: str
    exchange: str
    side: str  # BOT or SLD
    shares: Decimal
    price: Decimal
    cum_qty: Decimal
    avg_price: Decimal
    order_ref: str
    commission: Decimal
    realized_pnl: Decimal | None


def execution_data(req_id: int, e: ExecutionView) -> list[Field]:
    return [
        Out.EXECUTION_DATA,
        req_id,
        e.order_id,
        *e.spec.short_fields(e.exchange),
        e.exec_id,
        e.time,
        e.account,
        e.exchange,
        e.side,
        e.shares,
        e.price,
        e.perm_id,
        e.client_id,
        0,  # liquidation
        e.cum_qty,
        e.avg_price,
        e.order_ref,
        "",  # evRule
        UNSET_DOUBLE,  # evMultiplier
        "",  # modelCode
        1,  # lastLiquidity: added
    ]


def execution_data_end(req_id: int) -> list[Field]:
    return [Out.EXECUTION_DATA_END, 1, req_id]


def commission_report(e: ExecutionView) -> list[Field]:
    return [
        Out.COMMISSION_REPORT,
        1,
        e.exec_id,
        e.commission,
        e.spec.currency,
        e.realized_pnl if e.realized_pnl is not None else UNSET_DOUBLE,
        UNSET_DOUBLE,  # yield
        UNSET_INTEGER,  # yieldRedemptionDate
    ]


def completed_orders_end() -> list[Field]:
    return [Out.COMPLETED_ORDERS_END]


# -- account and portfolio -------------------------------------------------------------------


def position_data(
    account: str, spec: ContractSpec, position: Decimal, avg_cost: Decimal
) -> list[Field]:
    return [
        Out.POSITION_DATA,
        3,
        account,
        *spec.short_fields(spec.primary_exchange),
        position,
        avg_cost,
    ]


def position_end() -> list[Field]:
    return [Out.POSITION_END, 1]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> list[Field]:
    return [Out.ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency]


def account_summary_end(req_id: int) -> list[Field]:
    return [Out.ACCOUNT_SUMMARY_END, 1, req_id]


def account_value(key: str, value: str, currency: str, account: str) -> list[Field]:
    return [Out.ACCT_VALUE, 2, key, value, currency, account]


def portfolio_value(
    spec: ContractSpec,
    position: Decimal,
    market_price: Decimal,
    market_value: Decimal,
    average_cost: Decimal,
    unrealized_pnl: Decimal,
    realized_pnl: Decimal,
    account: str,
) -> list[Field]:
    contract = spec.short_fields(spec.primary_exchange)  # the portfolio carries primaryExchange
    return [
        Out.PORTFOLIO_VALUE,
        8,
        *contract,
        position,
        market_price,
        market_value,
        average_cost,
        unrealized_pnl,
        realized_pnl,
        account,
    ]


def account_update_time(hh_mm: str) -> list[Field]:
    return [Out.ACCT_UPDATE_TIME, 1, hh_mm]


def account_download_end(account: str) -> list[Field]:
    return [Out.ACCT_DOWNLOAD_END, 1, account]


def account_update_multi(
    req_id: int, account: str, key: str, value: str, currency: str
) -> list[Field]:
    return [Out.ACCOUNT_UPDATE_MULTI, 1, req_id, account, "", key, value, currency]


def account_update_multi_end(req_id: int) -> list[Field]:
    return [Out.ACCOUNT_UPDATE_MULTI_END, 1, req_id]


def tick_snapshot_end(req_id: int) -> list[Field]:
    return [57, 1, req_id]
