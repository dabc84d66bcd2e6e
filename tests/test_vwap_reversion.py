"""VWAP reversion on hand-built minute sequences (low-level BacktestEngine)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from strategies.vwap_reversion import VWAPReversion
from strategies.vwap_reversion import VWAPReversionConfig
from tests.session_harness import bar_type
from tests.session_harness import et
from tests.session_harness import fills
from tests.session_harness import minute_frame
from tests.session_harness import patch
from tests.session_harness import run_engine
from tests.session_harness import session_frame

DAY = dt.date(2024, 3, 5)
VOLUME = 10_000


def vwap_strategy(watchlist: tuple[str, ...] = ("SPY",), inverse: tuple[str, ...] = (), **overrides: object) -> VWAPReversion:
    params: dict[str, object] = {
        "bar_types": tuple(bar_type(s) for s in watchlist) + tuple(bar_type(s, "5min") for s in inverse),
        "watchlist": watchlist,
        "bearish_instrument": "inverse_etf" if inverse else "disabled",
        "min_average_daily_volume": Decimal(0),
    }
    return VWAPReversion(VWAPReversionConfig(**(params | overrides)))


def dip_and_reversal(day: dt.date = DAY, at: str = "11:00", then: float = 97.8) -> pd.DataFrame:
    """Flat at 100 (VWAP ~100), a close 2.1% below at `at`, a lower low, then the reversal bar."""
    frame = session_frame(day, 100.0, VOLUME)
    start = et(day, at)
    rows = {
        start: (100.0, 100.0, 97.9, 97.9, 1000),  # arms: close 97.9 is 2.1% below VWAP
        start + pd.Timedelta(minutes=1): (97.9, 97.9, 97.5, 97.6, 1000),  # new low: extreme 97.5
        start + pd.Timedelta(minutes=2): (97.6, 97.9, 97.55, 97.8, 1000),  # the reversal bar
    }
    for ts, row in rows.items():
        frame.loc[ts] = row
    # Afterwards the price holds at `then` for an hour (no VWAP touch), then returns to 100.
    for minute in range(3, 63):
        frame.loc[start + pd.Timedelta(minutes=minute)] = (then, then, then, then, 1000)
    return frame.sort_index()


def test_deviation_and_reversal_bar_buy_the_stock_then_45_minute_timeout() -> None:
    result = fills(run_engine([vwap_strategy()], {"SPY": dip_and_reversal()}))
    buy, sell = result.iloc[0], result.iloc[1]
    assert (buy.side, buy.time, buy.price, buy.tags) == ("BUY", et(DAY, "11:02"), Decimal("97.80"), "reversion:bullish:SPY")
    assert buy.quantity == 61  # 30% of 100,000 / 5 positions = 6,000 -> floor(6000 / 97.8)
    assert (sell.side, sell.time, sell.tags, sell.quantity) == ("SELL", et(DAY, "11:47"), "exit:timeout", 61)


def test_exit_when_price_touches_vwap() -> None:
    frame = patch(dip_and_reversal(), DAY, "11:10", (97.8, 100.0, 97.8, 99.9, 1000))
    result = fills(run_engine([vwap_strategy()], {"SPY": frame}))
    sell = result[result.side == "SELL"].iloc[0]
    assert (sell.time, sell.tags, sell.price) == (et(DAY, "11:10"), "exit:vwap_touch", Decimal("99.90"))


def test_no_reversal_bar_no_trade() -> None:
    frame = dip_and_reversal()
    # The third bar makes a new low (97.4 < 97.5): it extends the extreme instead of reversing.
    frame = patch(frame, DAY, "11:02", (97.6, 97.9, 97.4, 97.8, 1000))
    frame = patch(frame, DAY, "11:03", (97.8, 97.8, 97.8, 97.8, 1000))  # not above the prior close
    assert fills(run_engine([vwap_strategy()], {"SPY": frame})).empty


def test_a_smaller_deviation_does_not_arm() -> None:
    frame = dip_and_reversal()
    frame = patch(frame, DAY, "11:00", (100.0, 100.0, 98.1, 98.1, 1000))  # 1.9% below
    frame = patch(frame, DAY, "11:01", (98.1, 98.2, 98.05, 98.1, 1000))
    frame = patch(frame, DAY, "11:02", (98.1, 98.4, 98.1, 98.3, 1000))
    assert fills(run_engine([vwap_strategy()], {"SPY": frame})).empty


def test_reversal_before_10_30_does_not_trade() -> None:
    assert fills(run_engine([vwap_strategy()], {"SPY": dip_and_reversal(at="10:00")})).empty


def spike_and_reversal() -> pd.DataFrame:
    frame = session_frame(DAY, 100.0, VOLUME)
    frame = patch(frame, DAY, "11:00", (100.0, 102.1, 100.0, 102.1, 1000))  # 2.1% above VWAP
    frame = patch(frame, DAY, "11:01", (102.1, 102.5, 102.1, 102.4, 1000))  # new high 102.5
    frame = patch(frame, DAY, "11:02", (102.4, 102.45, 102.1, 102.2, 1000))  # bearish reversal
    for minute in range(3, 10):
        frame = patch(frame, DAY, f"11:{minute:02d}", (102.2, 102.2, 102.2, 102.2, 1000))
    return patch(frame, DAY, "11:10", (102.2, 102.2, 99.9, 100.0, 1000))  # touches VWAP


def inverse_frame(price: float = 40.0) -> pd.DataFrame:
    # 5-minute bars for the inverse ETF, 09:35 .. 16:00, the way the shared data has them.
    n = (6 * 60 + 30) // 5
    return minute_frame(DAY, "09:35", [(price, price, price, price, 100_000)] * n, step_minutes=5)


def test_bearish_signal_buys_the_mapped_inverse_etf_and_exits_on_the_underlying_touch() -> None:
    strategy = vwap_strategy(inverse=("SH",))
    result = fills(run_engine([strategy], {"SPY": spike_and_reversal(), "SH": inverse_frame()}, {"SH": "5min"}))
    assert set(result.symbol) == {"SH"}  # never SPY: no short sale
    buy, sell = result.iloc[0], result.iloc[1]
    assert (buy.side, buy.time, buy.tags, buy.quantity) == ("BUY", et(DAY, "11:02"), "reversion:bearish:SPY", 150)
    assert (sell.side, sell.time, sell.tags) == ("SELL", et(DAY, "11:10"), "exit:vwap_touch")


def test_bearish_signal_without_an_inverse_etf_does_not_trade() -> None:
    assert fills(run_engine([vwap_strategy()], {"SPY": spike_and_reversal()})).empty  # disabled
    nvda = vwap_strategy(watchlist=("NVDA",), inverse=("SH",))  # NVDA has no inverse ETF
    assert fills(run_engine([nvda], {"NVDA": spike_and_reversal(), "SH": inverse_frame()}, {"SH": "5min"})).empty


def test_half_day_cuts_the_window_at_the_early_close() -> None:
    half_day = dt.date(2024, 11, 29)
    frame = dip_and_reversal(half_day, at="12:40")
    frame = frame[frame.index <= et(half_day, "13:00")]
    strategy = vwap_strategy()
    result = fills(run_engine([strategy], {"SPY": frame}))
    assert list(result.side) == ["BUY", "SELL"]
    # Entered 12:42; the 45-minute timeout would be 13:27, but the session closes at 13:00.
    assert (result.iloc[1].time, result.iloc[1].tags) == (et(half_day, "13:00"), "exit:window_end")
    assert strategy.self_check(half_day).windows == {"entries": ("10:30", "13:00"), "exit": ("10:30", "13:00")}


def test_session_vwap_resets_each_session_and_ignores_pre_market() -> None:
    day1, day2 = dt.date(2024, 3, 5), dt.date(2024, 3, 6)
    premarket = minute_frame(day2, "08:00", [(50.0, 50.0, 50.0, 50.0, 10_000_000)])
    regular = minute_frame(day2, "09:31", [(100 + i, 101 + i, 99 + i, 100.5 + i, 1000 * (i + 1)) for i in range(30)])
    frame = pd.concat([session_frame(day1, 80.0, VOLUME), premarket, regular])
    strategy = vwap_strategy()
    run_engine([strategy], {"SPY": frame})
    typical = (regular.high + regular.low + regular.close) / 3
    expected = (typical * regular.volume).sum() / regular.volume.sum()
    assert strategy.symbols_state["SPY"].vwap.value == pytest.approx(expected, rel=1e-12)


def test_adx_filter_skips_a_trending_tape() -> None:
    # A steady slide before the setup makes ADX(14) high: the reversal is skipped.
    frame = dip_and_reversal()
    for i in range(30):
        price = 100.5 - i * 0.01
        frame = patch(frame, DAY, f"10:{20 + i:02d}", (price + 0.01, price + 0.01, price - 0.02, price, VOLUME))
    assert not fills(run_engine([vwap_strategy()], {"SPY": frame})).empty
    assert fills(run_engine([vwap_strategy(adx_filter=True)], {"SPY": frame})).empty


def test_strength_sizing_scales_with_the_deviation() -> None:
    # The setup's largest deviation: close 97.6 against a VWAP just under 100 (~2.4%), so the
    # budget is 6,000 * (deviation / 2%) (~1.2x the equal weight), capped at twice it.
    strategy = vwap_strategy(sizing="strength")
    result = fills(run_engine([strategy], {"SPY": dip_and_reversal()}))
    buy = result.iloc[0]
    assert 70 <= buy.quantity <= 75
    equal = fills(run_engine([vwap_strategy()], {"SPY": dip_and_reversal()})).iloc[0]
    assert buy.quantity > equal.quantity
