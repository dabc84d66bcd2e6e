"""
What a finished backtest produced, in exact money: fills, round-trip trades, the equity curve.

Everything here is derived from the engine's own fills report; P&L and commissions are
Decimal. Round trips match each sell against the open buys of the same strategy and symbol
first-in first-out, so a partial exit is its own trade with the entry price of the shares it
actually sold.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.model.data import Bar
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from actors.lots import Lot
from actors.lots import LotBook
from strategies.records import exit_reason

ZERO = Decimal(0)
CENT = Decimal("0.01")


def money(text: str | object) -> Decimal:
    """'1.00 USD' or Money -> Decimal('1.00')."""
    return Decimal(str(text).split()[0])


def _reason_tags(tags: list[str] | None) -> str:
    """An order's tags as its reason; venue instructions (IBOrderTags:{json}) are left out."""
    return ",".join(tag for tag in tags or [] if not tag.startswith("IBOrderTags:"))


def fills_frame(engine: BacktestEngine) -> pd.DataFrame:
    """One row per fill, oldest first, with Decimal quantity, price and commission."""
    report = engine.trader.generate_fills_report()
    columns = ["ts_event", "strategy_id", "instrument_id", "client_order_id", "trade_id",
               "side", "quantity", "price", "commission", "tags"]
    if report.empty:
        return pd.DataFrame(columns=columns)
    orders = {order.client_order_id.value: order for order in engine.cache.orders()}
    frame = pd.DataFrame(
        {
            "ts_event": pd.to_datetime(report["ts_event"], utc=True),
            "strategy_id": report["strategy_id"].astype(str),
            "instrument_id": report["instrument_id"].astype(str),
            "client_order_id": report.index.astype(str),
            "trade_id": report["trade_id"].astype(str),
            "side": report["order_side"].astype(str),
            "quantity": [Decimal(str(q)) for q in report["last_qty"]],
            "price": [Decimal(str(p)) for p in report["last_px"]],
            "commission": [money(c) for c in report["commission"]],
        },
    )
    frame["tags"] = [_reason_tags(orders[c].tags) if c in orders else "" for c in frame["client_order_id"]]
    return frame.sort_values("ts_event", kind="stable").reset_index(drop=True)


def round_trips(fills: pd.DataFrame) -> pd.DataFrame:
    """
    FIFO round trips: one row per closing fill, with gross and net P&L in Decimal. Sales are
    matched with the journal's and the ledger's own lot rule (actors/lots.py), so the report,
    the journal and the book agree on every trade by construction.
    """
    book = LotBook()
    rows = []
    for fill in fills.itertuples(index=False):
        if fill.side == "BUY":
            book.buy(Lot(fill.trade_id, fill.strategy_id, fill.instrument_id, fill.ts_event.value,
                         fill.price, fill.quantity, fill.commission))
            continue
        if fill.quantity > book.held(fill.strategy_id, fill.instrument_id):
            raise ValueError(
                f"fill {fill.trade_id} sells {fill.quantity} {fill.instrument_id} for "
                f"{fill.strategy_id} with no open shares: long-only accounts never go short",
            )
        sale = book.sell(fill.strategy_id, fill.instrument_id, fill.quantity, fill.price,
                         fill.commission, fill.trade_id)
        entry_time = pd.Timestamp(sale.entry_ns, tz="UTC")
        rows.append(
            {
                "entry_time": entry_time,
                "exit_time": fill.ts_event,
                "strategy_name": fill.strategy_id,
                "instrument_id": fill.instrument_id,
                "ticker": fill.instrument_id.split(".")[0],
                "side": "LONG",
                "size": fill.quantity,
                "entry_price": sale.entry_price,
                "exit_price": fill.price,
                "gross_pnl": sale.gross_pnl,
                "commission": sale.charges,
                "pnl": sale.net_pnl,
                "pnl_pct": sale.net_pnl_pct,
                "duration": fill.ts_event - entry_time,
                "exit_reason": exit_reason(fill.tags.split(",")),
            },
        )
    return pd.DataFrame(rows)


def open_lots(fills: pd.DataFrame) -> dict[str, Decimal]:
    """Shares still held per instrument after all fills."""
    held: dict[str, Decimal] = {}
    for fill in fills.itertuples(index=False):
        sign = 1 if fill.side == "BUY" else -1
        held[fill.instrument_id] = held.get(fill.instrument_id, ZERO) + sign * fill.quantity
    return {k: v for k, v in held.items() if v != 0}


def load_closes(
    catalog: ParquetDataCatalog,
    bar_types: list[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> pd.DataFrame:
    """Minute closes per instrument (columns), indexed by bar close time (UTC)."""
    series = {}
    for bar_type in bar_types:
        bars: list[Bar] = catalog.query(
            data_cls=Bar, identifiers=[bar_type], start=start.isoformat(), end=end.isoformat(),
        )
        index = pd.to_datetime(np.fromiter((b.ts_event for b in bars), dtype=np.int64, count=len(bars)), utc=True)
        series[bar_type.split("-")[0]] = pd.Series(
            np.fromiter((b.close.as_double() for b in bars), dtype=np.float64, count=len(bars)),
            index=index,
        )
    return pd.DataFrame(series).sort_index().ffill()


def _signed(fills: pd.DataFrame) -> np.ndarray:
    return np.where(fills["side"] == "BUY", 1.0, -1.0) * fills["quantity"].astype(float).to_numpy()


def _step(values: np.ndarray, times: pd.Series, index: pd.DatetimeIndex) -> pd.Series:
    """Cumulative sum of per-fill values, as of each time in `index` (a fill at t counts at t)."""
    cumulative = pd.Series(values, index=times.to_numpy()).groupby(level=0).sum().cumsum()
    return cumulative.reindex(index, method="ffill").fillna(0.0)


def positions_over_time(fills: pd.DataFrame, closes: pd.DataFrame) -> pd.DataFrame:
    """Shares held per instrument (columns) at each bar of `closes`."""
    held = pd.DataFrame(0.0, index=closes.index, columns=closes.columns)
    for instrument_id in closes.columns:
        mine = fills[fills["instrument_id"] == instrument_id] if not fills.empty else fills
        if not mine.empty:
            held[instrument_id] = _step(_signed(mine), mine["ts_event"], closes.index)
    return held


def equity_curve(fills: pd.DataFrame, closes: pd.DataFrame, capital: Decimal) -> pd.Series:
    """
    Cash plus shares marked at each minute's close (float, for charts and ratios).

    Exact totals come from `final_equity`; this curve only shapes the drawdown and the
    return series, where float rounding is far below a cent.
    """
    cash = pd.Series(float(capital), index=closes.index)
    if not fills.empty:
        flows = -_signed(fills) * fills["price"].astype(float).to_numpy()
        flows -= fills["commission"].astype(float).to_numpy()
        cash += _step(flows, fills["ts_event"], closes.index)
    value = (positions_over_time(fills, closes) * closes.fillna(0.0)).sum(axis=1)
    return (cash + value).rename("equity")


def final_equity(fills: pd.DataFrame, last_prices: dict[str, Decimal], capital: Decimal) -> Decimal:
    """Exact: capital plus every fill's cash flow, plus open shares at the last price."""
    cash = capital
    for fill in fills.itertuples(index=False):
        sign = -1 if fill.side == "BUY" else 1
        cash += sign * fill.quantity * fill.price - fill.commission
    held = open_lots(fills)
    return cash + sum((qty * last_prices[iid] for iid, qty in held.items()), ZERO)
