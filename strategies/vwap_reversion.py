"""
Mean reversion to the session VWAP, 10:30-14:30 ET, over a watchlist.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from nautilus_trader.common.events import TimeEvent
from nautilus_trader.config import PositiveInt
from nautilus_trader.indicators import BollingerBands
from nautilus_trader.indicators import VolumeWeightedAveragePrice
from nautilus_trader.model.data import Bar

from strategies.adx import AverageDirectionalIndex
from strategies.records import ExitReason
from strategies.session_strategy import Holding
from strategies.session_strategy import SessionStrategy
from strategies.session_strategy import SessionStrategyConfig
from strategies.sessions import Session

SIZING_CHOICES = ("equal", "strength")
NANOS_PER_MINUTE = 60_000_000_000


class VWAPReversionConfig(SessionStrategyConfig, frozen=True):
    """
    min_deviation: distance from the session VWAP (fraction of VWAP) that arms a setup.
    max_positions: open positions at once; each gets capital / max_positions ("equal"), or
        that times min(2, deviation / min_deviation) ("strength"), within free cash.
    timeout_minutes: a position still open this long after entry is sold.
    stop_fraction: 1.5% by default for this strategy.
    adx_filter, adx_period, adx_max: skip signals while ADX(period) > adx_max (or not ready).
    bollinger_filter, bollinger_period, bollinger_k: require the setup to have touched the
        k-standard-deviation Bollinger band on the side of the deviation.
    """

    min_deviation: Decimal = Decimal("0.02")
    max_positions: PositiveInt = 5
    sizing: str = "equal"
    timeout_minutes: PositiveInt = 45
    stop_fraction: Decimal = Decimal("0.015")
    adx_filter: bool = False
    adx_period: PositiveInt = 14
    adx_max: float = 25.0
    bollinger_filter: bool = False
    bollinger_period: PositiveInt = 20
    bollinger_k: float = 2.0

    def validation_problems(self) -> list[str]:
        problems = super().validation_problems()
        if not 0 < self.min_deviation < 1:
            problems.append(f"min_deviation: must be in (0, 1), got {self.min_deviation}")
        if self.sizing not in SIZING_CHOICES:
            problems.append(f"sizing: must be one of {', '.join(SIZING_CHOICES)}, got {self.sizing!r}")
        if not 0 < self.adx_max <= 100:
            problems.append(f"adx_max: ADX runs 0..100, got {self.adx_max}")
        if self.bollinger_k <= 0:
            problems.append(f"bollinger_k: must be positive, got {self.bollinger_k}")
        return problems


@dataclass
class Setup:
    """A deviation from VWAP waiting for its reversal bar."""

    side: str  # "below" (bullish setup) or "above" (bearish setup)
    extreme: Decimal  # lowest low (below) or highest high (above) since armed
    deviation: Decimal  # largest |close - vwap| / vwap seen while armed
    band_touched: bool


class SymbolState:
    def __init__(self, config: VWAPReversionConfig) -> None:
        self.vwap = VolumeWeightedAveragePrice()
        self.adx = AverageDirectionalIndex(config.adx_period)
        self.bands = BollingerBands(config.bollinger_period, config.bollinger_k)
        self.setup: Setup | None = None
        self.prev_close: Decimal | None = None


class VWAPReversion(SessionStrategy):
    """
    Rules (exchange time; entries 10:30-14:30, cut at an early close):

    - Session VWAP: Nautilus's VolumeWeightedAveragePrice over the regular-hours bars of the
      session, (high + low + close) / 3 weighted by volume. Nautilus resets it when the UTC
      day of month changes; this strategy resets it explicitly at each session's first bar
      and feeds it regular-hours bars only, so pre-market bars never enter it.
    - Setup (armed): a bar closes at least min_deviation below the VWAP (bullish setup) or
      above it (bearish setup). While armed, the extreme is the lowest low (highest high)
      since arming; a bar closing at or beyond the VWAP disarms the setup.
    - Reversal bar: the first bar after the arming bar that (1) makes no new extreme
      (low >= extreme for bullish, high <= extreme for bearish), (2) closes above its open
      (below, bearish), (3) closes above the previous bar's close (below, bearish), and
      (4) still closes below the VWAP (above, bearish). A reversal bar consumes its setup even
      when it cannot trade (outside the window, a filter, max_positions, the blocklist).
    - Entry: bullish buys the stock; bearish buys the mapped 1x inverse ETF. At most
      max_positions open at once. Optional filters: ADX(adx_period) <= adx_max; the setup's
      bars touched the Bollinger band (low <= lower band, high >= upper band).
    - Exit, whichever first: the signal symbol's bar reaches the VWAP (high >= VWAP for a
      stock held, low <= VWAP for an inverse ETF held), timeout_minutes after entry (a timer),
      the stop-market 1.5% below the fill, or 15:15 (the window end plus the timeout; an early
      close cuts it).
    """

    ENTRY_WINDOW = ("10:30", "14:30")
    EXIT_TIME = "15:15"

    def __init__(self, config: VWAPReversionConfig) -> None:
        super().__init__(config)
        self.symbols_state = {symbol: SymbolState(config) for symbol in config.watchlist}

    def on_session_start(self, session: Session) -> None:
        for state in self.symbols_state.values():
            state.vwap.reset()
            state.setup = None
            state.prev_close = None

    def on_session_bar(self, symbol: str, bar: Bar) -> None:
        state = self.symbols_state.get(symbol)
        if state is None:
            return
        state.vwap.handle_bar(bar)
        state.adx.handle_bar(bar)
        state.bands.handle_bar(bar)
        vwap = Decimal(str(state.vwap.value))
        self._check_exits(symbol, bar, vwap)
        signal = self._advance_setup(state, bar, vwap)
        state.prev_close = bar.close.as_decimal()
        if signal is not None and self.in_entry_window(bar.ts_event):
            self._signal(symbol, state, signal, bar.ts_event)

    def _advance_setup(self, state: SymbolState, bar: Bar, vwap: Decimal) -> Setup | None:
        """Update the setup with this bar; the setup when this bar is its reversal bar."""
        close, open_ = bar.close.as_decimal(), bar.open.as_decimal()
        high, low = bar.high.as_decimal(), bar.low.as_decimal()
        deviation = (close - vwap) / vwap
        setup = state.setup
        if setup is None:
            if abs(deviation) >= self.config.min_deviation:
                side = "below" if deviation < 0 else "above"
                state.setup = Setup(side, low if side == "below" else high, abs(deviation), self._band_touch(state, side, bar))
            return None
        below = setup.side == "below"
        if (below and close >= vwap) or (not below and close <= vwap):
            state.setup = None
            return None
        setup.deviation = max(setup.deviation, abs(deviation))
        setup.band_touched = setup.band_touched or self._band_touch(state, setup.side, bar)
        if (below and low < setup.extreme) or (not below and high > setup.extreme):
            setup.extreme = low if below else high
            return None
        prev = state.prev_close
        if prev is None:
            return None
        if below and close > open_ and close > prev:
            state.setup = None
            return setup
        if not below and close < open_ and close < prev:
            state.setup = None
            return setup
        return None

    def _band_touch(self, state: SymbolState, side: str, bar: Bar) -> bool:
        if not state.bands.initialized:
            return False
        if side == "below":
            return bar.low.as_double() <= state.bands.lower
        return bar.high.as_double() >= state.bands.upper

    def _signal(self, symbol: str, state: SymbolState, setup: Setup, ts_ns: int) -> None:
        side = "bullish" if setup.side == "below" else "bearish"
        if self.config.adx_filter and (not state.adx.initialized or state.adx.value > self.config.adx_max):
            self.log.info(f"{symbol} reversal skipped: ADX {state.adx.value:.1f} (ready={state.adx.initialized})")
            return
        if self.config.bollinger_filter and not setup.band_touched:
            self.log.info(f"{symbol} reversal skipped: no Bollinger band touch")
            return
        if len(self.holdings) >= self.config.max_positions:
            self.log.info(f"{symbol} reversal skipped: {len(self.holdings)} positions open")
            return
        budget = self.strategy_capital() / self.config.max_positions
        if self.config.sizing == "strength":
            budget *= min(Decimal(2), setup.deviation / self.config.min_deviation)
        if self.enter(symbol, side, "reversion", budget, ts_ns):
            traded = symbol if side == "bullish" else self.bearish_symbol(symbol)
            self.clock.set_time_alert_ns(
                name=f"{self.id}-timeout-{traded}-{ts_ns}",
                alert_time_ns=ts_ns + self.config.timeout_minutes * NANOS_PER_MINUTE,
                callback=self._on_timeout,
            )

    def _holdings_of(self, signal_symbol: str) -> Iterator[Holding]:
        return (h for h in list(self.holdings.values()) if h.signal_symbol == signal_symbol)

    def _check_exits(self, symbol: str, bar: Bar, vwap: Decimal) -> None:
        for holding in self._holdings_of(symbol):
            touched = bar.high.as_decimal() >= vwap if holding.side == "bullish" else bar.low.as_decimal() <= vwap
            if touched:
                self.exit(holding.traded_symbol, ExitReason.VWAP_TOUCH)

    def _on_timeout(self, event: TimeEvent) -> None:
        # name: <strategy>-timeout-<symbol>-<entry ns>
        _, symbol, entered = event.name.rsplit("-", 2)
        holding = self.holdings.get(symbol)
        if holding is not None and holding.entered_ns == int(entered):
            self.exit(symbol, ExitReason.TIMEOUT)
