"""
The pre-trade refusal rules, each a small class with one interface (after Freqtrade's
protections): ``check(order, context, config) -> Refusal | None``. The gate builds the rules
named in ``RiskConfig.rules`` and applies them in order; the first refusal wins.

Rules are pure functions of an ``OrderIntent`` and a ``GateContext`` (plain Decimals), so each
is tested with hand-computed numbers and the gate actor only gathers the figures. Orders that
only reduce a position are never refused by exposure rules: an exit must always be possible.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from decimal import ROUND_HALF_UP
from decimal import Decimal
from typing import ClassVar

from config.risk import DEFAULT_RULES
from config.risk import RiskConfig
from risk.sizing import HUNDRED
from risk.sizing import order_risk
from risk.sizing import stop_distance
from strategies.sessions import EXCHANGE_TZ
from strategies.sessions import session_for

CENT = Decimal("0.01")


def _money(value: Decimal) -> str:
    return f"${value.quantize(CENT, rounding=ROUND_HALF_UP):,}"


def _pct(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.001'), rounding=ROUND_HALF_UP).normalize():f}%"


def _equity_limit(equity: Decimal, limit_pct: Decimal) -> Decimal:
    return equity * limit_pct / HUNDRED


def _above_equity_limit(
    amount: Decimal, equity: Decimal, limit_name: str, limit_pct: Decimal,
) -> str:
    """How far `amount` goes past a limit set as a percentage of equity (the refusal's tail)."""
    return (
        f"{_pct(amount / equity * HUNDRED)} of equity {_money(equity)}, above "
        f"{limit_name} {_pct(limit_pct)} ({_money(_equity_limit(equity, limit_pct))})"
    )


@dataclass(frozen=True)
class OrderIntent:
    """What an order would do, in the gate's terms."""

    symbol: str
    side: str  # "BUY" or "SELL"
    quantity: Decimal
    price: Decimal  # limit price, else the latest market price
    stop_price: Decimal | None = None
    reduces: bool = False  # only reduces an existing position


@dataclass(frozen=True)
class GateContext:
    """The account and market figures an order is judged against."""

    equity: Decimal
    # Market value (absolute) and signed quantity of each open position, by symbol.
    position_values: Mapping[str, Decimal] = field(default_factory=dict)
    open_risk: Decimal = Decimal(0)  # open positions' and working entry orders' risk
    bid: Decimal | None = None
    ask: Decimal | None = None
    has_quote: bool = False
    avg_volume: Decimal | None = None  # average volume per bar, None when no bars yet
    volume_bars: int = 0
    day_trades: int = 0
    trading_state: str = "ACTIVE"  # ACTIVE, HALTED, REDUCING (Nautilus) or PAUSED (this symbol)
    halt_reason: str = ""
    is_live: bool = False
    # The order's time (UTC ns): the node clock (data time in a backtest), or in a replay the
    # latest market data's time, None before any. Only the trading-window rule reads it.
    now_ns: int | None = None


@dataclass(frozen=True)
class Refusal:
    rule: str
    reason: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.reason}"


class RiskRule:
    name: ClassVar[str]
    applies_to_exits: ClassVar[bool] = False

    def check(self, order: OrderIntent, ctx: GateContext, config: RiskConfig) -> Refusal | None:
        raise NotImplementedError

    def refuse(self, reason: str) -> Refusal:
        return Refusal(self.name, reason)


class TradingDisabled(RiskRule):
    name = "trading_disabled"

    def check(self, order, ctx, config):
        if config.disable_all_trades:
            return self.refuse("DISABLE_ALL_TRADES is set; no new exposure is accepted")
        return None


class TradingHalted(RiskRule):
    name = "trading_halted"

    def check(self, order, ctx, config):
        if ctx.trading_state == "HALTED":
            return self.refuse(f"trading is HALTED ({ctx.halt_reason or 'no reason recorded'})")
        if ctx.trading_state == "PAUSED":
            return self.refuse(f"{order.symbol} is paused ({ctx.halt_reason})")
        if ctx.trading_state == "REDUCING":
            return self.refuse(
                f"trading is REDUCING (reduce-only: {ctx.halt_reason or 'no reason recorded'}); "
                f"{order.side} {order.quantity} {order.symbol} would add exposure",
            )
        return None


