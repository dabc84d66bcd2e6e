"""Commission and round-trip arithmetic, checked against hand-computed figures."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from backtesting.fees import PerShareFeeModel
from backtesting.fees import per_share_commission
from backtesting.results import final_equity
from backtesting.results import round_trips
from catalog.instruments import make_instrument
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.test_kit.stubs.identifiers import TestIdStubs
from nautilus_trader.common.factories import OrderFactory
from nautilus_trader.common.component import TestClock

D = Decimal


@pytest.mark.parametrize(
    ("shares", "price", "expected"),
    [
        (100, "500", "1.00"),  # 0.50 per share-fee is under the 1.00 minimum
        (1000, "10", "5.00"),  # 1000 x 0.005
        (100, "0.50", "0.50"),  # the minimum would exceed 1% of a 50.00 trade: capped
        (333, "20", "1.67"),  # 1.665 rounds half up to the cent
    ],
)
def test_per_share_commission(shares: int, price: str, expected: str) -> None:
    fee = per_share_commission(D(shares), D(shares) * D(price), D("0.005"), D("1.00"), D("0.01"))
    assert fee == D(expected)


def test_minimum_is_charged_once_per_order_across_partial_fills() -> None:
    model = PerShareFeeModel()
    instrument = make_instrument("SPY")
    factory = OrderFactory(TestIdStubs.trader_id(), TestIdStubs.strategy_id(), TestClock())
    order = factory.limit(instrument.id, OrderSide.BUY, Quantity.from_int(300), Price.from_str("100.00"))
    first = model.get_commission(order, Quantity.from_int(150), Price.from_str("100.00"), instrument)
    second = model.get_commission(order, Quantity.from_int(150), Price.from_str("100.00"), instrument)
    # 150 shares pay the 1.00 minimum; 300 shares cost 1.50 in all, so the second fill pays 0.50.
    assert (first.as_decimal(), second.as_decimal()) == (D("1.00"), D("0.50"))


def _fills(rows: list[tuple[str, str, int, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "ts_event": pd.Timestamp(ts, tz="UTC"),
                "strategy_id": "S-1",
                "instrument_id": "SPY.SIM",
                "client_order_id": f"O-{n}",
                "trade_id": f"T-{n}",
                "side": side,
                "quantity": D(qty),
                "price": D(price),
                "commission": D(fee),
                "tags": "signal",
            }
            for n, (ts, side, qty, price, fee) in enumerate(rows)
        ],
    )


def test_round_trips_match_fifo_and_split_entry_commission() -> None:
    fills = _fills(
        [
            ("2024-01-02 15:00", "BUY", 100, "10", "1.00"),
            ("2024-01-03 15:00", "BUY", 50, "12", "1.00"),
            ("2024-01-04 15:00", "SELL", 120, "13", "1.00"),
            ("2024-01-05 15:00", "SELL", 30, "11", "1.00"),
        ],
    )
    trades = round_trips(fills)
    first, second = trades.iloc[0], trades.iloc[1]
    # 100 @ 10 and 20 of the 50 @ 12: cost 1240, proceeds 1560; entry commission 1 + 20/50.
    assert first["gross_pnl"] == D("320")
    assert first["commission"] == D("2.40")
    assert first["pnl"] == D("317.60")
    assert first["entry_price"] == D("10.3333")
    assert first["entry_time"] == pd.Timestamp("2024-01-02 15:00", tz="UTC")
    # The other 30 @ 12 sold at 11: -30 gross, 0.60 left of the entry commission plus 1.00.
    assert second["gross_pnl"] == D("-30")
    assert second["pnl"] == D("-31.60")
    # Capital 10000: cash moves -1001 -601 +1559 +329 = +286 = the two trades' net P&L.
    assert final_equity(fills, {}, D("10000")) == D("10286.00") == D("10000") + first["pnl"] + second["pnl"]


def test_selling_more_than_held_is_an_error_not_a_short() -> None:
    fills = _fills([("2024-01-02 15:00", "BUY", 10, "10", "1.00"), ("2024-01-03 15:00", "SELL", 11, "10", "1.00")])
    with pytest.raises(ValueError, match="sells 11 SPY.SIM for S-1 with no open shares"):
        round_trips(fills)
