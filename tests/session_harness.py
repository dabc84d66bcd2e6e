"""
Hand-built minute sequences and a low-level BacktestEngine for the session strategy tests.

Bars are stamped at their close, like the catalog's. One SIM venue, one cash account, no
slippage and no commission, so fills are the bar closes the tests compute by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.models import FillModel
from nautilus_trader.config import BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import OmsType
from nautilus_trader.model.objects import Money
from nautilus_trader.trading.strategy import Strategy

from catalog.instruments import BACKTEST_VENUE
from catalog.instruments import make_instrument
from catalog.store import bar_type_for
from catalog.store import bars_from_frame
from strategies.sessions import EXCHANGE_TZ
from tests.refusals import OrderRefuser

Row = tuple[float, float, float, float, float]  # open, high, low, close, volume


def et(date: dt.date, hhmm: str) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.combine(date, dt.time.fromisoformat(hhmm)), tz=EXCHANGE_TZ).tz_convert("UTC")


def flat_rows(price: float, n: int, volume: float = 1000) -> list[Row]:
    return [(price, price, price, price, volume)] * n


def minute_frame(date: dt.date, first_close: str, rows: Sequence[Row], step_minutes: int = 1) -> pd.DataFrame:
    """Bars closing at first_close (ET), then every step_minutes."""
    start = et(date, first_close)
    index = pd.DatetimeIndex([start + pd.Timedelta(minutes=step_minutes * i) for i in range(len(rows))])
    return pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"], index=index)


def session_frame(date: dt.date, price: float = 100.0, volume: float = 1000, until: str = "16:00") -> pd.DataFrame:
    """A flat regular session 09:31..until."""
    n = int((et(date, until) - et(date, "09:31")).total_seconds() // 60) + 1
    return minute_frame(date, "09:31", flat_rows(price, n, volume))


def patch(frame: pd.DataFrame, date: dt.date, hhmm: str, row: Row) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[et(date, hhmm)] = row
    return frame


def bar_type(symbol: str, timeframe: str = "1min") -> BarType:
    return bar_type_for(make_instrument(symbol).id, timeframe)


def run_engine(
    strategies: Sequence[Strategy],
    frames: dict[str, pd.DataFrame],
    timeframes: dict[str, str] | None = None,
    capital: str = "100000",
    refuser: OrderRefuser | None = None,
    fill_model: FillModel | None = None,
) -> BacktestEngine:
    """`refuser`: ends the orders of its plan as a refusal would (tests/refusals.py)."""
    engine = BacktestEngine(
        BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR", bypass_logging=True)),
    )
    engine.add_venue(
        venue=BACKTEST_VENUE,
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        base_currency=USD,
        starting_balances=[Money(Decimal(capital), USD)],
        fill_model=fill_model or FillModel(prob_slippage=0.0, random_seed=42),
    )
    for symbol, frame in frames.items():
        instrument = make_instrument(symbol)
        engine.add_instrument(instrument)
        timeframe = (timeframes or {}).get(symbol, "1min")
        engine.add_data(bars_from_frame(instrument, bar_type_for(instrument.id, timeframe), frame.sort_index()))
    for strategy in strategies:
        engine.add_strategy(strategy)
    if refuser is not None:
        engine.add_actor(refuser)
        refuser.attach(engine.kernel)
    engine.run()
    return engine


def fills(engine: BacktestEngine) -> pd.DataFrame:
    """One row per fill: time (ET), strategy, symbol, side, quantity, price (Decimal), tags."""
    rows = []
    for order in engine.cache.orders():
        for event in order.events:
            if type(event).__name__ != "OrderFilled":
                continue
            rows.append(
                {
                    "time": pd.Timestamp(event.ts_event, tz="UTC").tz_convert(EXCHANGE_TZ),
                    "strategy": str(order.strategy_id),
                    "symbol": order.instrument_id.symbol.value,
                    "side": event.order_side.name,
                    "quantity": Decimal(str(event.last_qty)),
                    "price": Decimal(str(event.last_px)),
                    "tags": ",".join(order.tags or []),
                },
            )
    frame = pd.DataFrame(rows, columns=["time", "strategy", "symbol", "side", "quantity", "price", "tags"])
    return frame.sort_values("time", kind="stable").reset_index(drop=True)
