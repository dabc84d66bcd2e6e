"""The lot book's arithmetic in exact decimals, and its persistence through the journal."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from sqlalchemy import text

from actors.journal_store import JournalStore
from actors.journal_store import default_url
from strategies.lots import LotBook
from strategies.lots import LotError
from strategies.lots import LotKind
from strategies.records import LotChange
from strategies.records import LotRecord
from strategies.records import LotSaleRecord
from strategies.records import SavedLots
from strategies.records import decode_saved_lots
from strategies.records import encode_saved_lots
from tests.services import require_postgres
from tests.services import unique_schema

D = Decimal


def test_fills_average_and_sales_realise_net_pnl_by_kind() -> None:
    book = LotBook("SPY.SIM")
    book.add_buy_fill("L1", LotKind.CORE_BUILDING, 1, D("6"), D("100.00"), D("1.00"))
    book.add_buy_fill("L1", LotKind.CORE_BUILDING, 2, D("4"), D("100.50"), D("1.00"))
    lot = book.get("L1")
    assert lot.price == D("100.2")  # (6 * 100 + 4 * 100.5) / 10
    assert lot.commission == D("2.00")
    sale = book.record_sale("L1", 3, D("7"), D("101.21"), D("1.00"), "target")
    # gross 7 * 1.01 = 7.07; commissions: the sale's 1.00 and 7/10 of the buy's 2.00 = 1.40
    assert sale.gross_pnl == D("7.07")
    assert sale.net_pnl == D("4.67")
    book.convert("L1", LotKind.CORE)
    book.record_sale("L1", 4, D("1"), D("99.20"), D("1.00"), "core-exit")
    # -1.00 gross, -1.00 sale commission, -0.20 buy commission share
    assert book.realised_by_kind() == {
        "core-building": D("4.67"),
        "core": D("-2.20"),
        "trading": D("0"),
    }
    assert book.open_quantity(LotKind.CORE) == 2


def test_sale_larger_than_the_open_quantity_is_refused() -> None:
    book = LotBook("SPY.SIM")
    book.add_buy_fill("L1", LotKind.TRADING, 1, D("3"), D("10"), D("0"))
    with pytest.raises(LotError, match="lot L1: cannot sell 4, it has 3 open"):
        book.record_sale("L1", 2, D("4"), D("11"), D("0"), "target")
    with pytest.raises(LotError, match="'L9' is not in the book"):
        book.get("L9")


def test_core_cost_basis_is_reduced_by_trading_profit() -> None:
    book = LotBook("SPY.SIM")
    book.add_buy_fill("C1", LotKind.CORE, 1, D("10"), D("50.00"), D("0"))
    book.book_cost_basis_reduction(2, D("12.34"), "T1")
    assert book.core_cost_basis() == D("487.66")


def _scenario(publish: Callable[[LotChange], None]) -> LotBook:
    """A core-building lot partly sold at its target, a trading lot closed with its profit
    booked against the core's cost basis, and another strategy's lot in the same journal."""
    book = LotBook("SPY.SIM", "CoreRSI-SPY", publish)
    book.add_buy_fill("L1", LotKind.CORE_BUILDING, 1_000, D("6"), D("99.00"), D("0.60"))
    book.add_buy_fill("L1", LotKind.CORE_BUILDING, 1_500, D("4"), D("99.25"), D("0.40"))
    book.record_sale("L1", 2_000, D("7"), D("100.20"), D("1.00"), "target")
    book.convert("L1", LotKind.CORE)
    book.add_buy_fill("T1", LotKind.TRADING, 3_000, D("5"), D("98.10"), D("1.00"))
    book.record_sale("T1", 4_000, D("5"), D("99.09"), D("1.00"), "target")
    book.book_cost_basis_reduction(4_000, book.get("T1").realised_pnl, "T1")
    other = LotBook("SPY.SIM", "CoreRSI-OTHER", publish)
    other.add_buy_fill("L1", LotKind.CORE_BUILDING, 5_000, D("1"), D("97"), D("0"))
    return book


def _assert_hand_figures(book: LotBook) -> None:
    core = book.get("L1")
    # (6 * 99.00 + 4 * 99.25) / 10 = 991.00 / 10 = 99.10; buy commission 1.00
    assert (core.kind, core.quantity, str(core.price), str(core.commission), core.open_quantity) == (
        LotKind.CORE, D("10"), "99.10", "1.00", D("3"),
    )
    # 7 * (100.20 - 99.10) = 7.70 gross, less the sale's 1.00 and 7/10 of 1.00 bought = 6.00
    # 5 * (99.09 - 98.10) = 4.95 gross, less 1.00 and 1.00 = 2.95, booked against the core
    assert book.realised_by_kind() == {"core-building": D("6.00"), "core": D("0"), "trading": D("2.95")}
    assert str(book.cost_basis_reduction) == "2.95"
    assert book.core_cost_basis() == D("294.35")  # 3 * 99.10 - 2.95
    assert [lot.lot_id for lot in book.open_lots()] == ["L1"]


def _journal_round_trip(store: JournalStore) -> None:
    published: list[LotChange] = []

    def publish(record: LotChange) -> None:
        published.append(record)
        store.record_lot_change("run-1", record)

    book = _scenario(publish)
    _assert_hand_figures(book)
    # buy, buy, sale, conversion, buy, sale, reduction; the other strategy's buy
    assert [type(r).__name__ for r in published] == [
        "LotRecord", "LotRecord", "LotSaleRecord", "LotRecord",
        "LotRecord", "LotSaleRecord", "CostBasisRecord", "LotRecord",
    ]
    assert [(r["strategy"], r["lot_id"], r["kind"]) for r in store.rows("core_lots", order_by="opened_ns")] == [
        ("CoreRSI-SPY", "L1", "core"), ("CoreRSI-SPY", "T1", "trading"), ("CoreRSI-OTHER", "L1", "core-building"),
    ]
    # What the journal puts into the Cache at the next start, as bytes, and the book from it.
    saved = decode_saved_lots(encode_saved_lots(store.saved_lots()))
    rebuilt = LotBook.restore("SPY.SIM", "CoreRSI-SPY", saved)
    assert rebuilt.lots == book.lots
    assert rebuilt.cost_basis_reduction == book.cost_basis_reduction
    _assert_hand_figures(rebuilt)
    assert LotBook.restore("QQQ.SIM", "CoreRSI-SPY", saved).lots == {}
    assert list(LotBook.restore("SPY.SIM", "CoreRSI-OTHER", saved).lots) == ["L1"]


def test_lots_written_to_the_sqlite_journal_rebuild_the_same_book(tmp_path) -> None:
    url = default_url("paper", tmp_path)
    store = JournalStore(url)
    try:
        _journal_round_trip(store)
    finally:
        store.close()
    # A new process reads the same lots.
    again = JournalStore(url)
    rebuilt = LotBook.restore("SPY.SIM", "CoreRSI-SPY", again.saved_lots())
    again.close()
    _assert_hand_figures(rebuilt)


def test_lots_written_to_the_postgresql_journal_rebuild_the_same_book() -> None:
    store = JournalStore(require_postgres(), unique_schema())
    try:
        _journal_round_trip(store)
    finally:
        with store.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{store.schema}" CASCADE'))
        store.close()


def test_a_saved_sale_out_of_sequence_is_refused_by_name() -> None:
    saved = SavedLots(
        (LotRecord("S", "SPY.SIM", "L1", "core", 1, D("5"), D("10"), D("0")),),
        (LotSaleRecord("S", "SPY.SIM", "L1", 1, 2, D("1"), D("11"), D("0"), D("0"), "core", "x", D("10")),),
    )
    with pytest.raises(LotError, match="saved sale 1 of lot L1 \\(S, SPY.SIM\\) does not follow the saved lot's 0 sales"):
        LotBook.restore("SPY.SIM", "S", saved)