def _clock(instant: dt.datetime) -> str:
    """New York wall-clock time; seconds only when there are some (09:29:30 is not 09:29)."""
    local = instant.astimezone(EXCHANGE_TZ)
    return f"{local:%H:%M:%S}" if local.second or local.microsecond else f"{local:%H:%M}"


class TradingWindow(RiskRule):
    """
    Entries only inside [TRADING_START, TRADING_END] in New York time on an NYSE session day;
    the end is cut at an early close. Exits pass at any time (evaluate skips this rule for them).
    """

    name = "trading_window"

    def check(self, order, ctx, config):
        if config.trading_start is None:
            return None
        if ctx.now_ns is None:
            return self.refuse("the entry's time is unknown: no market data seen yet (a replay's "
                               "window is judged on the data's time)")
        now = dt.datetime.fromtimestamp(ctx.now_ns / 1e9, EXCHANGE_TZ)
        session = session_for(now.date())
        if session is None:
            return self.refuse(
                f"entry at {_clock(now)} ET on {now.date()} ({now:%A}): no NYSE session that day",
            )
        start = session.at(config.trading_start)
        end = session.at(config.trading_end)
        close = session.close
        if session.is_half_day:
            end = min(end, close)
        # Compared in integer nanoseconds: an order at exactly 09:30:00 is inside the window.
        if ctx.now_ns < start.value:
            return self.refuse(
                f"entry at {_clock(now)} ET is before TRADING_START {config.trading_start:%H:%M} "
                f"(session {session.date} opens {_clock(session.open)}, window "
                f"starts {_clock(start)})",
            )
        if ctx.now_ns > end.value:
            return self.refuse(
                f"entry at {_clock(now)} ET is after TRADING_END {config.trading_end:%H:%M} "
                f"(session {session.date} closes {_clock(close)}, window ends {_clock(end)})",
            )
        return None


class PriceRange(RiskRule):
    name = "price_range"

    def check(self, order, ctx, config):
        if not config.min_price <= order.price <= config.max_price:
            return self.refuse(
                f"price {order.price} is outside [{config.min_price}, {config.max_price}]",
            )
        return None


class QuoteSanity(RiskRule):
    name = "quote_sanity"

    def check(self, order, ctx, config):
        if not ctx.has_quote:
            if config.require_quotes:
                return self.refuse(f"no bid/ask quote known for {order.symbol}")
            return None
        if not ctx.bid or not ctx.ask or ctx.bid <= 0 or ctx.ask <= 0:
            return self.refuse(f"bid {ctx.bid} / ask {ctx.ask} for {order.symbol}: zero or missing side")
        mid = (ctx.bid + ctx.ask) / 2
        spread_pct = (ctx.ask - ctx.bid) / mid * HUNDRED
        if spread_pct > config.max_spread_pct:
            return self.refuse(
                f"spread {ctx.ask - ctx.bid} on bid {ctx.bid} / ask {ctx.ask} is {_pct(spread_pct)} "
                f"of the mid, above the {_pct(config.max_spread_pct)} limit",
            )
        return None


class MinVolume(RiskRule):
    name = "min_volume"

    def check(self, order, ctx, config):
        if ctx.avg_volume is None:
            return self.refuse(f"no volume history for {order.symbol} yet (0 bars seen)")
        if ctx.avg_volume < config.min_volume_threshold:
            return self.refuse(
                f"average volume {ctx.avg_volume.quantize(Decimal('0.1'))} over the last "
                f"{ctx.volume_bars} bars is below MIN_VOLUME_THRESHOLD {config.min_volume_threshold}",
            )
        return None


class MaxRiskPerTrade(RiskRule):
    name = "max_risk_per_trade"

    def check(self, order, ctx, config):
        risk = order_risk(order.quantity, order.price, order.stop_price, config)
        if risk > _equity_limit(ctx.equity, config.max_risk_per_trade_pct):
            stop = (f"stop {order.stop_price}" if order.stop_price is not None
                    else f"default stop {_pct(config.default_stop_pct)}")
            distance = stop_distance(order.price, order.stop_price, config)
            return self.refuse(
                f"risk {order.quantity} x {distance} ({stop} from {order.price}) = "
                f"{_money(risk)} is "
                + _above_equity_limit(
                    risk, ctx.equity, "MAX_RISK_PER_TRADE", config.max_risk_per_trade_pct,
                ),
            )
        return None


