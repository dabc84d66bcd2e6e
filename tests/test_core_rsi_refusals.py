"""
Core RSI after a refused buy: the pending buy it reserves (one at a time) is released when the
bid chaser ends the sequence, so the next signal buys. tests/refusals.py plays the gate and the
venue for the chaser's children (BUY LIMIT orders).

THREE_DIPS (tests/test_core_rsi.py) signals at 14:03 (close 99), 14:06 (98) and 14:09 (97);
each lot is 1% of 100,000: 10 shares. With the first buy refused, the 98 and 97 signals buy
and the 97 lot's target, 97 * 1.01 = 97.97 for 7 of its 10 shares, fills on the last bar.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import ClientOrderId

from tests.refusals import OrderRefuser
from tests.scenario import run_core
from tests.test_core_rsi import DAY
from tests.test_core_rsi import THREE_DIPS

AFTER_A_REFUSED_FIRST_BUY = [
    ("BUY", "10", "98.00", "lot=core-building"),
    ("BUY", "10", "97.00", "lot=core-building"),
    ("SELL", "7", "97.97", "target=core-building"),
]
FIRST_BUY = ClientOrderId("O-20240401-140300-001-000-1")


@pytest.mark.parametrize("refusal", ["denied", "rejected", "canceled", "expired"])
def test_a_buy_whose_child_is_refused_leaves_nothing_pending(refusal: str) -> None:
    # "canceled": the venue (or a person at the broker) cancelled the child; the chaser does
    # not place it again over that cancel.
    refuser = OrderRefuser({"BUY LIMIT": [refusal]})
    outcome = run_core(THREE_DIPS, refuser=refuser)
    assert refuser.refused == [(f"{FIRST_BUY}-E1", refusal)]
    assert outcome.fills() == AFTER_A_REFUSED_FIRST_BUY
    assert outcome.engine.cache.order(FIRST_BUY).status.name == "CANCELED"
    assert outcome.strategy._buys == {}


def test_a_buy_the_operator_cancels_while_it_works_leaves_nothing_pending() -> None:
    # The first child rests unfilled; the operator's cancel-all at 14:03:30 ends the buy.
    refuser = OrderRefuser({"BUY LIMIT": ["rest"]}, cancel_all_at=pd.Timestamp(f"{DAY} 14:03:30", tz="UTC"))
    outcome = run_core(THREE_DIPS, refuser=refuser)
    assert outcome.fills() == AFTER_A_REFUSED_FIRST_BUY
    assert outcome.engine.cache.order(FIRST_BUY).status.name == "CANCELED"
    assert outcome.strategy._buys == {}


def test_a_partly_filled_then_cancelled_buy_keeps_its_lot_with_a_target() -> None:
    # 4 of the 10 shares fill at 99, then the venue cancels the rest: a lot of 4 whose target
    # sells floor(4 * 0.75) = 3 at 99 * 1.01 = 99.99 (never reached here); the next signals buy.
    refuser = OrderRefuser({"BUY LIMIT": ["partial:4@99.00"]})
    outcome = run_core(THREE_DIPS, refuser=refuser)
    assert outcome.fills() == [("BUY", "4", "99.00", "lot=core-building"), *AFTER_A_REFUSED_FIRST_BUY]
    lot = outcome.strategy.book.get(FIRST_BUY.value)
    assert (lot.quantity, lot.open_quantity) == (Decimal(4), Decimal(4))
    target = outcome.engine.cache.order(outcome.strategy._targets[lot.lot_id])
    assert (target.side, target.quantity.as_decimal(), target.price.as_decimal()) == (OrderSide.SELL, Decimal(3), Decimal("99.99"))
    assert not target.is_closed
