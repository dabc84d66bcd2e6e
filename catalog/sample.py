"""
An embedded, deterministic sample: one year of synthetic 1-minute bars and quotes.

The demo and the tests must run without a data subscription, so this module generates a
realistic-looking year of US-equity data on the real NYSE calendar (holidays, half-days, DST)
including pre-market (04:00-09:30 ET) and after-hours (16:00-20:00 ET, 17:00 on half-days):

- A market factor drives SPY; QQQ loads on it plus a tech factor; AAPL loads on both plus an
  idiosyncratic factor with occasional earnings-style overnight jumps. Each factor mean-reverts
  slowly around a trend line, which keeps price levels near 2024's without pinning them.
- Daily regimes (calm uptrend, chop, stress) follow a Markov chain; sharp sell-off days
  (-2% to -4.5%) arrive mostly in stress, so strategies and kill switches have work to do.
- SH and PSQ are -1x daily-reset ETFs on SPY and QQQ with a small drag, so they decay when
  their index is volatile, as the real ones do.
- VIX moves against the market and mean-reverts to a regime level; it prints only during
  the regular session and has no volume and no quotes.
- Every session is built from four daily anchors per factor (04:00 open, 09:30 open, regular
  close, 20:00 close) joined by Brownian bridges with a U-shaped intraday variance, so overnight
  gaps, the open and the close look the way they do in real data.

Determinism: every session draws from its own generator seeded with (seed, stream, date), and
the daily anchors are simulated from ``SAMPLE_START`` whatever range is requested, so a day's
bars are the same whether you generate that day alone or the whole year, and prices are
computed as integer cents before they become floats.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from catalog.instruments import make_instrument
from catalog.store import DEFAULT_CATALOG
from catalog.store import bar_type_for
from catalog.store import bars_from_frame
from catalog.store import open_catalog
from catalog.store import quotes_from_frame
from catalog.store import write_instrument

# Bump when the generated values change, so existing sample catalogs are regenerated.
GENERATOR_VERSION = 1
SAMPLE_SYMBOLS: tuple[str, ...] = ("SPY", "SH", "QQQ", "PSQ", "AAPL", "VIX")
TRADABLE_SYMBOLS: tuple[str, ...] = ("SPY", "SH", "QQQ", "PSQ", "AAPL")
SAMPLE_START = date(2024, 1, 2)  # also the model origin: anchors are simulated from here
SAMPLE_END = date(2024, 12, 31)
SAMPLE_SEED = 20240102
SAMPLE_MARKER = ".sample-complete.json"

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
QUOTE_COLUMNS = ("bid", "ask", "bid_size", "ask_size")
_PRICE_COLUMNS = frozenset(("open", "high", "low", "close", "bid", "ask"))

_NY = "America/New_York"
_MINUTE_NS = 60_000_000_000
_PRE_MINUTES = 330  # 04:00-09:30 ET
_POST_MINUTES = 240  # four hours after the regular close
_FULL_SESSION_MINUTES = 390
_SESSIONS_PER_YEAR = 252

# Closes on the session before the origin (2023-12-29); SH and PSQ are set so that a year of
# 2024-like returns keeps them in their real ranges.
_START_PRICE = {"SPY": 475.31, "QQQ": 409.52, "AAPL": 192.53, "SH": 13.90, "PSQ": 11.70}
_START_VIX = 12.45

# Factor loadings: QQQ = 1.15 m + t, AAPL = 1.05 m + 0.4 t + a (m market, t tech, a AAPL).
_QQQ_BETA, _AAPL_BETA, _AAPL_TECH = 1.15, 1.05, 0.40
# Log growth per session of each factor's trend line, chosen so the symbols end 2024 near
# SPY 590, QQQ 515 and AAPL 250.
_TREND = np.array([np.log(590 / 475.31), -0.02, 0.045]) / _SESSIONS_PER_YEAR
_PULL = np.array([0.03, 0.03, 0.02])  # daily mean reversion to the trend line

# Regimes 0 calm uptrend, 1 chop, 2 stress: transition matrix, market drift and daily vol.
_REGIME_STAY = np.array(
    [
        [0.975, 0.020, 0.005],
        [0.030, 0.950, 0.020],
        [0.030, 0.070, 0.900],
    ],
)
_REGIME_DRIFT = np.array([0.0010, 0.0, -0.0015])
_REGIME_VOL = np.array([0.0060, 0.0085, 0.0150])
_SELLOFF_PROB = np.array([0.004, 0.010, 0.060])
_VIX_TARGET = np.log(np.array([13.5, 16.0, 23.0]))
_VIX_BAND = np.log(np.array([12.0, 28.0]))
_VIX_BOUNDS = np.log(np.array([10.5, 38.0]))

# Share of a day's factor variance realised overnight (after-hours + gap + pre-market).
_OVERNIGHT_SHARE = 0.25
_INVERSE_DRAG = 0.015 / _SESSIONS_PER_YEAR  # expense ratio and swap costs of SH / PSQ

# Volume (average shares per day) and quoting parameters by tradable symbol.
_ADV = {"SPY": 60e6, "SH": 9e6, "QQQ": 38e6, "PSQ": 6e6, "AAPL": 55e6}
# Probability of a 1, 2, 3 cent regular-hours spread, and the extended-hours range in cents.
_SPREAD_REGULAR = {
    "SPY": (0.92, 0.07, 0.01),
    "SH": (0.95, 0.05, 0.0),
    "QQQ": (0.88, 0.10, 0.02),
    "PSQ": (0.93, 0.07, 0.0),
    "AAPL": (0.75, 0.20, 0.05),
}
_SPREAD_EXTENDED = {"SPY": (3, 10), "SH": (2, 6), "QQQ": (3, 10), "PSQ": (2, 6), "AAPL": (3, 12)}
_QUOTE_LOTS = {"SPY": 12.0, "SH": 20.0, "QQQ": 8.0, "PSQ": 20.0, "AAPL": 4.0}  # median, regular


@dataclass(frozen=True)
class _Session:
    """One NYSE session's minute grid: first bar open (04:00 ET) in UTC ns and phase lengths."""

    day: date
    pre_start_ns: int
    n_regular: int

    @property
    def n_minutes(self) -> int:
        return _PRE_MINUTES + self.n_regular + _POST_MINUTES


