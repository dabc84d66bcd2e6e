"""
The session strategies after a refusal: an entry that ends unfilled frees its place, an exit or
stop that ends unfilled is flagged and sent again (tests/refusals.py plays the gate and venue).

The scenario: end-of-day momentum on two uptrend sessions (tests/test_eod_momentum.py), each
with a breakout at 14:45 that buys 172 SPY at 101.50 (35% of 100,000 / 2 = 17,500) and a hard
exit at 15:55 at 101.00; the stop is 2% below the fill, 101.50 * 0.98 = 99.47. Times are to
the minute: the stand-in venue answers a millisecond after an order.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.model.enums import OrderType

from strategies import blocklist
from strategies.session_strategy import SessionStrategy
from tests.refusals import OrderRefuser
from tests.session_harness import et
from tests.session_harness import fills
from tests.session_harness import patch
from tests.session_harness import run_engine
from tests.test_eod_momentum import eod
from tests.test_eod_momentum import uptrend_day
from tests.test_opening_range import VOLUME as ORB_VOLUME
from tests.test_opening_range import day_with_range
from tests.test_opening_range import orb
from tests.test_vwap_reversion import dip_and_reversal
from tests.test_vwap_reversion import vwap_strategy

DAY = dt.date(2024, 3, 5)
DAY2 = dt.date(2024, 3, 6)
REFUSALS = ["denied", "rejected", "canceled", "expired"]
WHY = {"denied": "denied: OrderRefuser denied", "rejected": "rejected: OrderRefuser rejected",
       "canceled": "cancelled", "expired": "expired"}


def two_uptrend_days() -> pd.DataFrame:
    return pd.concat([uptrend_day(DAY), uptrend_day(DAY2)])


def run_eod(plan: dict[str, list[str]]) -> tuple[BacktestEngine, SessionStrategy, OrderRefuser]:
    strategy, refuser = eod(), OrderRefuser(plan)
    engine = run_engine([strategy], {"SPY": two_uptrend_days()}, refuser=refuser)
    return engine, strategy, refuser


def run_two_days(plan: dict[str, list[str]], day1: list[tuple]) -> tuple[BacktestEngine, OrderRefuser]:
    """Day 1 fills `day1`, day 2 makes its usual round trip, and nothing is left held."""
    engine, strategy, refuser = run_eod(plan)
    assert trades(engine) == [*day1, buy(DAY2, "14:45", 172), sell(DAY2, "15:55", 172)]
    assert strategy.holdings == {}
    return engine, refuser


def trades(engine: BacktestEngine) -> list[tuple]:
    """(minute, side, quantity, price, tags) of each fill, in order."""
    result = fills(engine)
    return list(zip(result.time.dt.floor("min"), result.side, result.quantity, result.price, result.tags))


def buy(day: dt.date, hhmm: str, quantity: int, price: str = "101.50") -> tuple:
    return (et(day, hhmm), "BUY", Decimal(quantity), Decimal(price), "continuation:bullish:SPY")


def sell(day: dt.date, hhmm: str, quantity: int) -> tuple:
    return (et(day, hhmm), "SELL", Decimal(quantity), Decimal("101.00"), "exit:window_end")


def stops(engine: BacktestEngine) -> list[tuple]:
    """(minute placed, quantity, trigger, status) of each stop order, in order."""
    return [
        (pd.Timestamp(o.ts_init, tz="UTC").floor("min"), o.quantity.as_decimal(), o.trigger_price.as_decimal(),
         o.status.name)
        for o in engine.cache.orders() if o.order_type == OrderType.STOP_MARKET
    ]


def stop(day: dt.date, hhmm: str, quantity: int, trigger: str, status: str = "CANCELED") -> tuple:
    return (et(day, hhmm), Decimal(quantity), Decimal(trigger), status)


# -- entries ------------------------------------------------------------------------------------


@pytest.mark.parametrize("refusal", REFUSALS)
def test_an_entry_that_ends_unfilled_frees_its_place_and_the_next_session_trades(refusal: str) -> None:
    # Day 1 buys nothing; day 2's breakout trades as if day 1 had had no signal.
    engine, refuser = run_two_days({"BUY MARKET": [refusal]}, [])
    assert [outcome for _, outcome in refuser.refused] == [refusal]
    # The refused ticker stayed blocked for the rest of its session (see SessionStrategy.enter).
    assert blocklist.is_blocked(engine.cache, DAY, "SPY")


@pytest.mark.parametrize("strategy_name", ["opening_range", "vwap_reversion"])
def test_the_other_session_strategies_trade_the_next_session_after_a_denied_entry(strategy_name: str) -> None:
    if strategy_name == "opening_range":
        # 10:00 breakout: close 101.25 >= 101 * 1.002 with 1.5x the range's volume.
        breakout = (100.9, 101.3, 100.9, 101.25, 1.5 * ORB_VOLUME)
        frame = pd.concat([patch(day_with_range(day), day, "10:00", breakout) for day in (DAY, DAY2)])
        strategy, entry_time = orb(), "10:00"
    else:
        frame = pd.concat([dip_and_reversal(DAY), dip_and_reversal(DAY2)])
        strategy, entry_time = vwap_strategy(), "11:02"  # the reversal bar
    refuser = OrderRefuser({"BUY MARKET": ["denied"]})
    buys = fills(run_engine([strategy], {"SPY": frame}, refuser=refuser)).query("side == 'BUY'")
    assert list(buys.time) == [et(DAY2, entry_time)]
    assert strategy.holdings == {}


def test_a_partly_filled_then_cancelled_entry_keeps_its_position_managed() -> None:
    engine, _ = run_two_days({"BUY MARKET": ["partial:100@101.50"]}, [buy(DAY, "14:45", 100), sell(DAY, "15:55", 100)])
    # The stop covered the 100 shares bought until the hard exit cancelled it.
    assert stops(engine)[0] == stop(DAY, "14:45", 100, "99.47")


def test_an_entry_still_working_at_the_window_end_is_cancelled_and_frees_its_place() -> None:
    # Day 1's entry rests unfilled at the venue until the 15:55 hard exit cancels it.
    run_two_days({"BUY MARKET": ["rest"]}, [])


def test_an_entry_that_fills_as_the_hard_exit_cancels_it_is_sold_at_the_next_bar() -> None:
    # Day 1's entry rests until the 15:55 hard exit cancels it, but fills instead (the cancel
    # came too late): the stop is placed for it (101 * 0.98 = 98.98) and the exit goes with
    # the 15:56 bar.
    engine, _ = run_two_days(
        {"BUY MARKET": ["late:172@101.00"]}, [buy(DAY, "15:55", 172, "101.00"), sell(DAY, "15:56", 172)],
    )
    assert stops(engine)[0] == stop(DAY, "15:55", 172, "98.98")


def test_an_entry_fill_landing_after_the_exit_filled_is_sold_at_the_next_bar() -> None:
    # 100 of 172 fill at 14:45; the 15:55 hard exit sells those 100 and cancels the rest of
    # the entry, which fills instead (72 at 101.00): those 72 get a stop and go at 15:56.
    engine, _ = run_two_days(
        {"BUY MARKET": ["partial-late:100@101.50:72@101.00"]},
        [buy(DAY, "14:45", 100), sell(DAY, "15:55", 100), buy(DAY, "15:55", 72, "101.00"), sell(DAY, "15:56", 72)],
    )
    assert stops(engine)[1] == stop(DAY, "15:55", 72, "98.98")


# -- exits and stops ----------------------------------------------------------------------------


@pytest.mark.parametrize("refusal", REFUSALS)
def test_an_exit_that_ends_unfilled_is_flagged_protected_and_sent_again_at_the_next_bar(refusal: str) -> None:
    # The exit refused at 15:55 goes again with the 15:56 bar (close 101.00).
    engine, refuser = run_two_days({"SELL MARKET": [refusal]}, [buy(DAY, "14:45", 172), sell(DAY, "15:56", 172)])
    [record] = refuser.risk_records
    assert (record.kind, record.strategy, record.instrument_id) == ("unresolved_order", "EODMomentum-000", "SPY.SIM")
    assert record.detail.startswith(f"exit O-20240305-205500-001-000-3 (window_end) {WHY[refusal]}: 172 SPY still held")
    # The stop the exit cancelled was placed again at once, and cancelled by the second exit.
    assert stops(engine)[:2] == [stop(DAY, "14:45", 172, "99.47"), stop(DAY, "15:55", 172, "99.47")]


def test_an_exit_refused_again_is_retried_bar_after_bar() -> None:
    _, refuser = run_two_days({"SELL MARKET": ["denied", "rejected"]}, [buy(DAY, "14:45", 172), sell(DAY, "15:57", 172)])
    assert [r.detail.split(": ")[0] for r in refuser.risk_records] == [
        "exit O-20240305-205500-001-000-3 (window_end) denied",
        "exit O-20240305-205600-001-000-5 (window_end) rejected",
    ]


def test_a_refused_stop_is_flagged_and_placed_again_at_the_next_bar() -> None:
    engine, refuser = run_two_days({"SELL STOP_MARKET": ["rejected"]}, [buy(DAY, "14:45", 172), sell(DAY, "15:55", 172)])
    [record] = refuser.risk_records
    assert record.detail == "stop O-20240305-194500-001-000-2 rejected: OrderRefuser rejected; placed again at the next bar"
    assert stops(engine)[:2] == [
        stop(DAY, "14:45", 172, "99.47", "REJECTED"),
        stop(DAY, "14:46", 172, "99.47"),  # cancelled by the 15:55 exit
    ]
