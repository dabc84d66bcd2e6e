from decimal import Decimal as D

import pytest

from actors.lots import Lot
from actors.lots import LotBook
from actors.lots import LotError


def test_fifo_sale_across_two_lots_splits_entry_commission_to_the_cent() -> None:
    book = LotBook()
    book.buy(Lot("a", "S", "SPY", 1, D("100.00"), D("10"), D("1.00")))
    book.buy(Lot("b", "S", "SPY", 2, D("110.00"), D("3"), D("1.00")))
    sale = book.sell("S", "SPY", D("12"), D("120.00"), D("1.00"), "fill 1")
    # 10 @ 100 + 2 @ 110 = 1220; proceeds 1440; lot b carries 2/3 of 1.00 = 0.67 (cents).
    assert sale.cost == D("1220.00")
    assert sale.gross_pnl == D("220.00")
    assert sale.charges == D("2.67")
    assert sale.net_pnl == D("217.33")
    assert sale.entry_price == D("101.6667")
    assert [(c.lot_id, c.quantity) for c in sale.closings] == [("a", D("10")), ("b", D("2"))]
    last = book.sell("S", "SPY", D("1"), D("100.00"), D("1.00"), "fill 2")
    # The last share takes what is left of lot b's commission: 1.00 - 0.67 = 0.33.
    assert last.charges == D("1.33")
    assert book.positions() == {}


def test_strategies_keep_separate_lots_and_a_short_sale_is_refused_by_name() -> None:
    book = LotBook([Lot("a", "S1", "SPY", 1, D("100"), D("5"), D("0"))])
    book.buy(Lot("b", "S2", "SPY", 2, D("90"), D("5"), D("0")))
    assert book.sell("S2", "SPY", D("5"), D("95"), D("0"), "x").gross_pnl == D("25")
    with pytest.raises(LotError, match=r"fill 9: S2 sells 1 SPY but holds 0; long-only"):
        book.sell("S2", "SPY", D("1"), D("95"), D("0"), "fill 9")
    assert book.positions() == {"SPY": D("5")}
