import datetime as dt
from decimal import Decimal as D

import pandas as pd
import pytest

from actors.fills import FillRecord
from actors.ledger import GnuCashLedger
from actors.ledger import LedgerError
from config.ledger import ChartOfAccounts
from config.ledger import export_mode_book


def fill(ts: str, side: str, qty: str, price: str, trade: str, strategy: str = "S-1",
         currency: str = "USD") -> FillRecord:
    return FillRecord(pd.Timestamp(ts, tz="UTC").value, strategy, "SPY.SIM", side, D(qty), D(price),
                      D("1.00"), currency, f"O-{trade}", f"V-{trade}", trade, "TAKER", "ib")


def test_a_reopened_book_rebuilds_its_lots_and_books_fifo_gains(tmp_path) -> None:
    path = tmp_path / "gnu_paper.gnucash"
    ledger = GnuCashLedger.create(path)
    ledger.record_opening_balance(D("10000"), dt.date(2024, 1, 2), "ib")
    ledger.record_fill(fill("2024-01-02 15:00", "BUY", "10", "100.00", "1"))
    ledger.record_fill(fill("2024-01-02 16:00", "BUY", "10", "110.00", "2"))
    sale = ledger.record_fill(fill("2024-01-03 15:00", "SELL", "15", "120.00", "3"))
    assert sale.gross_pnl == D("250.00")  # 1800 - (1000 + 550)
    ledger.close()

    ledger = GnuCashLedger.open(path)  # a restart: lots come from the book's own splits
    sale = ledger.record_fill(fill("2024-01-04 15:00", "SELL", "5", "90.00", "4"))
    assert sale.gross_pnl == D("-100.00")  # the 5 left cost 110 each
    chart = ledger.chart
    # 10000 - 1001 - 1101 + 1799 + 449
    assert ledger.balance(chart.cash) == D("10146.00")
    assert ledger.balance(chart.realized) == D("-150.00")
    assert ledger.balance(chart.commissions) == D("4.00")
    assert ledger.positions() == {}
    with pytest.raises(LedgerError, match="opening balance is already booked"):
        ledger.record_opening_balance(D("1"), dt.date(2024, 1, 5), "ib")
    ledger.close()


def test_an_existing_book_is_never_recreated_and_is_backed_up_once_a_day(tmp_path) -> None:
    path = tmp_path / "gnu_live.gnucash"
    GnuCashLedger.create(path).close()
    before = path.read_bytes()
    with pytest.raises(LedgerError, match="gnu_live.gnucash: the book exists; it is never overwritten"):
        GnuCashLedger.create(path)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.bak"))  # a fresh book has nothing to back up

    ledger = GnuCashLedger.open(path)
    ledger.record_opening_balance(D("5000"), dt.date(2024, 1, 2), "ib")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    backup = tmp_path / f"gnu_live.gnucash.{today}.bak"
    assert backup.exists()
    backup_bytes = backup.read_bytes()
    ledger.record_fill(fill("2024-01-02 15:00", "BUY", "10", "100.00", "1"))
    ledger.close()
    assert backup.read_bytes() == backup_bytes  # the day's backup is the state before its first write
    assert len(list(tmp_path.glob("*.bak"))) == 1
    old = GnuCashLedger.open(backup, readonly=True)
    assert old.balance(old.chart.cash) == 0
    old.close()


def test_bad_fills_and_settings_are_refused_by_name(tmp_path) -> None:
    ledger = GnuCashLedger.create(tmp_path / "book.gnucash")
    with pytest.raises(LedgerError, match="fill 7: commission in EUR, the book is in USD"):
        ledger.record_fill(fill("2024-01-02 15:00", "BUY", "1", "1.00", "7", currency="EUR"))
    with pytest.raises(Exception, match="S-1 sells 1 SPY but holds 0"):
        ledger.record_fill(fill("2024-01-02 15:00", "SELL", "1", "1.00", "8"))
    ledger.close()
    with pytest.raises(LedgerError, match="no such book"):
        GnuCashLedger.open(tmp_path / "missing.gnucash")
    with pytest.raises(ValueError, match="ledger account commissions must be a path under Expenses:"):
        ChartOfAccounts(commissions="Income:Fees")


def test_export_mode_picks_the_book(tmp_path) -> None:
    from actors.ledger import ledger_config_for

    config = ledger_config_for("auto", "paper", tmp_path, "ib")
    assert config.book_path == str(tmp_path / "gnu_paper.gnucash") and config.broker == "ib"
    assert ledger_config_for("off", "live", tmp_path, "ib") is None
    assert export_mode_book("auto", "paper") == "gnu_paper.gnucash"
    assert export_mode_book("auto", "live") == "gnu_live.gnucash"
    assert export_mode_book("auto", "backtest") is None
    assert export_mode_book("live", "paper") == "gnu_live.gnucash"
    assert export_mode_book("off", "live") is None
    with pytest.raises(ValueError, match="GNC_EXPORT_MODE must be one of auto, paper, live, off, got 'on'"):
        export_mode_book("on", "live")
