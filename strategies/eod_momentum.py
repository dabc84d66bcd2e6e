"""
End-of-day momentum or fade, 14:30-16:00 ET, hard exit at 15:55 ET.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from nautilus_trader.config import PositiveInt
from nautilus_trader.indicators import VolumeWeightedAveragePrice
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType

from strategies.session_strategy import NotYetSupportedError
from strategies.session_strategy import SessionStrategy
from strategies.session_strategy import SessionStrategyConfig
from strategies.sessions import Session

MODES = ("auto", "continuation", "fade")


class EODMomentumConfig(SessionStrategyConfig, frozen=True):
    """
    capital_fraction: 30-40% of account equity (default 35%).
    modes: "auto" (fade when a spike reversal is present, else continuation), or only one.
    breakout_bars: continuation breaks the high (low) of this many previous bars.
    spike_bars, spike_fraction: a spike is a move of at least spike_fraction between the close
        spike_bars bars before the previous bar and the previous bar's close.
    max_positions: open positions at once, each capital / max_positions.
    vix_bar_type, min_vix: the VIX gate (off when min_vix is None): no entries in a session
        whose latest VIX close before the window is below min_vix, or when none is known.
    auction_imbalance_filter: IB live only; no adapter here feeds imbalance data yet, so
        turning it on is refused at start-up (backtests report it off).
    """

    capital_fraction: Decimal = Decimal("0.35")
    modes: str = "auto"
    breakout_bars: PositiveInt = 30
    spike_bars: PositiveInt = 15
    spike_fraction: Decimal = Decimal("0.01")
    max_positions: PositiveInt = 2
    vix_bar_type: BarType | None = None
    min_vix: Decimal | None = None
    auction_imbalance_filter: bool = False

    def __post_init__(self) -> None:
        if self.auction_imbalance_filter:
            raise NotYetSupportedError(
                "auction_imbalance_filter=True is not yet supported: it needs IB auction "
                "imbalance data (live only) that no adapter here provides yet",
            )
        super().__post_init__()

    def validation_problems(self) -> list[str]:
        problems = super().validation_problems()
        if not Decimal("0.3") <= self.capital_fraction <= Decimal("0.4"):
            problems.append(f"capital_fraction: end-of-day momentum takes 30-40% of capital, got {self.capital_fraction}")
        if self.modes not in MODES:
            problems.append(f"modes: must be one of {', '.join(MODES)}, got {self.modes!r}")
        if not 0 < self.spike_fraction < 1:
            problems.append(f"spike_fraction: must be in (0, 1), got {self.spike_fraction}")
        if self.min_vix is not None and self.vix_bar_type is None:
            problems.append("min_vix: the VIX gate needs vix_bar_type (the VIX index bars)")
        return problems


class EODMomentum(SessionStrategy):
    """
    Rules (exchange time; entries in (14:30, 15:55), cut at an early close, so a half-day has
    no end-of-day session; hard exit at 15:55):

    - Session trend: up when the close is above both the session's first open and the
      session VWAP (Nautilus VolumeWeightedAveragePrice, reset at each session start); down
      when below both; otherwise none.
    - Fade (reversal after a late-day spike): the previous bar's close is at least
      spike_fraction above (below) the close spike_bars bars before it, and the current bar
      closes below its open and below the previous bar's low (above its open and above the
      previous bar's high). An up-spike fade is bearish (buys the inverse ETF), a down-spike
      fade bullish (buys the stock).
    - Continuation (a breakout aligned with the trend): trend up and the close above the
      highest high of the previous breakout_bars bars is bullish; trend down and the close
      below their lowest low is bearish.
    - Mode per signal: with modes="auto" a fade is taken when its conditions hold on the bar,
      otherwise continuation is tested; "continuation" or "fade" restricts to one.
    - Stops 2% below the fill; whatever is held at 15:55 is sold at market.
    - VIX gate (optional): see the config. The auction-imbalance filter is live only.
    """

    ENTRY_WINDOW = ("14:30", "15:55")
    EXIT_TIME = "15:55"

    def __init__(self, config: EODMomentumConfig) -> None:
        super().__init__(config)
        lookback = max(config.breakout_bars, config.spike_bars + 1) + 1
        self.recent: dict[str, deque[Bar]] = {s: deque(maxlen=lookback) for s in config.watchlist}
        self.vwaps = {s: VolumeWeightedAveragePrice() for s in config.watchlist}
        self.session_open: dict[str, Decimal] = {}
        self.last_vix: Decimal | None = None
        self.gate_open: bool | None = None  # decided at the first bar of each window

    def on_start(self) -> None:
        super().on_start()
        if self.config.vix_bar_type is not None:
            self.subscribe_bars(self.config.vix_bar_type)

    def on_bar(self, bar: Bar) -> None:
        if self.config.vix_bar_type is not None and bar.bar_type == self.config.vix_bar_type:
            self.last_vix = bar.close.as_decimal()
            return
        super().on_bar(bar)

    def on_session_start(self, session: Session) -> None:
        for symbol in self.config.watchlist:
            self.recent[symbol].clear()
            self.vwaps[symbol].reset()
        self.session_open.clear()
        self.gate_open = None

    def on_session_bar(self, symbol: str, bar: Bar) -> None:
        if symbol not in self.recent:
            return
        self.session_open.setdefault(symbol, bar.open.as_decimal())
        self.vwaps[symbol].handle_bar(bar)
        recent = self.recent[symbol]
        if self.in_entry_window(bar.ts_event) and self._gate():
            signal = self._signal(symbol, bar, list(recent))
            if signal is not None and len(self.holdings) < self.config.max_positions:
                side, mode = signal
                self.enter(symbol, side, mode, self.strategy_capital() / self.config.max_positions, bar.ts_event)
        recent.append(bar)

    def _gate(self) -> bool:
        if self.gate_open is None:
            if self.config.min_vix is None:
                self.gate_open = True
            elif self.last_vix is None:
                self.log.warning("VIX gate: no VIX value known, no end-of-day trades this session")
                self.gate_open = False
            else:
                self.gate_open = self.last_vix >= self.config.min_vix
                if not self.gate_open:
                    self.log.info(f"VIX gate: VIX {self.last_vix} < {self.config.min_vix}, no trades")
        return self.gate_open

    def _signal(self, symbol: str, bar: Bar, recent: list[Bar]) -> tuple[str, str] | None:
        if self.config.modes in ("auto", "fade"):
            fade = self._fade(bar, recent)
            if fade is not None:
                return fade, "fade"
        if self.config.modes in ("auto", "continuation"):
            trend = self._continuation(symbol, bar, recent)
            if trend is not None:
                return trend, "continuation"
        return None

    def _fade(self, bar: Bar, recent: list[Bar]) -> str | None:
        n = self.config.spike_bars
        if len(recent) < n + 1:
            return None
        prev, base = recent[-1], recent[-1 - n]
        move = (prev.close.as_decimal() - base.close.as_decimal()) / base.close.as_decimal()
        close, open_ = bar.close.as_decimal(), bar.open.as_decimal()
        if move >= self.config.spike_fraction and close < open_ and close < prev.low.as_decimal():
            return "bearish"
        if move <= -self.config.spike_fraction and close > open_ and close > prev.high.as_decimal():
            return "bullish"
        return None

    def _continuation(self, symbol: str, bar: Bar, recent: list[Bar]) -> str | None:
        n = self.config.breakout_bars
        if len(recent) < n:
            return None
        window = recent[-n:]
        close = bar.close.as_decimal()
        vwap = Decimal(str(self.vwaps[symbol].value))
        session_open = self.session_open[symbol]
        if close > session_open and close > vwap and close > max(b.high.as_decimal() for b in window):
            return "bullish"
        if close < session_open and close < vwap and close < min(b.low.as_decimal() for b in window):
            return "bearish"
        return None

    def extra_readiness_problems(self) -> list[str]:
        problems = []
        vix = self.config.vix_bar_type
        if vix is not None and self.cache.instrument(vix.instrument_id) is None:
            problems.append(f"vix_bar_type: instrument {vix.instrument_id} not loaded")
        return problems

    def readiness_notes(self) -> list[str]:
        gate = f"VIX gate on: min_vix {self.config.min_vix}" if self.config.min_vix is not None else "VIX gate off"
        return [gate, "auction-imbalance filter off (live only)"]