@dataclass(frozen=True)
class _Daily:
    """Daily anchors, one row per session from the origin, in log units relative to it."""

    first: np.ndarray  # (n, 3) factor level at the 04:00 open
    open: np.ndarray  # (n, 3) at the 09:30 open
    close: np.ndarray  # (n, 3) at the regular close
    last: np.ndarray  # (n, 3) at the end of after-hours
    vol: np.ndarray  # (n, 3) daily vol of each factor
    vix_open: np.ndarray  # (n,) log VIX
    vix_close: np.ndarray
    index_close: np.ndarray  # (n, 2) SPY and QQQ regular closes, dollars (unrounded)
    inverse_close: np.ndarray  # (n, 2) SH and PSQ regular closes, dollars
    activity: np.ndarray  # (n, 5) daily volume multiplier per tradable
    stressed: np.ndarray  # (n,) bool: regime stress or a sell-off, quotes widen


def _to_date(value: date | str | pd.Timestamp) -> date:
    return pd.Timestamp(value).date()


def _sessions(start: date, end: date) -> list[_Session]:
    """NYSE sessions from the origin through the first session after ``end``."""
    calendar = xcals.get_calendar(
        "XNYS",
        start=pd.Timestamp(SAMPLE_START),
        end=pd.Timestamp(end + timedelta(days=15)),
    )
    schedule = calendar.schedule
    # Integer nanoseconds throughout: exact, and no pandas Timedelta arithmetic.
    opens_ns = pd.DatetimeIndex(schedule["open"]).as_unit("ns").asi8
    closes_ns = pd.DatetimeIndex(schedule["close"]).as_unit("ns").asi8
    sessions: list[_Session] = []
    for label, open_ns, close_ns in zip(schedule.index, opens_ns, closes_ns, strict=True):
        day = label.date()
        # Build 04:00 in New York time so DST shifts the UTC grid; the regular open and close
        # come from the calendar, which knows the half-days.
        pre_start_ns = pd.Timestamp(datetime.combine(day, time(4)), tz=_NY).value
        if open_ns - pre_start_ns != _PRE_MINUTES * _MINUTE_NS:
            raise RuntimeError(f"{day}: the calendar's regular open is not 09:30 ET")
        n_regular = int((close_ns - open_ns) // _MINUTE_NS)
        sessions.append(_Session(day, int(pre_start_ns), n_regular))
        if day > end:
            break  # one session past the range: its overnight move shapes end's after-hours
    if not sessions or sessions[-1].day <= end:
        raise RuntimeError(f"the XNYS calendar does not reach past {end}")
    return sessions


def _simulate_daily(sessions: list[_Session], seed: int) -> _Daily:
    """Regimes, factor anchors, VIX and volume activity for every session, sequentially."""
    n = len(sessions)
    opens = np.empty((n, 3))
    closes = np.empty((n, 3))
    overnight = np.empty((n, 3))
    vols = np.empty((n, 3))
    gap_noise = np.empty((n, 2, 3))
    vix_open = np.empty(n)
    vix_close = np.empty(n)
    activity = np.empty((n, 5))
    stressed = np.empty(n, dtype=bool)
    close_prev = np.zeros(3)
    lvix = np.log(_START_VIX)
    regime = 0
    for i, session in enumerate(sessions):
        # A fixed number of draws per session from a per-date generator: the anchors of a day do
        # not depend on how many draws other code paths made.
        rng = np.random.default_rng([seed, 0, session.day.toordinal()])
        u = rng.random(6)
        z = rng.standard_normal(20)
        regime = int(np.searchsorted(np.cumsum(_REGIME_STAY[regime]), u[0], side="right"))
        regime = min(regime, 2)
        selloff = u[1] < _SELLOFF_PROB[regime]
        shock = 0.022 + 0.023 * u[2] if selloff else 0.0
        vol_m = _REGIME_VOL[regime]
        vol_ratio = vol_m / _REGIME_VOL[1]
        vol = np.array([vol_m, 0.0045 * np.sqrt(vol_ratio), 0.0100 * np.sqrt(vol_ratio)])
        half_day = np.sqrt(session.n_regular / _FULL_SESSION_MINUTES)

        trend = _TREND * (i + 1)
        drift = _PULL * (trend - close_prev)
        drift[0] += _REGIME_DRIFT[regime]
        # Tech sells off harder than the market on sell-off days.
        shocks = np.array([shock, shock * 0.4 * u[3], 0.0])
        night = (
            _OVERNIGHT_SHARE * drift
            + vol * np.sqrt(_OVERNIGHT_SHARE) * z[0:3]
            - 0.35 * shocks
        )
        if u[4] < 0.016:  # an earnings-style overnight jump in AAPL
            night[2] += 0.035 * z[3]
        day = (
            (1 - _OVERNIGHT_SHARE) * drift
            + vol * np.sqrt(1 - _OVERNIGHT_SHARE) * half_day * z[4:7]
            - 0.65 * shocks
        )
        overnight[i] = night
        opens[i] = close_prev + night
        closes[i] = opens[i] + day
        vols[i] = vol
        gap_noise[i, 0] = 0.12 * vol * z[7:10]
        gap_noise[i, 1] = 0.12 * vol * z[10:13]

        # VIX: about -5 log points per unit market log return, mean reversion to the regime's
        # level, its own noise, and a jump on sell-off days.
        lvix_open = lvix - 5.0 * night[0] + 0.025 * z[13]
        # Reversion is stronger far from the usual band, as VIX rarely holds below 12 or
        # above 30; the hard bounds only catch a rare run of shocks.
        kappa = 0.08 if _VIX_BAND[0] < lvix_open < _VIX_BAND[1] else 0.30
        lvix = (
            lvix_open
            - 5.0 * day[0]
            + kappa * (_VIX_TARGET[regime] - lvix_open)
            + 0.04 * z[14]
            + (0.10 + 0.15 * u[5] if selloff else 0.0)
        )
        lvix = float(np.clip(lvix, *_VIX_BOUNDS))
        lvix_open = float(np.clip(lvix_open, *_VIX_BOUNDS))
        vix_open[i] = lvix_open
        vix_close[i] = lvix

        # Volume rises with the day's move and the regime's vol; fewer minutes, fewer shares.
        move = abs(night[0] + day[0]) / _REGIME_VOL[1]
        base = (0.75 + 0.25 * move) * vol_ratio**0.5 * np.exp(0.15 * z[15])
        base *= session.n_regular / _FULL_SESSION_MINUTES
        idio = np.exp(0.10 * z[16:20])
        aapl_move = abs(night[2] + day[2]) / 0.01
        # SH shares SPY's flow and PSQ QQQ's, each with some of its own.
        spy, qqq = idio[0], idio[2]
        aapl = idio[3] * (0.8 + 0.2 * aapl_move)
        activity[i] = base * np.array([spy, spy * idio[1], qqq, qqq * idio[1], aapl])
        stressed[i] = selloff or regime == 2
        close_prev = closes[i]
        if selloff:
            regime = 2  # volatility clusters after a sell-off

    prev_close = np.vstack([np.zeros((1, 3)), closes[:-1]])
    first = prev_close + 0.75 * overnight + gap_noise[:, 0]
    next_overnight = np.vstack([overnight[1:], np.zeros((1, 3))])
    last = closes + 0.30 * next_overnight + gap_noise[:, 1]

    # Daily-reset -1x ETFs: each day's return is minus the index's close-to-close return.
    index_log = np.column_stack(
        [closes[:, 0], _QQQ_BETA * closes[:, 0] + closes[:, 1]],
    )
    index_prev = np.vstack([np.zeros((1, 2)), index_log[:-1]])
    daily = (2.0 - np.exp(index_log - index_prev)) * (1.0 - _INVERSE_DRAG)
    inverse_close = np.array([_START_PRICE["SH"], _START_PRICE["PSQ"]]) * np.cumprod(daily, axis=0)
    index_close = np.array([_START_PRICE["SPY"], _START_PRICE["QQQ"]]) * np.exp(index_log)
    return _Daily(
        first,
        opens,
        closes,
        last,
        vols,
        vix_open,
        vix_close,
        index_close,
        inverse_close,
        activity,
        stressed,
    )


def _bridge(
    x0: np.ndarray,
    x1: np.ndarray,
    weights: np.ndarray,
    variance: np.ndarray,
    z: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    A Brownian bridge per row from ``x0`` to ``x1`` on a clock given by per-minute weights.

    Returns the path at each minute's end (the last column equals ``x1``), the per-minute
    standard deviation, and the fraction of the clock elapsed at each minute.
    """
    share = weights / weights.sum()
    sigma = np.sqrt(variance[:, None] * share[None, :])
    walk = np.cumsum(sigma * z, axis=1)
    frac = np.cumsum(share)
    frac[-1] = 1.0
    path = x0[:, None] + frac * (x1 - x0)[:, None] + walk - frac * walk[:, -1:]
    return path, sigma, frac


def _phase_weights(n_regular: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intraday variance clock: busy open and close, quiet midday, thin extended hours."""
    k_pre = np.arange(_PRE_MINUTES)
    pre = 0.15 + 0.35 * np.exp(-(_PRE_MINUTES - 1 - k_pre) / 40.0)
    k = np.arange(n_regular)
    regular = 1.0 + 2.0 * np.exp(-k / 25.0) + 0.8 * np.exp(-(n_regular - 1 - k) / 20.0)
    k_post = np.arange(_POST_MINUTES)
    post = 0.08 + 0.30 * np.exp(-k_post / 30.0)
    return pre, regular, post


def _volume_profile(n_regular: int) -> np.ndarray:
    """Share of a day's volume traded in each minute: a U in the session, a trickle outside."""
    k_pre = np.arange(_PRE_MINUTES)
    pre = 0.2 + np.exp(-(_PRE_MINUTES - 1 - k_pre) / 30.0)
    k = np.arange(n_regular)
    regular = 1.0 + 3.0 * np.exp(-k / 15.0) + 1.5 * np.exp(-(n_regular - 1 - k) / 10.0)
    regular[-1] += 6.0  # the closing auction
    k_post = np.arange(_POST_MINUTES)
    post = 0.1 + np.exp(-k_post / 20.0)
    return np.concatenate(
        [0.035 * pre / pre.sum(), 0.90 * regular / regular.sum(), 0.065 * post / post.sum()],
    )


def _with_wicks(
    log_open: np.ndarray,
    log_close: np.ndarray,
    sigma: np.ndarray,
    z_high: np.ndarray,
    z_low: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Open, high, low, close in dollars, the wicks reaching past the body by about 0.4 sigma."""
    high = np.maximum(log_open, log_close) + 0.5 * sigma * np.abs(z_high)
    low = np.minimum(log_open, log_close) - 0.5 * sigma * np.abs(z_low)
    return tuple(np.exp(x) for x in (log_open, high, low, log_close))


def _cents_from_prices(*prices: np.ndarray) -> tuple[np.ndarray, ...]:
    """Round OHLC to integer cents, then widen high and low so the bar is still valid."""
    o, h, l, c = (np.maximum(np.rint(p * 100.0).astype(np.int64), 1) for p in prices)
    return o, np.maximum(h, np.maximum(o, c)), np.minimum(l, np.minimum(o, c)), c


def _quotes(
    rng: np.random.Generator,
    symbol: str,
    close: np.ndarray,
    regular: np.ndarray,
    stressed: bool,
) -> tuple[np.ndarray, ...]:
    """Bid, ask (cents) around the close and round-lot sizes; wider outside regular hours."""
    n = close.size
    u_spread, u_place, u_stress = rng.random((3, n))
    z_size = rng.standard_normal((2, n))
    spread_regular = 1 + np.searchsorted(np.cumsum(_SPREAD_REGULAR[symbol]), u_spread, side="right")
    spread_regular = np.minimum(spread_regular, 3)
    lo, hi = _SPREAD_EXTENDED[symbol]
    spread_extended = lo + np.floor(u_spread * (hi - lo + 1)).astype(np.int64)
    spread = np.where(regular, spread_regular, spread_extended)
    first_regular = np.flatnonzero(regular)[:3]
    spread[first_regular] += 1  # the opening minutes are wider
    if stressed:
        spread += (u_stress < 0.3) & regular
    # Place the close anywhere inside the spread: bid <= close <= ask, bid < ask.
    bid = close - np.floor(u_place * (spread + 1)).astype(np.int64)
    bid = np.maximum(bid, 1)
    ask = bid + spread
    median = np.where(regular, _QUOTE_LOTS[symbol], 1.5)
    lots = 1 + np.floor(median * np.exp(0.8 * z_size)).astype(np.int64)
    return bid, ask, lots[0] * 100, lots[1] * 100


def _session_arrays(
    session: _Session,
    index: int,
    daily: _Daily,
    seed: int,
) -> dict[str, dict[str, np.ndarray]]:
    """All symbols' minute arrays for one session (prices in cents, timestamps in ns)."""
    rng = np.random.default_rng([seed, 1, session.day.toordinal()])
    n_reg = session.n_regular
    n = session.n_minutes
    w_pre, w_reg, w_post = _phase_weights(n_reg)
    vol2 = daily.vol[index] ** 2
    z = rng.standard_normal((3, n))
    a, b = _PRE_MINUTES, _PRE_MINUTES + n_reg
    pre, s_pre, _ = _bridge(
        daily.first[index], daily.open[index], w_pre, vol2 * 0.08, z[:, :a],
    )
    reg, s_reg, frac_reg = _bridge(
        daily.open[index], daily.close[index], w_reg, vol2 * (1 - _OVERNIGHT_SHARE), z[:, a:b],
    )
    post, s_post, _ = _bridge(
        daily.close[index], daily.last[index], w_post, vol2 * 0.05, z[:, b:],
    )
    factor_close = np.hstack([pre, reg, post])
    factor_open = np.hstack([daily.first[index][:, None], factor_close[:, :-1]])
    factor_sigma = np.hstack([s_pre, s_reg, s_post])
    m_o, t_o, a_o = factor_open
    m_c, t_c, a_c = factor_close
    s_m, s_t, s_a = factor_sigma

    log_open = {
        "SPY": np.log(_START_PRICE["SPY"]) + m_o,
        "QQQ": np.log(_START_PRICE["QQQ"]) + _QQQ_BETA * m_o + t_o,
        "AAPL": np.log(_START_PRICE["AAPL"]) + _AAPL_BETA * m_o + _AAPL_TECH * t_o + a_o,
    }
    log_close = {
        "SPY": np.log(_START_PRICE["SPY"]) + m_c,
        "QQQ": np.log(_START_PRICE["QQQ"]) + _QQQ_BETA * m_c + t_c,
        "AAPL": np.log(_START_PRICE["AAPL"]) + _AAPL_BETA * m_c + _AAPL_TECH * t_c + a_c,
    }
    sigma = {
        "SPY": s_m,
        "QQQ": np.hypot(_QQQ_BETA * s_m, s_t),
        "AAPL": np.sqrt((_AAPL_BETA * s_m) ** 2 + (_AAPL_TECH * s_t) ** 2 + s_a**2),
    }
    z_wick = np.abs(rng.standard_normal((8, n)))
    z_volume = rng.standard_normal((5, n))
    z_vix = rng.standard_normal(n_reg)

    out: dict[str, dict[str, np.ndarray]] = {}
    floats: dict[str, tuple[np.ndarray, ...]] = {}
    for j, symbol in enumerate(("SPY", "QQQ", "AAPL")):
        floats[symbol] = _with_wicks(
            log_open[symbol], log_close[symbol], sigma[symbol], z_wick[2 * j], z_wick[2 * j + 1],
        )

    # SH and PSQ: -1x the index's move since the last regular close, off their own last close.
    # Pre-market and regular minutes reference the previous close (with a day's drag), after-
    # hours the session's own close.
    in_post = np.arange(n) >= b
    for k, (symbol, underlying) in enumerate((("SH", "SPY"), ("PSQ", "QQQ"))):
        if index > 0:
            index_prev = daily.index_close[index - 1, k]
            inverse_prev = daily.inverse_close[index - 1, k]
        else:
            index_prev, inverse_prev = _START_PRICE[underlying], _START_PRICE[symbol]
        ref_index = np.where(in_post, daily.index_close[index, k], index_prev)
        ref_inverse = np.where(
            in_post, daily.inverse_close[index, k], inverse_prev * (1.0 - _INVERSE_DRAG),
        )
        uo, uh, ul, uc = floats[underlying]
        # The inverse's high is where the index was lowest, and vice versa.
        floats[symbol] = tuple(ref_inverse * (2.0 - x / ref_index) for x in (uo, ul, uh, uc))

    regular = np.zeros(n, dtype=bool)
    regular[a:b] = True
    ts = session.pre_start_ns + (np.arange(1, n + 1, dtype=np.int64) * _MINUTE_NS)
    profile = _volume_profile(n_reg)
    for j, symbol in enumerate(TRADABLE_SYMBOLS):
        o, h, l, c = _cents_from_prices(*floats[symbol])
        underlying = {"SH": "SPY", "PSQ": "QQQ"}.get(symbol, symbol)
        # Busier minutes move more: scale volume with the size of the minute's move.
        log_path = np.log(np.concatenate([floats[underlying][0][:1], floats[underlying][3]]))
        move = np.abs(np.diff(log_path)) / np.maximum(sigma[underlying], 1e-12)
        noise = np.exp(0.4 * z_volume[j] - 0.08) * (0.8 + 0.25 * np.minimum(move, 6.0))
        volume = np.rint(_ADV[symbol] * daily.activity[index, j] * profile * noise).astype(np.int64)
        bid, ask, bid_size, ask_size = _quotes(rng, symbol, c, regular, bool(daily.stressed[index]))
        out[symbol] = {
            "ts": ts, "open": o, "high": h, "low": l, "close": c,
            "volume": np.maximum(volume, 1),
            "bid": bid, "ask": ask, "bid_size": bid_size, "ask_size": ask_size,
        }  # fmt: skip

    # VIX: regular minutes only, inverse to the market's intraday wiggles around its bridge.
    m_line = daily.open[index, 0] + frac_reg * (daily.close[index, 0] - daily.open[index, 0])
    wiggle = reg[0] - m_line
    vix_path, vix_sigma, _ = _bridge(
        daily.vix_open[index : index + 1],
        daily.vix_close[index : index + 1],
        w_reg,
        np.array([0.035**2]),
        z_vix[None, :],
    )
    vix_close = vix_path[0] - 5.0 * wiggle
    vix_open = np.concatenate([[daily.vix_open[index]], vix_close[:-1]])
    vix_sig = np.hypot(vix_sigma[0], 5.0 * s_m[a:b])
    o, h, l, c = _cents_from_prices(
        *_with_wicks(vix_open, vix_close, vix_sig, z_wick[6, a:b], z_wick[7, a:b]),
    )
    out["VIX"] = {
        "ts": ts[a:b], "open": o, "high": h, "low": l, "close": c,
        "volume": np.zeros(n_reg, dtype=np.int64),
    }  # fmt: skip
    return out


def _frame(parts: list[dict[str, np.ndarray]], tradable: bool) -> pd.DataFrame:
    ts = np.concatenate([p["ts"] for p in parts])
    index = pd.DatetimeIndex(ts.view("datetime64[ns]"), name="ts_event").tz_localize("UTC")
    columns = BAR_COLUMNS + QUOTE_COLUMNS if tradable else BAR_COLUMNS
    data: dict[str, np.ndarray] = {}
    for column in columns:
        values = np.concatenate([p[column] for p in parts])
        # Prices are held as integer cents until here, so the floats are identical everywhere.
        data[column] = values / 100.0 if column in _PRICE_COLUMNS else values
    return pd.DataFrame(data, index=index)


def _generate(
    symbols: Iterable[str],
    start: date | str | pd.Timestamp,
    end: date | str | pd.Timestamp,
    seed: int,
    on_session: Callable[[int, int], None] | None = None,
) -> dict[str, pd.DataFrame]:
    symbols = list(symbols)
    unknown = [s for s in symbols if s not in SAMPLE_SYMBOLS]
    if unknown:
        raise ValueError(
            f"the sample has no {', '.join(unknown)}; it has {', '.join(SAMPLE_SYMBOLS)}",
        )
    start_day, end_day = _to_date(start), _to_date(end)
    if start_day < SAMPLE_START:
        raise ValueError(f"the sample starts at {SAMPLE_START}, got start={start_day}")
    if end_day < start_day:
        raise ValueError(f"end {end_day} is before start {start_day}")
    sessions = _sessions(start_day, end_day)
    wanted = [i for i, s in enumerate(sessions) if start_day <= s.day <= end_day]
    if not wanted:
        raise ValueError(f"no NYSE sessions between {start_day} and {end_day}")
    daily = _simulate_daily(sessions, seed)
    parts: dict[str, list[dict[str, np.ndarray]]] = {s: [] for s in SAMPLE_SYMBOLS}
    for done, i in enumerate(wanted, start=1):
        for symbol, arrays in _session_arrays(sessions[i], i, daily, seed).items():
            parts[symbol].append(arrays)
        if on_session is not None:
            on_session(done, len(wanted))
    return {s: _frame(parts[s], tradable=s in TRADABLE_SYMBOLS) for s in symbols}


def generate_frames(
    symbols: Iterable[str] = SAMPLE_SYMBOLS,
    start: date | str | pd.Timestamp = SAMPLE_START,
    end: date | str | pd.Timestamp = SAMPLE_END,
    seed: int = SAMPLE_SEED,
) -> dict[str, pd.DataFrame]:
    """
    Sample minute data per symbol for the NYSE sessions from ``start`` to ``end`` (inclusive).

    Each frame is indexed by bar close time (tz-aware UTC, named ``ts_event``) and has
    open/high/low/close (dollars at cent ticks) and integer volume; tradables also have the
    quote at that time: bid/ask (dollars) and bid_size/ask_size (round lots). VIX has regular-
    session bars only, with zero volume. Pure: the same arguments give the same frames.
    """
    return _generate(symbols, start, end, seed)


def _fingerprint(start: date, end: date, seed: int) -> dict[str, object]:
    return {
        "generator_version": GENERATOR_VERSION,
        "symbols": list(SAMPLE_SYMBOLS),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "seed": seed,
    }


def _read_marker(path: Path) -> dict[str, object] | None:
    try:
        marker = json.loads((path / SAMPLE_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _marker_matches(path: Path, fingerprint: dict[str, object]) -> bool:
    marker = _read_marker(path)
    return marker is not None and {k: marker.get(k) for k in fingerprint} == fingerprint


def _remove_stale_partials(path: Path) -> None:
    """Delete temp folders left by runs that were killed (their process no longer exists)."""
    for partial in path.parent.glob(f".{path.name}.partial-*"):
        try:
            pid = int(partial.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(partial, ignore_errors=True)
        except PermissionError:
            pass  # alive, someone else's


def ensure_sample_catalog(
    path: Path | str = DEFAULT_CATALOG,
    progress: bool = True,
    *,
    start: date | str | pd.Timestamp = SAMPLE_START,
    end: date | str | pd.Timestamp = SAMPLE_END,
    seed: int = SAMPLE_SEED,
) -> Path:
    """
    Write the sample into a Parquet catalog at ``path`` unless it is already there.

    A marker file records the generator version and range; when it matches, nothing is done.
    The catalog is written to a temp folder beside ``path`` and renamed into place at the end,
    so an interrupted run never leaves a half catalog. An older sample at ``path`` is replaced;
    a folder holding anything else is refused rather than mixed with synthetic data.
    """
    from rich.progress import BarColumn
    from rich.progress import MofNCompleteColumn
    from rich.progress import Progress
    from rich.progress import TextColumn
    from rich.progress import TimeElapsedColumn

    path = Path(path).resolve()
    start_day, end_day = _to_date(start), _to_date(end)
    fingerprint = _fingerprint(start_day, end_day, seed)
    if _marker_matches(path, fingerprint):
        return path
    if path.exists() and any(path.iterdir()) and _read_marker(path) is None:
        raise FileExistsError(
            f"{path} holds a catalog that is not the sample; pass another path for the sample",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(path)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)

    columns = (
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, disable=not progress) as bar:
            sessions_task = bar.add_task("Generating sample sessions", total=None)
            frames = _generate(
                SAMPLE_SYMBOLS,
                start_day,
                end_day,
                seed,
                on_session=lambda done, total: bar.update(
                    sessions_task, completed=done, total=total,
                ),
            )
            write_task = bar.add_task("Writing sample catalog", total=len(frames))
            catalog = open_catalog(partial)
            for symbol, frame in frames.items():
                bar.update(write_task, description=f"Writing {symbol}")
                instrument = make_instrument(symbol)
                write_instrument(catalog, instrument)
                bar_type = bar_type_for(instrument.id, "1min")
                catalog.write_data(bars_from_frame(instrument, bar_type, frame))
                if symbol in TRADABLE_SYMBOLS:
                    catalog.write_data(quotes_from_frame(instrument, frame))
                bar.advance(write_task)
            bar.update(write_task, description="Writing sample catalog")
        # The marker goes in last: its presence means the catalog is complete.
        counts = {s: len(f) for s, f in frames.items()}
        (partial / SAMPLE_MARKER).write_text(json.dumps({**fingerprint, "bars": counts}, indent=2))
        _swap_into_place(partial, path, fingerprint)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return path


def _swap_into_place(partial: Path, path: Path, fingerprint: dict[str, object]) -> None:
    """Rename the finished temp catalog to ``path``, replacing an empty folder or older sample."""
    if path.exists():
        if _marker_matches(path, fingerprint):
            return  # another process finished first
        if any(path.iterdir()):
            retired = path.with_name(f".{path.name}.retired-{os.getpid()}")
            os.rename(path, retired)
            os.rename(partial, path)
            shutil.rmtree(retired, ignore_errors=True)
            return
        path.rmdir()
    os.rename(partial, path)
