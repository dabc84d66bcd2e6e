"""
CoreRSI on hand-built bars (1-minute bars used directly as signal bars, RSI period 2, a fixed
bankroll of 100,000 USD, no fees). Expected RSI values and orders are worked out in comments.

Wilder RSI(2) as Nautilus runs it: the first close is a zero change; each change updates
avg_gain and avg_loss by x_new = (x_old + change) / 2; RSI = gain / (gain + loss).
Bars-only data: the bid chaser prices buys at the latest bar close, which the simulated
venue fills at once; a resting sell fills at its limit when a bar's high reaches it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd

import pytest

from actors.journal import Journal
from actors.journal import JournalConfig
from config.risk import RiskConfig
from strategies.lots import LotKind
from tests.scenario import run_core

DAY = "2024-04-01"  # a Monday; 14:00 UTC is 10:00 New York, inside the regular session

# closes        100  99   98   99    98     97     98     97     96     97     98
# gain          0    0    0    .5    .25    .125   .5625  .28125 .1406  .5703  .7852
# loss          0    .5   .75  .375  .6875  .84375 .4219  .7109  .8555  .4277  .2139
# RSI           -    0    0    57.1  26.7   12.9   57.1   28.3   14.1   57.1   78.6
# signal                       X                   X                    X
THREE_DIPS = [
    (f"{DAY} 14:{m:02d}", c) for m, c in enumerate([100, 99, 98, 99, 98, 97, 98, 97, 96, 97, 98])
]


def test_rsi_cross_buys_a_core_building_lot_and_sells_three_quarters_at_plus_one_percent() -> None:
    rows = THREE_DIPS[:4] + [(f"{DAY} 14:04", 100)]
    outcome = run_core(rows)
    # Cross at 99: 1% of 100,000 = 1,000 USD -> 10 shares at 99. Target: 99 * 1.01 = 99.99,
    # 3/4 of 10 rounded down = 7 shares. The next bar's high (100) reaches it.
    assert outcome.fills() == [
        ("BUY", "10", "99.00", "lot=core-building"),
        ("SELL", "7", "99.99", "target=core-building"),
    ]
    assert outcome.exit_reasons() == ["target"]
    (lot,) = outcome.strategy.book.lots.values()
    assert lot.kind == LotKind.CORE  # the remaining quarter joined the core
    assert lot.open_quantity == 3
    assert outcome.strategy.book.realised_by_kind()["core-building"] == Decimal("6.93")  # 7 * 0.99


def test_no_signal_without_a_cross() -> None:
    # RSI(2): 100 (init), 102 -> 100, 101 -> 50, 102 -> 75: it dips but never below 30.
    rows = [(f"{DAY} 14:0{m}", c) for m, c in enumerate([100, 102, 101, 102])]
    outcome = run_core(rows)
    assert outcome.fills() == []
    assert outcome.strategy.record.buy_signals == []


def test_cycle_limit_turns_the_next_signal_into_a_trading_lot() -> None:
    outcome = run_core(THREE_DIPS, max_cycles=2)
    # Signals at 99, 98, 97. Two core-building cycles are allowed; the core (3 + 3 shares)
    # is far below 5%, so the limit is what makes the third lot a trading lot. Its target,
    # 97 * 1.01 = 97.97 for all 10 shares, fills on the last bar (high 98); the other
    # targets (99.99 and 98.98) are never reached.
    assert outcome.fills() == [
        ("BUY", "10", "99.00", "lot=core-building"),
        ("BUY", "10", "98.00", "lot=core-building"),
        ("BUY", "10", "97.00", "lot=trading"),
        ("SELL", "10", "97.97", "target=trading"),
    ]
    assert outcome.strategy.cycles() == 2
    # The trading profit, 10 * 0.97, is booked against the core's cost basis.
    assert outcome.strategy.book.cost_basis_reduction == Decimal("9.70")
    assert outcome.strategy.book.realised_by_kind()["trading"] == Decimal("9.70")


def test_a_buy_the_gate_denies_as_it_is_placed_leaves_nothing_pending() -> None:
    # Entry window 10:05-16:00 New York: the first signal (14:03 UTC, 10:03 EDT) is denied by
    # the pre-trade gate inside submit_order. Nothing stays pending, so the signals at 98
    # (10:06) and 97 (10:09) buy 10 shares each; the 97 lot's target 97.97 (7 of 10) fills on
    # the last bar (high 98), the 98 lot's 98.98 is never reached.
    window = RiskConfig(trading_start=dt.time(10, 5), trading_end=dt.time(16, 0))
    outcome = run_core(THREE_DIPS, risk=window)
    assert outcome.strategy.record.buy_signals == [
        pd.Timestamp(f"{DAY} 14:{m:02d}", tz="UTC").value for m in (3, 6, 9)
    ]
    assert outcome.fills() == [
        ("BUY", "10", "98.00", "lot=core-building"),
        ("BUY", "10", "97.00", "lot=core-building"),
        ("SELL", "7", "97.97", "target=core-building"),
    ]
    denied = [o for o in outcome.engine.cache.orders() if o.status.name == "DENIED"]
    assert [o.client_order_id.value for o in denied] == ["O-20240401-140300-001-000-1-E1"]


def test_cap_blocks_a_buy_that_would_exceed_it() -> None:
    # Cap 1.5% = 1,500 USD. First signal: 10 shares at 99 = 990. Second: (10 + 10) * 98 = 1,960.
    outcome = run_core(THREE_DIPS[:8], symbol_cap=0.015, core_target=0.01)
    assert outcome.fills() == [("BUY", "10", "99.00", "lot=core-building")]
    assert [str(t) for t in outcome.strategy.record.cap_blocks] == [
        str(outcome.strategy.record.buy_signals[1])
    ]


def test_weekly_rebalance_trims_a_core_above_target() -> None:
    # Lots of 10% (cap 10%), core target 2%, a quarter sold at the target, three quarters kept.
    rows = THREE_DIPS[:4] + [(f"{DAY} 14:04", 100.5), ("2024-04-08 14:00", 100)]
    outcome = run_core(rows, lot_fraction=0.10, core_target=0.02, core_sale_fraction=0.25)
    # Cross at 99: 10,000 USD -> 101 shares; target 99.99 sells 25 (101 * 0.25 rounded down);
    # 76 join the core. Monday 2024-04-08, the week's first regular-hours bar at 100: the core
    # is worth 7,600 > 2% of 100,000; it is trimmed to 2,000 / 100 = 20 shares: sell 56.
    assert outcome.fills() == [
        ("BUY", "101", "99.00", "lot=core-building"),
        ("SELL", "25", "99.99", "target=core-building"),
        ("SELL", "56", "100.00", "trim-core"),
    ]
    assert outcome.exit_reasons() == ["target", "rebalance trim"]
    assert outcome.strategy.book.open_quantity(LotKind.CORE) == 20
    (message,) = [m for _, m in outcome.strategy.record.rebalances]
    assert "core 76 shares" in message and "trimming 56" in message


def test_core_exit_sells_one_step_at_a_time_above_the_last_sale() -> None:
    # Weekly closes (weeks end Friday 16:00 New York = 20:00 UTC): 100, 98, 96, 101.
    # Weekly RSI(2): 0 (init, arms), 0, then +5: gain 2.5, loss 0.75 -> 76.9: crosses 75.
    rows = [
        ("2024-04-05 20:00", 100),
        ("2024-04-12 20:00", 98),
        ("2024-04-15 14:00", 97),
        ("2024-04-15 14:01", 98),  # intraday RSI 0 -> 50: buy 10 at 98; target 7 at 98.98
        ("2024-04-15 14:02", 99),  # target filled: 3 shares join the core
        ("2024-04-19 20:00", 96),
        ("2024-04-26 20:00", 101),  # weekly cross: sell 1% of 3 shares -> at least 1, at 101
        ("2024-04-26 20:05", 102.5),  # next step 101 * 1.01 = 102.01 reached
        ("2024-04-26 20:10", 103.5),  # next step 102.01 * 1.01 = 103.0301 -> 103.04 reached
    ]
    # Cap 1.1% = 1,100 USD keeps the intraday cross at 101 (3 + 9 shares = 1,212) from buying.
    outcome = run_core(rows, symbol_cap=0.011, core_target=0.01)
    assert outcome.fills() == [
        ("BUY", "10", "98.00", "lot=core-building"),
        ("SELL", "7", "98.98", "target=core-building"),
        ("SELL", "1", "101.00", "core-exit"),
        ("SELL", "1", "102.01", "core-exit"),
        ("SELL", "1", "103.04", "core-exit"),
    ]
    assert outcome.exit_reasons() == ["target", "core exit", "core exit", "core exit"]
    assert len(outcome.strategy.record.exit_crosses) == 1
    assert len(outcome.strategy.record.cap_blocks) == 1
    assert outcome.strategy.book.open_quantity() == 0
    assert outcome.strategy.book.realised_by_kind()["core"] == Decimal("3.00") + Decimal(
        "4.01"
    ) + Decimal("5.04")


def _journal(tmp_path) -> Journal:
    url = f"sqlite:///{tmp_path / 'journal_paper.sqlite'}"
    return Journal(JournalConfig(mode="paper", database_url=url, records_dir=str(tmp_path / "records")))


def test_lots_kept_by_the_journal_rebuild_the_same_book_after_a_restart(tmp_path) -> None:
    # THREE_DIPS with two cycles (see above), then a bar at 100 (high 100) that reaches the
    # core-building targets 99.99 (7 of 10 at 99) and 98.98 (7 of 10 at 98).
    rows = THREE_DIPS + [(f"{DAY} 14:11", 100)]
    first = run_core(rows, actors=(_journal(tmp_path),), max_cycles=2, persist_lots=True)
    assert first.fills() == [
        ("BUY", "10", "99.00", "lot=core-building"),
        ("BUY", "10", "98.00", "lot=core-building"),
        ("BUY", "10", "97.00", "lot=trading"),
        ("SELL", "10", "97.97", "target=trading"),
        ("SELL", "7", "99.99", "target=core-building"),
        ("SELL", "7", "98.98", "target=core-building"),
    ]
    book = first.strategy.book
    # 7 * 0.99 + 7 * 0.98, no fees; the trading lot's 10 * 0.97 is booked against the core.
    assert book.realised_by_kind() == {"core-building": Decimal("13.79"), "core": 0, "trading": Decimal("9.70")}
    assert book.cost_basis_reduction == Decimal("9.70")
    assert book.core_cost_basis() == Decimal("581.30")  # 3 * 99 + 3 * 98 - 9.70
    first.engine.dispose()

    # A new engine and a new journal on the same database: the journal loads the lots into
    # the Cache before the strategy starts, and the strategy rebuilds its book from them.
    restarted = run_core([(f"{DAY} 15:00", 99.5)], actors=(_journal(tmp_path),), max_cycles=2,
                         persist_lots=True)
    rebuilt = restarted.strategy.book
    # Every lot equal field by field: kind, quantity, price, commission, open shares, sales.
    assert rebuilt.lots == book.lots
    assert [(lot.kind, lot.open_quantity) for lot in rebuilt.lots.values()] == [
        (LotKind.CORE, 3), (LotKind.CORE, 3), (LotKind.TRADING, 0),
    ]
    assert rebuilt.cost_basis_reduction == Decimal("9.70")
    assert rebuilt.realised_by_kind() == book.realised_by_kind()
    assert restarted.strategy.cycles() == 2  # the cycle count survives: the next lot trades


def test_a_restarted_strategy_gives_reloaded_lots_their_targets_again(tmp_path) -> None:
    first = run_core(THREE_DIPS[:4], actors=(_journal(tmp_path),), persist_lots=True)
    assert first.fills() == [("BUY", "10", "99.00", "lot=core-building")]  # target rests
    first.engine.dispose()
    restarted = run_core([(f"{DAY} 15:00", 99.5)], actors=(_journal(tmp_path),), persist_lots=True)
    targets = [o for o in restarted.engine.cache.orders() if o.exec_spawn_id == o.client_order_id]
    assert [(o.side_string(), str(o.quantity), str(o.price), o.tags) for o in targets] == [
        ("SELL", "7", "99.99", ["target=core-building", "exit:target"]),
    ]


def test_persist_lots_without_a_journal_refuses_to_start() -> None:
    # Starting empty would buy a core the journal may hold already.
    with pytest.raises(RuntimeError, match=(
        r"CoreRSI-000: persist_lots is set but no journal is running to keep the lots "
        r"\(nothing subscribes to 'journal.lots'; no saved lots under cache key "
        r"'journal.saved_lots'\); add the journal actor \(JOURNAL=true\) or set persist_lots=False"
    )):
        run_core(THREE_DIPS[:4], persist_lots=True)


def test_config_refuses_values_outside_the_plan_naming_the_field() -> None:
    import pytest

    from strategies.core_rsi import CoreRSIConfig
    from tests.scenario import MINUTE_BARS
    from tests.scenario import SPY

    cases = [
        ({"buy_rsi": 0.3}, None),  # 0.3 is a valid (if odd) level on the 0-100 scale
        ({"exit_rsi": 175.0}, "exit_rsi is on the 0-100 RSI scale, got 175.0"),
        ({"core_target": 0.2}, "core_target 0.2 must not exceed symbol_cap 0.1"),
        ({"lot_fraction": 0.0}, "lot_fraction must be a fraction in (0, 1], got 0.0"),
        ({"fixed_bankroll": Decimal("-5")}, "fixed_bankroll must be a positive USD amount, got -5"),
        ({"capital_fraction": Decimal("1.5")}, "capital_fraction must be a fraction in (0, 1], got 1.5"),
    ]
    for overrides, message in cases:
        if message is None:
            CoreRSIConfig(instrument_id=SPY, bar_type=MINUTE_BARS, **overrides)
            continue
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            CoreRSIConfig(instrument_id=SPY, bar_type=MINUTE_BARS, **overrides)


def test_weekly_rebalance_trims_a_position_above_the_cap_from_trading_lots_first() -> None:
    # Lots of 5%, cap 10%, one core-building cycle. RSI(2) over 101 100 99 100 99 98 100:
    # 0, 0, 57.1 (cross: 50 shares at 100, core-building), 26.7, 12.9, 71.6 (cross: a trading
    # lot, 50 at 100; 100 shares * 100 = 10,000 is exactly the cap, allowed).
    rows = [(f"{DAY} 14:{m:02d}", c) for m, c in enumerate([101, 100, 99, 100, 99, 98, 100])]
    # Next Monday's first regular-hours bar at 100.50: 100 shares are worth 10,050 > 10,000;
    # the cap allows 10,000 / 100.50 = 99 shares: 1 is sold, from the trading lot. Both
    # targets (101.00) are out of reach; the trading lot's target is re-placed for 49.
    rows.append(("2024-04-08 14:00", 100.5))
    outcome = run_core(rows, lot_fraction=0.05, max_cycles=1)
    assert outcome.fills() == [
        ("BUY", "50", "100.00", "lot=core-building"),
        ("BUY", "50", "100.00", "lot=trading"),
        ("SELL", "1", "100.50", "trim-total"),
    ]
    (message,) = [m for _, m in outcome.strategy.record.rebalances]
    assert "position 100 shares" in message and "trimming 1" in message
    working = sorted(
        (o.tags[0], str(o.quantity), str(o.price))
        for o in outcome.engine.cache.orders_open()
    )
    assert working == [("target=core-building", "37", "101.00"), ("target=trading", "49", "101.00")]


def test_a_warm_up_the_data_client_never_answers_holds_no_bar_for_ever() -> None:
    # A bare backtest engine answers no history request: after the 60 s wait the held bars are
    # played and the strategy trades as a cold start does, bar for bar.
    cold = run_core(THREE_DIPS)
    warmed = run_core(THREE_DIPS, warmup_days=5)
    assert warmed.strategy.record.buy_signals == cold.strategy.record.buy_signals
    assert warmed.fills() == cold.fills() != []


def test_the_bankroll_is_the_capital_fraction_of_equity() -> None:
    rows = THREE_DIPS[:4] + [(f"{DAY} 14:04", 100)]
    # Equity 100,000 x 0.5 = 50,000 bankroll: a 1% lot is 500 USD -> 5 shares at 99 (the whole
    # account's equity bought 10 before capital_fraction existed).
    outcome = run_core(rows, fixed_bankroll=None, capital_fraction=Decimal("0.5"))
    assert outcome.fills()[0] == ("BUY", "5", "99.00", "lot=core-building")
