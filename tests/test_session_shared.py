"""The pieces the three session strategies share: weights, bearish map, filters, blocklist, ADX."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.cache.cache import Cache
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity

from catalog.instruments import make_instrument
from catalog.instruments import read_listings
from strategies import blocklist
from strategies.adx import AverageDirectionalIndex
from strategies.allocation import allocation_problems
from strategies.allocation import default_allocation_weights
from strategies.allocation import weights_for
from strategies.bearish import DEFAULT_INVERSE_ETFS
from strategies.bearish import LEVERAGED_ETFS
from strategies.candidates import CandidateFilter
from strategies.candidates import DailyVolumeTracker
from strategies.opening_range import OpeningRangeBreakout
from strategies.opening_range import OpeningRangeConfig
from strategies.session_strategy import NotYetSupportedError
from strategies.vwap_reversion import VWAPReversion
from strategies.vwap_reversion import VWAPReversionConfig
from tests.session_harness import bar_type
from tests.session_harness import fills
from tests.session_harness import patch
from tests.session_harness import run_engine
from tests.session_harness import session_frame
from tests.test_vwap_reversion import dip_and_reversal

DAY = dt.date(2024, 3, 5)

# -- allocation weights ---------------------------------------------------------------------


def test_default_weights() -> None:
    weights = default_allocation_weights()
    assert allocation_problems(weights) == []
    assert [weights_for(weights, n) for n in (1, 2, 3, 4)] == [
        (Decimal("1"),),
        (Decimal("0.6"), Decimal("0.4")),
        (Decimal("0.4"), Decimal("0.3"), Decimal("0.3")),
        (Decimal("0.4"), Decimal("0.2"), Decimal("0.2"), Decimal("0.2")),
    ]
    assert weights_for(weights, 7) == weights[4]  # more candidates: the top four trade
    assert weights_for(weights, 0) == ()


def test_weights_that_do_not_sum_to_one_are_refused_naming_field_and_values() -> None:
    bad = default_allocation_weights() | {3: (Decimal("0.4"), Decimal("0.3"), Decimal("0.2"))}
    with pytest.raises(ValueError, match=r"allocation_weights\[3\]: weights \[0.4, 0.3, 0.2\] sum to 0.9, must sum to 1"):
        OpeningRangeConfig.parse(
            '{"bar_types": ["SPY.SIM-1-MINUTE-LAST-EXTERNAL"], "watchlist": ["SPY"], '
            '"bearish_instrument": "disabled", "allocation_weights": '
            '{"1": [1], "2": [0.6, 0.4], "3": [0.4, 0.3, 0.2], "4": [0.4, 0.2, 0.2, 0.2]}}',
        )
    assert allocation_problems(bad) == ["allocation_weights[3]: weights [0.4, 0.3, 0.2] sum to 0.9, must sum to 1"]
    assert allocation_problems({1: (Decimal(1),), 3: (Decimal(1),)}) == [
        "allocation_weights: rows must be keyed 1..n without gaps, got keys [1, 3]",
        "allocation_weights[3]: expected 3 weights, got 1 [1]",
    ]


# -- bearish instrument ---------------------------------------------------------------------


def orb_config(**overrides: object) -> OpeningRangeConfig:
    params: dict[str, object] = {"bar_types": (bar_type("SPY"), bar_type("SH")), "watchlist": ("SPY",)}
    return OpeningRangeConfig(**(params | overrides))


def test_long_put_fails_at_start_up_with_not_yet_supported() -> None:
    with pytest.raises(NotYetSupportedError, match="bearish_instrument='long_put' is not yet supported"):
        orb_config(bearish_instrument="long_put")
    with pytest.raises(ValueError, match="bearish_instrument: must be one of inverse_etf, long_put, disabled"):
        orb_config(bearish_instrument="short")


def test_the_default_map_is_one_x_and_the_listed_leveraged_etfs_are_known() -> None:
    assert DEFAULT_INVERSE_ETFS == {"SPY": "SH", "QQQ": "PSQ", "DIA": "DOG", "IWM": "RWM"}
    assert not set(DEFAULT_INVERSE_ETFS.values()) & LEVERAGED_ETFS
    listed = set(read_listings())
    leveraged_listed = {"SQQQ", "SPXS", "SOXS", "TQQQ", "SPXL", "SOXL", "UPRO", "SPXU", "SDS", "SSO",
                        "QID", "QLD", "TNA", "TZA", "FAS", "TECL", "WEBL", "NAIL", "UVXY", "SVXY"}
    assert leveraged_listed <= listed
    assert leveraged_listed <= LEVERAGED_ETFS


def test_leveraged_inverse_etfs_and_watchlist_symbols_are_refused() -> None:
    with pytest.raises(ValueError, match="inverse_etfs: QQQ -> SQQQ is a leveraged ETF; only 1x inverse"):
        OpeningRangeConfig(
            bar_types=(bar_type("QQQ"), bar_type("SQQQ")), watchlist=("QQQ",), inverse_etfs={"QQQ": "SQQQ"},
        )
    with pytest.raises(ValueError, match="watchlist/bar_types: TQQQ is a leveraged ETF and is never traded"):
        OpeningRangeConfig(bar_types=(bar_type("TQQQ"),), watchlist=("TQQQ",), bearish_instrument="disabled")


def test_a_mapped_inverse_etf_needs_bars() -> None:
    with pytest.raises(ValueError, match="inverse_etfs: SPY -> SH but bar_types has no SH bars"):
        OpeningRangeConfig(bar_types=(bar_type("SPY"),), watchlist=("SPY",))


def test_the_test_only_override_is_accepted_but_never_ready() -> None:
    config = OpeningRangeConfig(
        bar_types=(bar_type("QQQ"), bar_type("SQQQ")), watchlist=("QQQ",),
        inverse_etfs={"QQQ": "SQQQ"}, allow_leveraged_for_test=True, min_average_daily_volume=Decimal(0),
    )
    strategy = OpeningRangeBreakout(config)
    run_engine([strategy], {"QQQ": session_frame(DAY), "SQQQ": session_frame(DAY, 40.0)})
    report = strategy.self_check(DAY)
    assert not report.ready
    assert report.parameter_problems == (
        "inverse_etfs: QQQ -> SQQQ is a leveraged ETF; only 1x inverse ETFs are allowed (e.g. SPY -> SH, QQQ -> PSQ)",
    )


# -- candidate filters ----------------------------------------------------------------------

FILTER = CandidateFilter(Decimal(5), Decimal(1000), Decimal(1_000_000), Decimal("0.015"))


def quote(bid: str, ask: str) -> QuoteTick:
    return QuoteTick(
        make_instrument("SPY").id, Price.from_str(bid), Price.from_str(ask),
        Quantity.from_int(100), Quantity.from_int(100), 0, 0,
    )


def test_candidate_filters() -> None:
    adv = Decimal(2_000_000)
    assert FILTER.rejection(Decimal(100), adv, None) is None  # no quotes: spread not checked
    assert FILTER.rejection(Decimal(100), adv, quote("99.95", "100.05")) is None
    assert FILTER.rejection(Decimal("4.99"), adv, None) == "price 4.99 outside [5, 1000]"
    assert FILTER.rejection(Decimal("1000.01"), adv, None) == "price 1000.01 outside [5, 1000]"
    assert FILTER.rejection(Decimal(100), Decimal(999_999), None) == "average daily volume 999999 < 1000000"
    assert FILTER.rejection(Decimal(100), None, None) == "no completed sessions yet for the average daily volume"
    assert FILTER.rejection(Decimal(100), adv, quote("0.00", "100.05")) == "quote has a zero bid or ask (0 / 100.05)"
    # (101.52 - 100) / 100.76 = 1.5085% > 1.5%; (101.51 - 100) / 100.755 = 1.4987% passes.
    assert FILTER.rejection(Decimal(100), adv, quote("100.00", "101.52")).startswith("spread 1.5085% wider than")
    assert FILTER.rejection(Decimal(100), adv, quote("100.00", "101.51")) is None


def test_average_daily_volume_over_completed_sessions() -> None:
    tracker = DailyVolumeTracker(sessions=2)
    tracker.add(dt.date(2024, 3, 4), Decimal(100))
    tracker.add(dt.date(2024, 3, 4), Decimal(50))
    tracker.add(dt.date(2024, 3, 5), Decimal(300))
    assert tracker.average() is None  # one completed session of the two needed
    tracker.add(dt.date(2024, 3, 6), Decimal(1))
    assert tracker.average() == Decimal(225)  # (150 + 300) / 2; today's 1 is not complete


# -- blocklist ------------------------------------------------------------------------------


def test_blocklist_lives_in_the_cache_per_session() -> None:
    cache = Cache()
    blocklist.block(cache, DAY, "SPY", "SH")
    blocklist.block(cache, DAY, "QQQ")
    assert blocklist.blocked_symbols(cache, DAY) == {"SPY", "SH", "QQQ"}
    assert not blocklist.is_blocked(cache, DAY + dt.timedelta(days=1), "SPY")


def test_a_ticker_traded_by_one_strategy_is_not_traded_again_that_session_by_another() -> None:
    common = {"bearish_instrument": "disabled", "min_average_daily_volume": Decimal(0)}
    symbols = ("SPY", "QQQ")
    orb = OpeningRangeBreakout(
        OpeningRangeConfig(bar_types=(bar_type("SPY"), bar_type("QQQ")), watchlist=("SPY",), **common),
    )
    vwap = VWAPReversion(
        VWAPReversionConfig(bar_types=tuple(bar_type(s) for s in symbols), watchlist=symbols, **common),
    )
    spy = patch(dip_and_reversal(), DAY, "09:40", (100, 101, 99.5, 100, 10_000))
    spy = patch(spy, DAY, "10:00", (100.9, 101.3, 100.9, 101.25, 20_000))  # ORB breakout
    result = fills(run_engine([orb, vwap], {"SPY": spy, "QQQ": dip_and_reversal()}))
    buys = result[result.side == "BUY"]
    assert list(zip(buys.strategy, buys.symbol)) == [
        (str(orb.id), "SPY"),
        (str(vwap.id), "QQQ"),  # SPY had the same reversal at 11:02 but was blocked
    ]
    assert blocklist.blocked_symbols(orb.cache, DAY) == {"SPY", "QQQ"}
    # The next session starts with an empty list.
    assert not blocklist.is_blocked(orb.cache, DAY + dt.timedelta(days=1), "SPY")


# -- ADX ------------------------------------------------------------------------------------


def pandas_adx(frame: pd.DataFrame, n: int) -> pd.Series:
    """Wilder's ADX written independently, vectorised with pandas (sum-seeded smoothing)."""
    high, low, close = frame["high"], frame["low"], frame["close"]
    tr = pd.concat([high - low, (high - close.shift()).abs(), (low - close.shift()).abs()], axis=1).max(axis=1)
    up, down = high.diff(), -low.diff()
    pdm = up.where((up > down) & (up > 0), 0.0)
    mdm = down.where((down > up) & (down > 0), 0.0)

    def wilder_sum(series: pd.Series) -> pd.Series:
        values = series.iloc[1:].to_numpy()
        out = np.full(len(series), np.nan)
        total = values[:n].sum()
        out[n] = total
        for i in range(n, len(values)):
            total = total - total / n + values[i]
            out[i + 1] = total
        return pd.Series(out, index=series.index)

    atr = wilder_sum(tr)
    plus_di, minus_di = 100 * wilder_sum(pdm) / atr, 100 * wilder_sum(mdm) / atr
    dx = 100 * (plus_di - minus_di).abs() / (plus_di + minus_di)
    adx = pd.Series(np.nan, index=frame.index)
    first = 2 * n - 1
    adx.iloc[first] = dx.iloc[n : first + 1].mean()
    for i in range(first + 1, len(frame)):
        adx.iloc[i] = (adx.iloc[i - 1] * (n - 1) + dx.iloc[i]) / n
    return adx


