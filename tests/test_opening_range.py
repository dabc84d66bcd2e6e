"""Opening-range breakout on hand-built minute sequences (low-level BacktestEngine)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from strategies.opening_range import OpeningRangeBreakout
from strategies.opening_range import OpeningRangeConfig
from tests.session_harness import bar_type
from tests.session_harness import et
from tests.session_harness import fills
from tests.session_harness import patch
from tests.session_harness import run_engine
from tests.session_harness import session_frame

DAY = dt.date(2024, 3, 5)  # a Tuesday, regular session
VOLUME = 10_000


def orb(symbols: tuple[str, ...] = ("SPY",), **overrides: object) -> OpeningRangeBreakout:
    params: dict[str, object] = {
        "bar_types": tuple(bar_type(s) for s in symbols),
        "watchlist": symbols,
        "bearish_instrument": "disabled",
        "min_average_daily_volume": Decimal(0),
    }
    return OpeningRangeBreakout(OpeningRangeConfig(**(params | overrides)))


def day_with_range(day: dt.date = DAY, price: float = 100.0) -> pd.DataFrame:
    """Flat at `price` with one 09:40 bar whose high sets the range high at price + 1."""
    frame = session_frame(day, price, VOLUME)
    return patch(frame, day, "09:40", (price, price + 1, price - 0.5, price, VOLUME))


def test_breakout_with_volume_buys_at_the_breakout_close_then_exits_at_10_20() -> None:
    frame = patch(day_with_range(), DAY, "10:00", (100.9, 101.3, 100.9, 101.25, 1.5 * VOLUME))
    frame = patch(frame, DAY, "10:19", (101.0, 101.2, 101.0, 101.19, VOLUME))
    frame = patch(frame, DAY, "10:20", (101.19, 101.2, 101.1, 101.2, VOLUME))
    result = fills(run_engine([orb()], {"SPY": frame}))
    buy, sell = result.iloc[0], result.iloc[1]
    assert (buy.side, buy.time, buy.price, buy.tags) == ("BUY", et(DAY, "10:00"), Decimal("101.25"), "breakout:bullish:SPY")
    # One candidate: weight 1 of 30% of 100,000 = 30,000 -> floor(30000 / 101.25) = 296 shares.
    assert buy.quantity == 296
    # The hard exit sells at market at 10:20: the price of the bar that closes at 10:20.
    assert (sell.side, sell.time, sell.tags, sell.price) == ("SELL", et(DAY, "10:20"), "exit:window_end", Decimal("101.20"))
    assert result.quantity[result.side == "SELL"].sum() == 296


def test_breakout_without_volume_confirmation_does_not_trade() -> None:
    frame = patch(day_with_range(), DAY, "10:00", (100.9, 101.3, 100.9, 101.25, 1.5 * VOLUME - 1))
    assert fills(run_engine([orb()], {"SPY": frame})).empty


@pytest.mark.parametrize(("close", "trades"), [(101.20, False), (101.21, True)])
def test_buffer_edge(close: float, trades: bool) -> None:
    # Range high 101.00; buffer 0.2% -> threshold 101.202: 101.20 is below it, 101.21 above.
    frame = patch(day_with_range(), DAY, "10:00", (101.0, close, 101.0, close, 2 * VOLUME))
    assert (not fills(run_engine([orb()], {"SPY": frame})).empty) is trades


def test_buffer_edge_exact_threshold_trades() -> None:
    # Range high 100.00 (flat day at 99, 09:40 high 100): threshold exactly 100.20 -> trades.
    frame = day_with_range(price=99.0)
    frame = patch(frame, DAY, "10:00", (100.0, 100.20, 100.0, 100.20, 2 * VOLUME))
    assert fills(run_engine([orb()], {"SPY": frame})).iloc[0].price == Decimal("100.20")
    frame = patch(frame, DAY, "10:00", (100.0, 100.19, 100.0, 100.19, 2 * VOLUME))
    assert fills(run_engine([orb()], {"SPY": frame})).empty


def test_no_entry_on_or_after_the_window_end() -> None:
    frame = patch(day_with_range(), DAY, "10:20", (100.9, 101.3, 100.9, 101.25, 2 * VOLUME))
    frame = patch(frame, DAY, "10:25", (100.9, 101.3, 100.9, 101.25, 2 * VOLUME))
    assert fills(run_engine([orb()], {"SPY": frame})).empty


def test_a_break_inside_the_opening_range_is_not_an_entry() -> None:
    # 09:45 is inside the 20-minute range: it raises the range high instead of trading.
    frame = patch(day_with_range(), DAY, "09:45", (100.9, 102.0, 100.9, 101.9, 3 * VOLUME))
    frame = patch(frame, DAY, "10:00", (100.9, 101.3, 100.9, 101.25, 3 * VOLUME))
    assert fills(run_engine([orb()], {"SPY": frame})).empty


def test_stop_two_percent_below_the_fill() -> None:
    frame = patch(day_with_range(), DAY, "10:00", (100.9, 101.3, 100.9, 101.25, 2 * VOLUME))
    # Stop at 101.25 * 0.98 = 99.225 -> 99.22 (rounded down to the tick).
    frame = frame.copy()
    for minute in range(1, 20):
        frame.loc[et(DAY, f"10:{minute:02d}")] = (101.25, 101.25, 101.25, 101.25, VOLUME)
    frame = patch(frame, DAY, "10:05", (101.0, 101.0, 99.0, 99.1, VOLUME))
    result = fills(run_engine([orb()], {"SPY": frame}))
    sell = result[result.side == "SELL"]
    assert list(sell.tags) == ["exit:stop_loss"]
    assert sell.iloc[0].time == et(DAY, "10:05")
    assert sell.iloc[0].price == Decimal("99.22")


def test_dst_week_windows_follow_new_york_time() -> None:
    # US DST began on Sunday 2024-03-10: 10:00 ET is 15:00 UTC on Friday, 14:00 UTC on Monday.
    friday, monday = dt.date(2024, 3, 8), dt.date(2024, 3, 11)
    frames = []
    for day in (friday, monday):
        frame = patch(day_with_range(day), day, "10:00", (100.9, 101.3, 100.9, 101.25, 2 * VOLUME))
        frames.append(frame)
    result = fills(run_engine([orb()], {"SPY": pd.concat(frames)}))
    buys = result[result.side == "BUY"]
    exits = result[(result.side == "SELL")].drop_duplicates("time")
    assert [t.tz_convert("UTC").hour for t in buys.time] == [15, 14]
    assert list(buys.time) == [et(friday, "10:00"), et(monday, "10:00")]
    assert list(exits.time) == [et(friday, "10:20"), et(monday, "10:20")]


def test_half_day_still_trades_its_morning_window_and_reports_the_schedule() -> None:
    half_day = dt.date(2024, 11, 29)  # the day after Thanksgiving: close 13:00 ET
    frame = patch(day_with_range(half_day), half_day, "10:00", (100.9, 101.3, 100.9, 101.25, 2 * VOLUME))
    frame = frame[frame.index <= et(half_day, "13:00")]
    strategy = orb()
    result = fills(run_engine([strategy], {"SPY": frame}))
    assert list(result.time.drop_duplicates()) == [et(half_day, "10:00"), et(half_day, "10:20")]
    report = strategy.self_check(half_day)
    assert report.windows == {"entries": ("09:30", "10:20"), "exit": ("09:30", "10:20")}


@pytest.mark.parametrize(
    ("n", "weights"),
    [
        (1, ["1"]),
        (2, ["0.6", "0.4"]),
        (3, ["0.4", "0.3", "0.3"]),
        (4, ["0.4", "0.2", "0.2", "0.2"]),
    ],
)
def test_allocation_weights_for_one_to_four_candidates(n: int, weights: list[str]) -> None:
    symbols = ("SPY", "QQQ", "DIA", "IWM")[:n]
    frames = {}
    for rank, symbol in enumerate(symbols):
        # Rank by opening dollar volume: SPY largest, then QQQ, DIA, IWM.
        frame = session_frame(DAY, 100.0, VOLUME * (10 - rank))
        frame = patch(frame, DAY, "09:40", (100, 101, 99.5, 100, VOLUME * (10 - rank)))
        frames[symbol] = patch(frame, DAY, "10:00", (100.9, 102.0, 100.9, 102.0, 20 * VOLUME))
    result = fills(run_engine([orb(symbols)], frames))
    buys = result[result.side == "BUY"].set_index("symbol")
    capital = Decimal("30000")  # 30% of 100,000
    for symbol, weight in zip(symbols, weights):
        assert buys.loc[symbol, "quantity"] == (capital * Decimal(weight) / Decimal("102")).to_integral_value(
            rounding="ROUND_DOWN",
        )


def test_self_check_reports_instruments_subscriptions_and_todays_windows() -> None:
    strategy = orb()
    run_engine([strategy], {"SPY": day_with_range()})
    report = strategy.self_check(DAY)
    assert report.ready
    assert report.instruments_loaded == {"SPY.SIM": True}
    assert report.data_subscribed == {"SPY.SIM-1-MINUTE-LAST-EXTERNAL": True}
    assert report.session_date == "2024-03-05"
    assert report.windows["entries"] == ("09:30", "10:20")
    assert strategy.self_check(dt.date(2024, 3, 9)).session_date is None  # a Saturday


def test_a_candidate_failing_the_filters_is_not_ranked_and_the_others_share_by_count() -> None:
    # SPY at 100 passes; QQQ at 2500 is above max_price 2000: one candidate -> weight 1.
    frames = {}
    for symbol, price in (("SPY", 100.0), ("QQQ", 2500.0)):
        frame = session_frame(DAY, price, VOLUME)
        frame = patch(frame, DAY, "09:40", (price, price + 1, price - 0.5, price, VOLUME))
        frames[symbol] = patch(frame, DAY, "10:00", (price, price + 2, price, price + 2, 5 * VOLUME))
    result = fills(run_engine([orb(("SPY", "QQQ"))], frames))
    buys = result[result.side == "BUY"]
    assert list(buys.symbol) == ["SPY"]
    assert buys.iloc[0].quantity == 294  # floor(30000 / 102.00): the whole allocation


def test_average_daily_volume_filter_needs_completed_sessions() -> None:
    # The default filter needs 20 completed sessions of at least 1,000,000 shares a day:
    # with none behind it the first session trades nothing.
    frame = patch(day_with_range(), DAY, "10:00", (100.9, 101.3, 100.9, 101.25, 2 * VOLUME))
    assert fills(run_engine([orb(min_average_daily_volume=Decimal(1_000_000))], {"SPY": frame})).empty
