"""
Reconcile the trade records: engine fills, the journal, trade_history and the GnuCash book
must agree to the cent on cash, shares held per symbol, realised P&L and commissions.

    python -m actors.reconcile --result backtest_results/ma_cross-20240601T120000Z
    python -m actors.reconcile --journal sqlite:///records/journal_paper.sqlite \\
        --trade-history records/trade_history.csv --book gnu_paper.gnucash --capital 100000

--result reads the folder's records.json (written by run_backtest.py). Every difference is
printed; the exit status is 1 when any figure differs, 0 when all agree, 2 on bad input.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from decimal import InvalidOperation
from pathlib import Path

from rich.console import Console
from rich.table import Table

from actors.fills import FillRecord
from actors.journal_store import JournalError
from actors.journal_store import JournalStore
from actors.lots import Lot
from actors.lots import LotBook
from actors.ledger import LedgerError
from actors.trade_files import TradeFileError
from actors.trade_files import read_trade_history

ZERO = Decimal(0)
CENT = Decimal("0.01")
FIGURES = ("cash", "realized_gross", "realized_net", "commissions")


class ReconcileInputError(ValueError):
    """A source that cannot be read; the message names the file and line."""


@dataclass
class Figures:
    """What one source says; None where the source cannot tell."""

    source: str
    cash: Decimal | None = None
    realized_gross: Decimal | None = None
    realized_net: Decimal | None = None
    commissions: Decimal | None = None
    positions: dict[str, Decimal] = field(default_factory=dict)


def _dec(text: str, where: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ReconcileInputError(f"{where}: expected a decimal number, got {text!r}") from None


def figures_from_fills(source: str, fills: list[FillRecord], capital: Decimal) -> Figures:
    """Cash, lots and FIFO round trips recomputed from raw fills."""
    lots = LotBook()
    out = Figures(source, cash=capital, realized_gross=ZERO, realized_net=ZERO, commissions=ZERO)
    for fill in sorted(fills, key=lambda f: f.ts_ns):
        out.cash += fill.cash_flow
        out.commissions += fill.commission
        if fill.side == "BUY":
            lots.buy(Lot(f"{fill.client_order_id}#{fill.trade_id}", fill.strategy, fill.symbol,
                         fill.ts_ns, fill.price, fill.quantity, fill.commission))
        else:
            sale = lots.sell(fill.strategy, fill.symbol, fill.quantity, fill.price, fill.commission,
                             f"{source} fill {fill.trade_id}")
            out.realized_gross += sale.gross_pnl
            out.realized_net += sale.net_pnl
    out.positions = lots.positions()
    return out


def read_fills_csv(path: Path) -> list[FillRecord]:
    """The engine's fills as backtesting/run.py writes them (fills.csv)."""
    import pandas as pd

    if not path.exists():
        raise ReconcileInputError(f"{path}: no such fills file")
    fills = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            where = f"{path} line {reader.line_num}"
            fills.append(
                FillRecord(
                    ts_ns=pd.Timestamp(row["ts_event"]).value,
                    strategy=row["strategy_id"], instrument_id=row["instrument_id"], side=row["side"],
                    quantity=_dec(row["quantity"], where), price=_dec(row["price"], where),
                    commission=_dec(row["commission"], where), currency="USD",
                    client_order_id=row["client_order_id"], venue_order_id="",
                    trade_id=row["trade_id"], liquidity_side="", broker="",
                ),
            )
    return fills


def journal_figures(store: JournalStore, run_id: str | None, capital: Decimal) -> list[Figures]:
    """Two views of the journal: its fills recomputed, and its own trades, lots and account."""
    rows = store.rows("fills", run_id)
    fills = [
        FillRecord(r["ts_ns"], r["strategy"], r["instrument_id"], r["side"], r["quantity"],
                   r["price"], r["commission"], r["currency"], r["client_order_id"],
                   r["venue_order_id"], r["trade_id"], r["liquidity_side"], r["broker"])
        for r in rows
    ]
    recomputed = figures_from_fills("journal fills", fills, capital)
    trades = store.rows("trades", run_id)
    recorded = Figures(
        "journal trades/lots/account",
        realized_gross=sum((t["gross_pnl"] for t in trades), ZERO),
        realized_net=sum((t["net_pnl"] for t in trades), ZERO),
        commissions=sum((r["commission"] for r in rows), ZERO),
    )
    lots = LotBook(store.open_lots(run_id))
    recorded.positions = lots.positions()
    account = store.last_equity(run_id)
    recorded.cash = account["total"] if account else None
    return [recomputed, recorded]


def trade_history_figures(path: Path, capital: Decimal) -> Figures:
    out = Figures(f"trade_history ({path.name})", cash=capital, realized_gross=ZERO,
                  realized_net=ZERO, commissions=ZERO)
    held: dict[str, Decimal] = {}
    first_line = 1 if path.suffix == ".json" else 2  # a CSV file's line 1 is its header
    for number, row in enumerate(read_trade_history(path), start=first_line):
        if row["error_code"]:
            continue  # a refused order moved no shares and no cash
        where = f"{path} line {number}"
        size = _dec(row["size"], where)
        commission = _dec(row["commission"], where)
        out.commissions += commission
        if row["side"] == "BUY":
            out.cash -= size * _dec(row["entry_price"], where) + commission
            held[row["ticker"]] = held.get(row["ticker"], ZERO) + size
        elif row["side"] == "SELL":
            out.cash += size * _dec(row["exit_price"], where) - commission
            held[row["ticker"]] = held.get(row["ticker"], ZERO) - size
            net = _dec(row["PnL"], where)
            out.realized_net += net
            out.realized_gross += net + _dec(row["charges"], where)
        else:
            raise ReconcileInputError(f"{where}: side must be BUY or SELL, got {row['side']!r}")
    out.positions = {k: v for k, v in held.items() if v != 0}
    return out


