"""Each refusal rule with hand-computed numbers, sizing agreeing with the gate, and PDT counting."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from config.risk import RiskConfig
from risk.day_trades import DayTradeCounter
from risk.rules import GateContext
from risk.rules import OrderIntent
from risk.rules import build_rules
from risk.rules import evaluate
from risk.sizing import position_size
from risk.sizing import stop_from_tags

CONFIG = RiskConfig()
RULES = build_rules(CONFIG.rules)
EQUITY = D("100000")


def ctx(**overrides) -> GateContext:
    base = dict(equity=EQUITY, avg_volume=D("50000"), volume_bars=30)
    base.update(overrides)
    return GateContext(**base)


def buy(quantity: str, price: str = "50", stop: str | None = None, symbol: str = "SPY.SIM") -> OrderIntent:
    return OrderIntent(symbol, "BUY", D(quantity), D(price), D(stop) if stop else None)


def refusal(order: OrderIntent, context: GateContext, config: RiskConfig = CONFIG) -> str:
    result = evaluate(build_rules(config.rules), order, context, config)
    return "" if result is None else str(result)


def test_an_order_inside_every_limit_passes():
    # 100 shares x $50 = $5,000 (5% of equity); risk 100 x $2 = $200 (0.2%).
    assert refusal(buy("100", stop="48"), ctx()) == ""


def test_max_risk_per_trade_with_an_explicit_stop():
    # 180 x (50 - 36) = $2,520 > 2.5% of $100,000 = $2,500.
    config = RiskConfig(symbol_cap_pct=D(100))
    assert refusal(buy("180", stop="36"), ctx(), config) == (
        "max_risk_per_trade: risk 180 x 14 (stop 36 from 50) = $2,520.00 is 2.52% of equity "
        "$100,000.00, above MAX_RISK_PER_TRADE 2.5% ($2,500.00)"
    )


def test_max_risk_per_trade_uses_the_default_stop_without_one():
    # No stop: the default 5% of $50 = $2.50 per share; 1,001 shares risk $2,502.50 > $2,500.
    config = RiskConfig(symbol_cap_pct=D(100), max_open_risk_pct=D(10), default_stop_pct=D(5))
    assert refusal(buy("1001"), ctx(), config) == (
        "max_risk_per_trade: risk 1001 x 2.5 (default stop 5% from 50) = $2,502.50 is 2.503% of "
        "equity $100,000.00, above MAX_RISK_PER_TRADE 2.5% ($2,500.00)"
    )
    assert refusal(buy("1000"), ctx(), config) == ""


def test_max_open_risk_counts_what_is_already_open():
    # Open risk $3,000 + 100 x $20 = $2,000 -> $5,000.01 would exceed 5%; $5,000 exactly passes.
    assert refusal(buy("100", stop="30"), ctx(open_risk=D("3000")),
                   RiskConfig(symbol_cap_pct=D(100))) == ""
    assert refusal(buy("100", stop="30"), ctx(open_risk=D("3000.01")),
                   RiskConfig(symbol_cap_pct=D(100))) == (
        "max_open_risk: open risk $3,000.01 + this order's $2,000.00 = $5,000.01 is 5% of equity "
        "$100,000.00, above MAX_OPEN_RISK 5% ($5,000.00)"
    )


def test_symbol_cap_adds_the_position_already_held():
    # Held $8,000 + 50 x $50 = $2,500 -> $10,500 > 10% of $100,000.
    assert refusal(buy("50", stop="49"), ctx(position_values={"SPY.SIM": D("8000")})) == (
        "symbol_cap: SPY.SIM would hold $8,000.00 + $2,500.00 = $10,500.00, 10.5% of equity "
        "$100,000.00, above the symbol cap 10% ($10,000.00)"
    )


def test_max_open_positions_refuses_a_new_symbol_only():
    held = {f"S{n}.SIM": D("1000") for n in range(10)}
    assert refusal(buy("10", stop="49"), ctx(position_values=held)) == (
        "max_open_positions: 10 positions open, MAX_OPEN_POSITIONS is 10; SPY.SIM would be a new one"
    )
    assert refusal(buy("10", stop="49", symbol="S3.SIM"), ctx(position_values=held)) == ""


def test_spread_wider_than_the_limit():
    # Bid 49.00 / ask 50.00: spread 1.00 on a 49.50 mid = 2.0202%.
    assert refusal(buy("10", stop="49"), ctx(bid=D("49.00"), ask=D("50.00"), has_quote=True)) == (
        "quote_sanity: spread 1.00 on bid 49.00 / ask 50.00 is 2.02% of the mid, above the 1.5% limit"
    )
    assert refusal(buy("10", stop="49"), ctx(bid=D("49.60"), ask=D("50.00"), has_quote=True)) == ""


def test_zero_bid_or_ask_and_missing_quotes():
    assert refusal(buy("10", stop="49"), ctx(bid=D("0"), ask=D("50.00"), has_quote=True)) == (
        "quote_sanity: bid 0 / ask 50.00 for SPY.SIM: zero or missing side"
    )
    assert refusal(buy("10", stop="49"), ctx(), RiskConfig(require_quotes=True)) == (
        "quote_sanity: no bid/ask quote known for SPY.SIM"
    )


def test_price_outside_the_range():
    config = RiskConfig(min_price=D("5"), max_price=D("500"))
    assert refusal(buy("10", price="4.99", stop="4.5"), ctx(), config) == (
        "price_range: price 4.99 is outside [5, 500]"
    )
    assert refusal(buy("1", price="500.01", stop="499"), ctx(), config) == (
        "price_range: price 500.01 is outside [5, 500]"
    )


def test_average_volume_under_the_threshold():
    assert refusal(buy("10", stop="49"), ctx(avg_volume=D("999.5"), volume_bars=30)) == (
        "min_volume: average volume 999.5 over the last 30 bars is below MIN_VOLUME_THRESHOLD 1000"
    )
    assert refusal(buy("10", stop="49"), ctx(avg_volume=None, volume_bars=0)) == (
        "min_volume: no volume history for SPY.SIM yet (0 bars seen)"
    )


def test_expected_slippage_is_live_only_unless_enabled():
    # Half spread 0.10 / (49.95 + 50.05) = 0.1%; impact 1% x 500 / 1,000 = 0.5%; total 0.6%.
    quote = dict(bid=D("49.95"), ask=D("50.05"), has_quote=True, avg_volume=D("1000"))
    config = RiskConfig(symbol_cap_pct=D(100), max_risk_per_trade_pct=D(10))
    order = buy("500", stop="49.9")
    assert refusal(order, ctx(**quote), config) == ""  # a backtest: the rule is off by default
    assert refusal(order, ctx(is_live=True, **quote), config) == (
        "expected_slippage: expected slippage 0.6% (half spread 0.1% + impact 1% x 500/1000.0 bar "
        "volume) is above the 0.5% limit"
    )
    # 300 shares: 0.1% + 0.3% = 0.4% passes.
    assert refusal(buy("300", stop="49.9"), ctx(is_live=True, **quote), config) == ""
    flagged = RiskConfig(symbol_cap_pct=D(100), max_risk_per_trade_pct=D(10), check_slippage_in_backtest=True)
    assert refusal(order, ctx(**quote), flagged).startswith("expected_slippage: expected slippage 0.6%")


def test_pattern_day_trader_rule():
    small = ctx(equity=D("24999.99"), day_trades=3)
    assert refusal(buy("10", stop="49"), small) == (
        "pattern_day_trader: equity $24,999.99 is under $25,000.00 and 3 day trades were made in "
        "the last 5 business days (limit 3)"
    )
    assert refusal(buy("10", stop="49"), ctx(equity=D("24999.99"), day_trades=2)) == ""
    assert refusal(buy("10", stop="49"), ctx(equity=D("25000"), day_trades=5)) == ""


def test_disabled_and_halted_and_reducing():
    assert refusal(buy("10", stop="49"), ctx(), RiskConfig(disable_all_trades=True)) == (
        "trading_disabled: DISABLE_ALL_TRADES is set; no new exposure is accepted"
    )
    assert refusal(buy("10", stop="49"), ctx(trading_state="HALTED", halt_reason="kill_switch: day loss 5.1%")) == (
        "trading_halted: trading is HALTED (kill_switch: day loss 5.1%)"
    )
    assert refusal(buy("10", stop="49"), ctx(trading_state="REDUCING", halt_reason="kill_switch: drawdown")) == (
        "trading_halted: trading is REDUCING (reduce-only: kill_switch: drawdown); BUY 10 SPY.SIM "
        "would add exposure"
    )


def test_exits_pass_every_exposure_rule():
    exit_order = OrderIntent("SPY.SIM", "SELL", D("100"), D("50"), None, reduces=True)
    hostile = ctx(trading_state="REDUCING", avg_volume=None, equity=D("1000"), day_trades=9)
    assert refusal(exit_order, hostile, RiskConfig(disable_all_trades=True)) == ""


def test_sizing_never_proposes_what_the_gate_refuses():
    # equity x 2.5% / stop distance = 100,000 x 0.025 / 2 = 1,250 shares, but the 10% cap
    # allows $10,000 / $50 = 200 shares: the cap binds.
    assert position_size(EQUITY, D("50"), D("48"), CONFIG) == D("200")
    # A wide stop: 2,500 / 12.5 = 200 ... at 37.5: 2,500 / 12.5 = 200; at 30: 2,500 / 20 = 125.
    assert position_size(EQUITY, D("50"), D("30"), CONFIG) == D("125")
    for stop in ("49.99", "48", "45", "40", "30", "10", None):
        stop_price = D(stop) if stop else None
        size = position_size(EQUITY, D("50"), stop_price, CONFIG)
        assert refusal(OrderIntent("SPY.SIM", "BUY", size, D("50"), stop_price), ctx()) == ""
        assert refusal(OrderIntent("SPY.SIM", "BUY", size + 1, D("50"), stop_price), ctx()) != ""


def test_stop_tags_are_parsed_strictly():
    assert stop_from_tags(["signal", "stop=48.50"]) == D("48.50")
    assert stop_from_tags(["signal"]) is None
    with pytest.raises(ValueError, match="stop price 'abc' is not a number"):
        stop_from_tags(["stop=abc"])


def test_unknown_rule_names_are_refused_by_the_config():
    with pytest.raises(ValueError, match="rules: unknown rule\\(s\\) max_leverage"):
        RiskConfig(rules=("max_risk_per_trade", "max_leverage"))


def test_pdt_count_across_a_week_with_a_holiday():
    counter = DayTradeCounter()
    # Week of 1 July 2024; 4 July is a holiday, so the 5 business days ending Mon 8 July
    # are 1, 2, 3, 5 and 8 July.
    counter.record_fill("SPY", "BUY", dt.date(2024, 6, 28), "o1")
    counter.record_fill("SPY", "SELL", dt.date(2024, 6, 28), "o2")  # a day trade on Fri 28 June
    counter.record_fill("SPY", "BUY", dt.date(2024, 7, 1), "o3")
    counter.record_fill("SPY", "SELL", dt.date(2024, 7, 1), "o4")  # day trade 1
    counter.record_fill("SPY", "SELL", dt.date(2024, 7, 1), "o4")  # a partial fill of the same order
    counter.record_fill("QQQ", "BUY", dt.date(2024, 7, 2), "o5")
    counter.record_fill("QQQ", "SELL", dt.date(2024, 7, 3), "o6")  # overnight: not a day trade
    counter.record_fill("AAPL", "BUY", dt.date(2024, 7, 5), "o7")
    counter.record_fill("AAPL", "SELL", dt.date(2024, 7, 5), "o8")  # day trade 2
    counter.record_fill("AAPL", "SELL", dt.date(2024, 7, 5), "o9")  # a second exit: day trade 3
    assert counter.count(dt.date(2024, 7, 5), 5) == 4  # 28 June .. 5 July
    assert counter.count(dt.date(2024, 7, 8), 5) == 3  # 28 June has left the window
    assert counter.count(dt.date(2024, 7, 10), 5) == 2  # 1 and 2 July have left too
    assert counter.count(dt.date(2024, 7, 12), 5) == 0
