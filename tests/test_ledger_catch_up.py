"""
At start the ledger catches up from the journal (the record of truth): a book left one fill
behind by a crash gets that fill booked, says so, and then reconciles with the journal.
"""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.engine import BacktestEngineConfig
from nautilus_trader.config import LoggingConfig

from actors.journal_store import JournalStore
from actors.ledger import CATCH_UP_LOG
from actors.ledger import GnuCashLedger
from actors.ledger import Ledger
from actors.ledger import LedgerConfig
from actors.ledger import journal_fill
from actors.ledger import trade_date
from tests.journal_engine import crash_script
from tests.journal_engine import run_engine

ROOT = Path(__file__).resolve().parents[1]


def _start_ledger(book: Path, url: str) -> None:
    """A node's start and stop with nothing traded: only the ledger's own catch-up runs."""
    engine = BacktestEngine(BacktestEngineConfig(
        trader_id="TESTER-001", logging=LoggingConfig(log_level="ERROR", bypass_logging=True)))
    engine.add_actor(Ledger(LedgerConfig(book_path=str(book), journal_url=url)))
    try:
        engine.run()
    finally:
        engine.dispose()


def test_a_book_behind_the_journal_catches_up_at_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal_paper.sqlite'}"
    run_id = run_engine(url, tmp_path / "records", crash_script(3), mode="paper")
    store = JournalStore(url)
    try:
        fills = [journal_fill(row) for row in store.rows("fills")]
    finally:
        store.close()
    assert [f.side for f in fills] == ["BUY", "SELL"] * 3
    # The book as a crash left it: the opening balance and every fill but the last sale.
    book = tmp_path / "gnu_paper.gnucash"
    ledger = GnuCashLedger.create(book)
    ledger.record_opening_balance(Decimal("100000"), trade_date(fills[0].ts_ns), "simulated")
    for fill in fills[:-1]:
        ledger.record_fill(fill)
    ledger.close()

    _start_ledger(book, url)

    ledger = GnuCashLedger.open(book, readonly=True)
    try:
        assert ledger.booked == {(f.client_order_id, f.trade_id) for f in fills}
        assert ledger.positions() == {}
        # 100000 + 3 round trips of 10 shares, each 0.05 a share up, less 1.00 commission a fill.
        assert ledger.balance(ledger.chart.cash) == Decimal("100000") + 3 * Decimal("0.50") - 6 * Decimal("1.00")
    finally:
        ledger.close()
    last = fills[-1]
    entry = (tmp_path / CATCH_UP_LOG).read_text()
    assert entry.count("\n") == 1
    assert entry.split(" ", 1)[1] == (
        f"ledger caught up from the journal {url}: re-booked 1 fill(s) the book {book} lacked: "
        f"SELL 10 SPY @ {last.price} (order {last.client_order_id}, trade {last.trade_id})\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "actors.reconcile", "--journal", url, "--run-id", run_id,
         "--book", str(book), "--capital", "100000"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    # A second start finds nothing missing: nothing is booked twice, nothing more is said.
    _start_ledger(book, url)
    assert (tmp_path / CATCH_UP_LOG).read_text() == entry
    ledger = GnuCashLedger.open(book, readonly=True)
    try:
        assert len(ledger.book.transactions) == 1 + len(fills)
    finally:
        ledger.close()
