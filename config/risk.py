"""
Risk settings shared by the pre-trade gate, position sizing, the kill switch and the error
handler. Percentages are written as percent (2.5 means 2.5%) and held as Decimal so money
arithmetic stays exact. The live-node configuration maps environment keys onto these fields
(MAX_RISK_PER_TRADE -> max_risk_per_trade_pct, DAILY_LOSS_LIMIT -> daily_loss_limit_pct, ...).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from nautilus_trader.config import NautilusConfig

# The refusal rules, in the order the gate applies them (first refusal wins). Each name is a
# rule class in risk/rules.py; a deployment lists the ones it wants.
DEFAULT_RULES: tuple[str, ...] = (
    "trading_disabled",
    "trading_halted",
    "trading_window",
    "price_range",
    "quote_sanity",
    "min_volume",
    "max_risk_per_trade",
    "max_open_risk",
    "symbol_cap",
    "max_open_positions",
    "expected_slippage",
    "pattern_day_trader",
)


class RiskConfig(NautilusConfig, frozen=True):
    """
    disable_all_trades: DISABLE_ALL_TRADES; refuses every order that opens or adds exposure.
    max_risk_per_trade_pct: MAX_RISK_PER_TRADE; quantity x stop distance as % of equity.
    default_stop_pct: the stop distance (% of price) assumed for an order that carries no stop.
    max_open_risk_pct: MAX_OPEN_RISK; the sum of open positions' and working orders' risk.
    symbol_cap_pct: market value one symbol may reach, % of equity.
    max_open_positions: MAX_OPEN_POSITIONS; distinct symbols held at once.
    max_spread_pct: widest accepted spread, % of the mid price.
    require_quotes: refuse when no quote is known (live); backtests on bars have none.
    min_price, max_price: MIN_PRICE / MAX_PRICE in USD.
    min_volume_threshold: MIN_VOLUME_THRESHOLD; average volume per bar over the last
        `volume_lookback_bars` bars of the gate's bar type.
    max_slippage_pct: expected slippage limit; expected slippage is half the spread plus
        `slippage_impact_pct` x (order quantity / average bar volume).
    check_slippage_in_backtest: the slippage rule runs live only unless this is set.
    pdt_equity_threshold, pdt_max_day_trades, pdt_window_sessions: the pattern-day-trader rule.
    daily_loss_limit_pct: DAILY_LOSS_LIMIT; the kill switch halts at this day loss.
    max_drawdown_pct: drawdown from the equity peak that switches to reduce-only.
    flatten_on_halt: the kill switch closes positions when it halts.
    resume_next_session: a halt lifts at the next session; otherwise only a manual reset does.
    api_retry_limit: API_RETRY_LIMIT; retries of a transient error before it is unresolved.
    critical_error_limit: critical errors after which trading halts and positions are exited.
    max_notional_per_order: the Nautilus RiskEngine's own cap (the second line), USD.
    max_order_submit_rate: the Nautilus RiskEngine's submit rate limit.
    trading_start, trading_end: TRADING_START / TRADING_END, the entry window in exchange time
        (America/New_York), both inclusive; on a half day it ends no later than the early close.
        None (the default, and what backtests use unless they set it) means no window: the
        strategies' own windows decide. The live node always takes them from the settings.
    rules: the refusal rules the gate applies (names from DEFAULT_RULES).
    """

    disable_all_trades: bool = False
    max_risk_per_trade_pct: Decimal = Decimal("2.5")
    default_stop_pct: Decimal = Decimal("2")
    max_open_risk_pct: Decimal = Decimal("5")
    symbol_cap_pct: Decimal = Decimal("10")
    max_open_positions: int = 10
    max_spread_pct: Decimal = Decimal("1.5")
    require_quotes: bool = False
    min_price: Decimal = Decimal("1")
    max_price: Decimal = Decimal("10000")
    min_volume_threshold: Decimal = Decimal("1000")
    volume_lookback_bars: int = 30
    max_slippage_pct: Decimal = Decimal("0.5")
    slippage_impact_pct: Decimal = Decimal("1")
    check_slippage_in_backtest: bool = False
    pdt_equity_threshold: Decimal = Decimal("25000")
    pdt_max_day_trades: int = 3
    pdt_window_sessions: int = 5
    daily_loss_limit_pct: Decimal = Decimal("5")
    max_drawdown_pct: Decimal = Decimal("10")
    flatten_on_halt: bool = True
    resume_next_session: bool = True
    api_retry_limit: int = 3
    critical_error_limit: int = 5
    max_notional_per_order: Decimal = Decimal("1000000")
    max_order_submit_rate: str = "100/00:00:01"
    trading_start: dt.time | None = None
    trading_end: dt.time | None = None
    rules: tuple[str, ...] = DEFAULT_RULES

    def __post_init__(self) -> None:
        positive = (
            "max_risk_per_trade_pct", "default_stop_pct", "max_open_risk_pct", "symbol_cap_pct",
            "max_spread_pct", "max_slippage_pct", "daily_loss_limit_pct", "max_drawdown_pct",
            "max_notional_per_order",
        )
        for name in positive:
            value = getattr(self, name)
            if not value.is_finite() or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value}")
        for name in ("max_risk_per_trade_pct", "max_open_risk_pct", "symbol_cap_pct",
                     "daily_loss_limit_pct", "max_drawdown_pct", "default_stop_pct"):
            if getattr(self, name) > 100:
                raise ValueError(f"{name} is a percentage of at most 100, got {getattr(self, name)}")
        if self.min_price < 0 or self.min_price >= self.max_price:
            raise ValueError(
                f"min_price must be >= 0 and below max_price, got {self.min_price} and {self.max_price}",
            )
        if self.min_volume_threshold < 0:
            raise ValueError(f"min_volume_threshold must be >= 0, got {self.min_volume_threshold}")
        for name in ("max_open_positions", "volume_lookback_bars", "pdt_window_sessions",
                     "critical_error_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.pdt_max_day_trades < 0 or self.api_retry_limit < 0:
            raise ValueError("pdt_max_day_trades and api_retry_limit must be >= 0")
        if (self.trading_start is None) != (self.trading_end is None):
            raise ValueError(
                f"trading_start and trading_end are set together or not at all, got "
                f"{self.trading_start} and {self.trading_end}",
            )
        if self.trading_start is not None and self.trading_start >= self.trading_end:
            raise ValueError(
                f"trading_start must be before trading_end, got {self.trading_start:%H:%M} and "
                f"{self.trading_end:%H:%M}",
            )
        # config/ imports nothing of ours, so the names are checked against this list here and
        # against the rule classes when the gate builds them (risk.rules.build_rules).
        unknown = [name for name in self.rules if name not in DEFAULT_RULES]
        if unknown:
            raise ValueError(
                f"rules: unknown rule(s) {', '.join(unknown)}; known: {', '.join(DEFAULT_RULES)}",
            )

    def nautilus_notional_limit(self) -> int:
        return int(self.max_notional_per_order)