def test_adx_matches_an_independent_pandas_computation() -> None:
    rng = np.random.default_rng(7)
    close = 100 + rng.normal(0, 1, 300).cumsum()
    frame = pd.DataFrame(
        {"close": close, "high": close + rng.uniform(0.1, 1.5, 300), "low": close - rng.uniform(0.1, 1.5, 300)},
    )
    expected = pandas_adx(frame, 14)
    adx = AverageDirectionalIndex(14)
    values = []
    for row in frame.itertuples():
        adx.update_raw(row.high, row.low, row.close)
        values.append(adx.value if adx.initialized else np.nan)
    assert np.isnan(values[26]) and not np.isnan(values[27])  # ready after 2 * 14 bars
    np.testing.assert_allclose(values[27:], expected.iloc[27:].to_numpy(), rtol=1e-10)
    assert 0 < min(values[27:]) and max(values[27:]) < 100


def daily_bar(symbol: str, date: str, volume: int):
    from nautilus_trader.model.data import Bar
    from nautilus_trader.model.data import BarType

    ts = pd.Timestamp(date, tz="UTC").value  # IB's daily bar: 00:00 UTC of the session's date
    return Bar(BarType.from_str(f"{symbol}.SIM-1-DAY-LAST-EXTERNAL"), Price.from_str("100.00"),
               Price.from_str("101.00"), Price.from_str("99.00"), Price.from_str("100.50"),
               Quantity.from_int(volume), ts, ts)