class MaxOpenRisk(RiskRule):
    name = "max_open_risk"

    def check(self, order, ctx, config):
        risk = order_risk(order.quantity, order.price, order.stop_price, config)
        total = ctx.open_risk + risk
        if total > _equity_limit(ctx.equity, config.max_open_risk_pct):
            return self.refuse(
                f"open risk {_money(ctx.open_risk)} + this order's {_money(risk)} = "
                f"{_money(total)} is "
                + _above_equity_limit(total, ctx.equity, "MAX_OPEN_RISK", config.max_open_risk_pct),
            )
        return None


class SymbolCap(RiskRule):
    name = "symbol_cap"

    def check(self, order, ctx, config):
        held = ctx.position_values.get(order.symbol, Decimal(0))
        adding = order.quantity * order.price
        total = held + adding
        if total > _equity_limit(ctx.equity, config.symbol_cap_pct):
            return self.refuse(
                f"{order.symbol} would hold {_money(held)} + {_money(adding)} = {_money(total)}, "
                + _above_equity_limit(total, ctx.equity, "the symbol cap", config.symbol_cap_pct),
            )
        return None


class MaxOpenPositions(RiskRule):
    name = "max_open_positions"

    def check(self, order, ctx, config):
        held = [s for s, v in ctx.position_values.items() if v != 0]
        if order.symbol not in held and len(held) >= config.max_open_positions:
            return self.refuse(
                f"{len(held)} positions open, MAX_OPEN_POSITIONS is {config.max_open_positions}; "
                f"{order.symbol} would be a new one",
            )
        return None


class ExpectedSlippage(RiskRule):
    name = "expected_slippage"

    def check(self, order, ctx, config):
        if not (ctx.is_live or config.check_slippage_in_backtest):
            return None
        half_spread_pct = Decimal(0)
        if ctx.has_quote and ctx.bid and ctx.ask:
            half_spread_pct = (ctx.ask - ctx.bid) / (ctx.ask + ctx.bid) * HUNDRED
        if not ctx.avg_volume:
            return self.refuse(f"no volume history for {order.symbol}: slippage cannot be estimated")
        participation = order.quantity / ctx.avg_volume
        impact_pct = config.slippage_impact_pct * participation
        expected = half_spread_pct + impact_pct
        if expected > config.max_slippage_pct:
            return self.refuse(
                f"expected slippage {_pct(expected)} (half spread {_pct(half_spread_pct)} + impact "
                f"{_pct(config.slippage_impact_pct)} x {order.quantity}/{ctx.avg_volume.quantize(Decimal('0.1'))} "
                f"bar volume) is above the {_pct(config.max_slippage_pct)} limit",
            )
        return None


class PatternDayTrader(RiskRule):
    name = "pattern_day_trader"

    def check(self, order, ctx, config):
        if ctx.equity < config.pdt_equity_threshold and ctx.day_trades >= config.pdt_max_day_trades:
            return self.refuse(
                f"equity {_money(ctx.equity)} is under {_money(config.pdt_equity_threshold)} and "
                f"{ctx.day_trades} day trades were made in the last {config.pdt_window_sessions} "
                f"business days (limit {config.pdt_max_day_trades})",
            )
        return None


RULES: dict[str, type[RiskRule]] = {
    rule.name: rule
    for rule in (
        TradingDisabled, TradingHalted, TradingWindow, PriceRange, QuoteSanity, MinVolume, MaxRiskPerTrade,
        MaxOpenRisk, SymbolCap, MaxOpenPositions, ExpectedSlippage, PatternDayTrader,
    )
}
assert set(RULES) == set(DEFAULT_RULES), "config.risk.DEFAULT_RULES and RULES must agree"


def build_rules(names: tuple[str, ...]) -> list[RiskRule]:
    unknown = [name for name in names if name not in RULES]
    if unknown:
        raise ValueError(f"rules: unknown rule(s) {', '.join(unknown)}; known: {', '.join(RULES)}")
    return [RULES[name]() for name in names]


def evaluate(
    rules: list[RiskRule],
    order: OrderIntent,
    ctx: GateContext,
    config: RiskConfig,
) -> Refusal | None:
    """The first rule that refuses the order, or None when every rule accepts it."""
    for rule in rules:
        if order.reduces and not rule.applies_to_exits:
            continue
        refusal = rule.check(order, ctx, config)
        if refusal is not None:
            return refusal
    return None
