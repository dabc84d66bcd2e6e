"""The lot book's arithmetic in exact decimals, and its SQLite persistence across a restart."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from strategies.lots import LotBook
from strategies.lots import LotError
from strategies.lots import LotKind
from strategies.lots import SqliteLotStore

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


def test_lots_survive_a_restart(tmp_path) -> None:
    path = tmp_path / "state" / "lots.sqlite"
    store = SqliteLotStore(path)
    book = LotBook("SPY.SIM", store)
    book.add_buy_fill("L1", LotKind.CORE_BUILDING, 1_000, D("10"), D("99.00"), D("1.00"))
    book.record_sale("L1", 2_000, D("7"), D("99.99"), D("1.00"), "target")
    book.convert("L1", LotKind.CORE)
    book.add_buy_fill("T1", LotKind.TRADING, 3_000, D("5"), D("98.10"), D("1.00"))
    book.book_cost_basis_reduction(4_000, D("3.21"), "T0")
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    reopened = LotBook("SPY.SIM", SqliteLotStore(path))
    assert reopened.lots.keys() == {"L1", "T1"}
    core = reopened.get("L1")
    assert (core.kind, core.quantity, core.price, core.open_quantity) == (
        LotKind.CORE,
        D("10"),
        D("99.00"),
        D("3"),
    )
    assert core.sales[0].price == D("99.99") and core.sales[0].kind == LotKind.CORE_BUILDING
    assert reopened.get("T1").opened_ns == 3_000
    assert reopened.cost_basis_reduction == D("3.21")
    assert reopened.realised_by_kind() == book.realised_by_kind()
    # Another instrument's book in the same file stays empty.
    assert LotBook("QQQ.SIM", SqliteLotStore(path)).lots == {}