def test_volume_history_seeds_the_average_with_completed_sessions_only() -> None:
    from strategies.candidates import completed_session_volumes

    bars = [daily_bar("SPY", d, v) for d, v in [
        ("2024-11-25", 1_000), ("2024-11-26", 2_000), ("2024-11-27", 3_000),
        ("2024-11-28", 9_999),  # Thanksgiving: no session, not a daily bar to trust
        ("2024-11-29", 600),  # the half day is a session
        ("2024-12-02", 50),  # today: still trading, left to the live bars
    ]]
    sessions, notes = completed_session_volumes(bars, today=dt.date(2024, 12, 2))
    assert sessions == [
        (dt.date(2024, 11, 25), Decimal(1_000)), (dt.date(2024, 11, 26), Decimal(2_000)),
        (dt.date(2024, 11, 27), Decimal(3_000)), (dt.date(2024, 11, 29), Decimal(600)),
    ]
    assert notes == [
        "SPY.SIM-1-DAY-LAST-EXTERNAL 2024-11-28: no NYSE session that day, left out",
        "SPY.SIM-1-DAY-LAST-EXTERNAL 2024-12-02: today's or later, left to the live bars",
    ]
    tracker = DailyVolumeTracker(sessions=3)
    tracker.seed(sessions)
    assert tracker.average() == Decimal(5_600) / 3  # the last three: 2,000, 3,000 and 600
    tracker.add(dt.date(2024, 12, 2), Decimal(400))  # today's live volume
    tracker.add(dt.date(2024, 12, 3), Decimal(1))
    assert tracker.average() == Decimal(4_000) / 3  # 3,000 + 600 + 400
    with pytest.raises(RuntimeError, match="live volume was already added"):
        tracker.seed(sessions)


def test_bars_held_while_the_volume_history_loads_are_all_played() -> None:
    # The backtest's data client answers the daily-bar request with nothing: every minute bar
    # held meanwhile is played afterwards, so the breakout trades exactly as without warm-up.
    from tests.test_opening_range import DAY as ORB_DAY
    from tests.test_opening_range import VOLUME as ORB_VOLUME
    from tests.test_opening_range import day_with_range
    from tests.test_opening_range import orb

    frame = patch(day_with_range(), ORB_DAY, "10:00", (100.9, 101.3, 100.9, 101.25, 1.5 * ORB_VOLUME))
    cold = fills(run_engine([orb()], {"SPY": frame}))
    warmed = fills(run_engine([orb(warmup_days=30)], {"SPY": frame}))
    assert not cold.empty
    assert warmed[["side", "time", "price", "quantity"]].equals(cold[["side", "time", "price", "quantity"]])