def book_figures(path: Path) -> Figures:
    from actors.ledger import GnuCashLedger

    ledger = GnuCashLedger.open(path, readonly=True)
    try:
        chart = ledger.chart
        return Figures(
            f"GnuCash book ({path.name})",
            cash=ledger.balance(chart.cash),
            # Income is a credit balance: a gain is negative in book sign.
            realized_gross=-ledger.balance(chart.realized),
            commissions=ledger.balance(chart.commissions),
            positions=ledger.positions(),
        )
    finally:
        ledger.close()


def differences(sources: list[Figures]) -> list[str]:
    """Every figure on which two sources differ by a cent or more, as readable lines."""
    problems = []
    for name in FIGURES:
        values = [(s.source, getattr(s, name)) for s in sources if getattr(s, name) is not None]
        if len({v.quantize(CENT) for _, v in values}) > 1:
            problems.append(f"{name}: " + "; ".join(f"{src} = {v.quantize(CENT)}" for src, v in values))
    symbols = sorted({sym for s in sources for sym in s.positions})
    for symbol in symbols:
        values = [(s.source, s.positions.get(symbol, ZERO)) for s in sources]
        if len({v for _, v in values}) > 1:
            problems.append(f"position {symbol}: " + "; ".join(f"{src} = {v}" for src, v in values))
    return problems


def gather(args: argparse.Namespace) -> list[Figures]:
    manifest: dict[str, object] = {}
    if args.result is not None:
        path = args.result / "records.json"
        if not path.exists():
            raise ReconcileInputError(f"--result: {path} not found (run_backtest.py writes it)")
        manifest = json.loads(path.read_text())
    capital_text = args.capital or manifest.get("capital")
    if capital_text is None:
        raise ReconcileInputError("--capital: give the starting cash (no records.json names it)")
    capital = _dec(str(capital_text), "--capital")
    sources: list[Figures] = []
    fills = args.fills or (Path(manifest["fills"]) if manifest.get("fills") else None)
    if fills is not None:
        sources.append(figures_from_fills(f"engine fills ({fills.name})", read_fills_csv(fills), capital))
    journal = args.journal or manifest.get("journal_url")
    if journal:
        run_id = args.run_id or manifest.get("run_id")
        store = JournalStore(journal_url(str(journal)), args.schema)
        try:
            sources.extend(journal_figures(store, run_id, capital))
        finally:
            store.close()
    history = args.trade_history or (Path(manifest["trade_history"]) if manifest.get("trade_history") else None)
    if history is not None:
        sources.append(trade_history_figures(history, capital))
    book = args.book or (Path(manifest["ledger_book"]) if manifest.get("ledger_book") else None)
    if book is not None:
        sources.append(book_figures(book))
    if len(sources) < 2:
        raise ReconcileInputError("nothing to reconcile: give at least two sources")
    return sources


def print_table(console: Console, sources: list[Figures]) -> None:
    table = Table(title="Reconciliation")
    table.add_column("figure")
    for s in sources:
        table.add_column(s.source, justify="right")
    for name in FIGURES:
        table.add_row(name, *("-" if getattr(s, name) is None else str(getattr(s, name).quantize(CENT))
                              for s in sources))
    for symbol in sorted({sym for s in sources for sym in s.positions}):
        table.add_row(f"shares {symbol}", *(str(s.positions.get(symbol, ZERO)) for s in sources))
    console.print(table)


def journal_url(text: str) -> str:
    """A database URL as given, or a SQLite journal's path (state/journal_paper.sqlite) as one;
    a path that does not exist is refused (SQLite would create an empty journal that agrees)."""
    if "://" in text:
        return text
    path = Path(text)
    if not path.is_file():
        raise ReconcileInputError(f"--journal {text}: no such file")
    return f"sqlite:///{path.resolve()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check that the trade records agree to the cent.")
    parser.add_argument("--result", type=Path, help="a backtest result folder (reads records.json)")
    parser.add_argument("--fills", type=Path, help="engine fills.csv")
    parser.add_argument("--journal", help="journal database URL, or the path of a SQLite journal")
    parser.add_argument("--schema", help="journal PostgreSQL schema")
    parser.add_argument("--run-id", help="only this run's records (default: the result's run)")
    parser.add_argument("--trade-history", type=Path, help="trade_history.csv or .json")
    parser.add_argument("--book", type=Path, help="GnuCash book")
    parser.add_argument("--capital", help="starting cash in USD")
    args = parser.parse_args(argv)
    console = Console(width=200)
    try:
        sources = gather(args)
    except (ReconcileInputError, TradeFileError, LedgerError, JournalError) as exc:
        console.print(f"error: {exc}", highlight=False)
        return 2
    print_table(console, sources)
    problems = differences(sources)
    for line in problems:
        console.print(f"DIFFERENCE {line}", highlight=False)
    if problems:
        return 1
    console.print(f"All {len(sources)} sources agree to the cent.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
