"""
MA cross after a refused entry: it reserves nothing for an order (it asks the portfolio whether
it is flat), so the next cross up buys. tests/refusals.py plays the gate and the venue.

Closes one a minute from 10:00 ET, SIMPLE averages 2 and 3:

    close  100 100 100 100 | 101   | 99     99   99 | 101   101
    fast    -  100 100 100 | 100.5 | 100    99   99 | 100   101
    slow    -   -  100 100 | 100.33| 100  99.67  99 | 99.67 100.33
                             up      down             up

The first cross up (10:04) is refused; the cross down at 10:05 has nothing to sell; the second
cross up (10:08) buys 95% of 100,000 at 101: floor(95,000 / 101) = 940 shares.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from catalog.instruments import make_instrument
from strategies.ma_cross import MACross
from strategies.ma_cross import MACrossConfig
from tests.refusals import OrderRefuser
from tests.session_harness import bar_type
from tests.session_harness import et
from tests.session_harness import fills
from tests.session_harness import minute_frame
from tests.session_harness import run_engine

DAY = dt.date(2024, 3, 5)
CLOSES = [100, 100, 100, 100, 101, 99, 99, 99, 101, 101]


def run_ma_cross(plan: dict[str, list[str]]) -> list[tuple]:
    strategy = MACross(
        MACrossConfig(
            instrument_id=make_instrument("SPY").id, bar_type=bar_type("SPY"),
            fast_period=2, slow_period=3, average="SIMPLE",
        ),
    )
    frame = minute_frame(DAY, "10:00", [(c, c, c, c, 100_000) for c in CLOSES])
    result = fills(run_engine([strategy], {"SPY": frame}, refuser=OrderRefuser(plan)))
    return list(zip(result.time.dt.floor("min"), result.side, result.quantity, result.price))


@pytest.mark.parametrize("refusal", ["denied", "rejected", "canceled", "expired"])
def test_a_refused_entry_leaves_it_flat_and_the_next_cross_buys(refusal: str) -> None:
    assert run_ma_cross({"BUY MARKET": [refusal]}) == [(et(DAY, "10:08"), "BUY", Decimal(940), Decimal("101.00"))]


def test_a_partly_filled_entry_is_sold_on_the_next_cross_down() -> None:
    # 500 bought at 101 and sold at 99 lose 1,000: the second cross buys
    # floor(0.95 * 99,000 / 101) = 931 shares.
    assert run_ma_cross({"BUY MARKET": ["partial:500@101.00"]}) == [
        (et(DAY, "10:04"), "BUY", Decimal(500), Decimal("101.00")),
        (et(DAY, "10:05"), "SELL", Decimal(500), Decimal("99.00")),
        (et(DAY, "10:08"), "BUY", Decimal(931), Decimal("101.00")),
    ]
