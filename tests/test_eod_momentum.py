"""End-of-day momentum and fade on hand-built minute sequences (low-level BacktestEngine)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from catalog.instruments import make_instrument
from catalog.store import bar_type_for
from strategies.eod_momentum import EODMomentum
from strategies.eod_momentum import EODMomentumConfig
from strategies.session_strategy import NotYetSupportedError
from tests.session_harness import bar_type
from tests.session_harness import et
from tests.session_harness import fills
from tests.session_harness import minute_frame
from tests.session_harness import patch
from tests.session_harness import run_engine
from tests.session_harness import session_frame

DAY = dt.date(2024, 3, 5)
VOLUME = 10_000
VIX_DAILY = bar_type_for(make_instrument("VIX").id, "1day")


def eod(inverse: tuple[str, ...] = (), **overrides: object) -> EODMomentum:
    params: dict[str, object] = {
        "bar_types": (bar_type("SPY"),) + tuple(bar_type(s, "5min") for s in inverse),
        "watchlist": ("SPY",),
        "bearish_instrument": "inverse_etf" if inverse else "disabled",
        "min_average_daily_volume": Decimal(0),
    }
    return EODMomentum(EODMomentumConfig(**(params | overrides)))


def uptrend_day(day: dt.date = DAY) -> pd.DataFrame:
    """100 until noon, 101 afterwards (above the open and the VWAP), a breakout at 14:45."""
    frame = session_frame(day, 100.0, VOLUME)
    frame.loc[frame.index > et(day, "12:00")] = (101.0, 101.0, 101.0, 101.0, VOLUME)
    return patch(frame, day, "14:45", (101.0, 101.5, 101.0, 101.5, VOLUME))


def inverse_frame(day: dt.date = DAY, price: float = 40.0) -> pd.DataFrame:
    n = (6 * 60 + 30) // 5
    return minute_frame(day, "09:35", [(price, price, price, price, 100_000)] * n, step_minutes=5)


def test_trend_continuation_buys_the_breakout_and_exits_at_15_55() -> None:
    result = fills(run_engine([eod()], {"SPY": uptrend_day()}))
    buy, sell = result.iloc[0], result.iloc[-1]
    assert (buy.side, buy.time, buy.price, buy.tags) == ("BUY", et(DAY, "14:45"), Decimal("101.50"), "continuation:bullish:SPY")
    assert buy.quantity == 172  # 35% of 100,000 / 2 positions = 17,500 -> floor(17500 / 101.5)
    assert (sell.side, sell.time, sell.tags) == ("SELL", et(DAY, "15:55"), "exit:window_end")


def test_bearish_continuation_buys_the_inverse_etf() -> None:
    frame = session_frame(DAY, 100.0, VOLUME)
    frame.loc[frame.index > et(DAY, "12:00")] = (99.0, 99.0, 99.0, 99.0, VOLUME)
    frame = patch(frame, DAY, "14:45", (99.0, 99.0, 98.5, 98.5, VOLUME))
    result = fills(run_engine([eod(("SH",))], {"SPY": frame, "SH": inverse_frame()}, {"SH": "5min"}))
    assert (result.iloc[0].symbol, result.iloc[0].tags, result.iloc[0].quantity) == ("SH", "continuation:bearish:SPY", 437)


def spike_day() -> pd.DataFrame:
    """Flat at 100, then 15:00..15:14 climbs to 101.2 (+1.2% in 15 bars), then 15:15 reverses."""
    frame = session_frame(DAY, 100.0, VOLUME)
    for i in range(15):
        price = round(100.08 + 0.08 * i, 2)
        frame = patch(frame, DAY, f"15:{i:02d}", (price - 0.05, price, price - 0.1, price, VOLUME))
    frame = patch(frame, DAY, "15:14", (101.15, 101.2, 101.1, 101.2, VOLUME))
    return patch(frame, DAY, "15:15", (101.2, 101.2, 100.9, 100.95, VOLUME))


def test_fade_after_a_late_spike_buys_the_inverse_etf() -> None:
    strategy = eod(("SH",), modes="fade")
    result = fills(run_engine([strategy], {"SPY": spike_day(), "SH": inverse_frame()}, {"SH": "5min"}))
    buy = result.iloc[0]
    assert (buy.symbol, buy.time, buy.tags) == ("SH", et(DAY, "15:15"), "fade:bearish:SPY")


def test_continuation_mode_chases_the_same_spike_instead() -> None:
    strategy = eod(("SH",), modes="continuation")
    result = fills(run_engine([strategy], {"SPY": spike_day(), "SH": inverse_frame()}, {"SH": "5min"}))
    buy = result.iloc[0]
    assert (buy.symbol, buy.time, buy.tags) == ("SPY", et(DAY, "15:00"), "continuation:bullish:SPY")


@pytest.mark.parametrize(("vix", "trades"), [(12.0, False), (20.0, True)])
def test_vix_gate(vix: float, trades: bool) -> None:
    # The VIX daily bar of the day before, stamped at that close (21:00 UTC in March).
    vix_frame = pd.DataFrame(
        {"open": [vix], "high": [vix], "low": [vix], "close": [vix], "volume": [0.0]},
        index=pd.DatetimeIndex([et(DAY - dt.timedelta(days=1), "16:00")]),
    )
    strategy = eod(vix_bar_type=VIX_DAILY, min_vix=Decimal(15))
    result = fills(run_engine([strategy], {"SPY": uptrend_day(), "VIX": vix_frame}, {"VIX": "1day"}))
    assert (not result.empty) is trades
    assert "VIX gate on: min_vix 15" in strategy.self_check(DAY).notes


def test_vix_gate_without_any_vix_value_does_not_trade() -> None:
    strategy = eod(vix_bar_type=VIX_DAILY, min_vix=Decimal(15))
    assert fills(run_engine([strategy], {"SPY": uptrend_day()})).empty


def test_half_day_has_no_end_of_day_window() -> None:
    strategy = eod()
    run_engine([strategy], {"SPY": uptrend_day()})
    assert strategy.self_check(dt.date(2024, 11, 29)).windows == {
        "entries": ("closed", "closed"), "exit": ("closed", "closed"),
    }
    assert strategy.self_check(DAY).windows == {"entries": ("14:30", "15:55"), "exit": ("14:30", "15:55")}


def test_auction_imbalance_filter_is_refused_and_capital_share_validated() -> None:
    with pytest.raises(NotYetSupportedError, match="auction_imbalance_filter=True is not yet supported"):
        eod(auction_imbalance_filter=True)
    with pytest.raises(ValueError, match="capital_fraction: end-of-day momentum takes 30-40% of capital, got 0.5"):
        eod(capital_fraction=Decimal("0.5"))
    with pytest.raises(ValueError, match="min_vix: the VIX gate needs vix_bar_type"):
        eod(min_vix=Decimal(15))


def test_dst_end_week_keeps_the_window_in_new_york_time() -> None:
    # US DST ended on Sunday 2024-11-03: 14:45 ET is 18:45 UTC on Friday, 19:45 UTC on Monday.
    friday, monday = dt.date(2024, 11, 1), dt.date(2024, 11, 4)
    frame = pd.concat([uptrend_day(friday), uptrend_day(monday)])
    result = fills(run_engine([eod()], {"SPY": frame}))
    buys, sells = result[result.side == "BUY"], result[result.side == "SELL"].drop_duplicates("time")
    assert list(buys.time) == [et(friday, "14:45"), et(monday, "14:45")]
    assert [t.tz_convert("UTC").hour for t in buys.time] == [18, 19]
    assert list(sells.time) == [et(friday, "15:55"), et(monday, "15:55")]
