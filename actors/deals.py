"""
The deals report: one row per round trip (closed) and per open lot (open), from the journal.

    python -m actors.deals --journal sqlite:///records/journal_paper.sqlite [--run-id ID] [--csv out.csv]
    python -m actors.deals --result backtest_results/ma_cross-...   # a backtest's run

Columns: strategy, signal type, symbol, entry/exit quantity and price, P&L, charges, net P&L,
net P&L %, entry/exit date, status and how it closed.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from actors.journal_store import JournalStore

DEAL_COLUMNS = [
    "strategy", "signal_type", "symbol", "entry_qty", "entry_price", "exit_qty", "exit_price",
    "pnl", "charges", "net_pnl", "net_pnl_pct", "entry_date", "exit_date", "status", "closed_by",
]


def _iso(ts_ns: int) -> str:
    return pd.Timestamp(ts_ns, tz="UTC").isoformat()


def deals(store: JournalStore, run_id: str | None) -> list[dict[str, Any]]:
    """Closed round trips, oldest exit first, then the lots still open."""
    orders = {row["order_ref"]: row for row in store.rows("orders", run_id)}
    rows: list[dict[str, Any]] = []
    for trade in store.rows("trades", run_id, order_by="exit_ns"):
        rows.append(
            {
                "strategy": trade["strategy"], "signal_type": trade["signal_type"],
                "symbol": trade["symbol"], "entry_qty": trade["quantity"],
                "entry_price": trade["entry_price"], "exit_qty": trade["quantity"],
                "exit_price": trade["exit_price"], "pnl": trade["gross_pnl"],
                "charges": trade["charges"], "net_pnl": trade["net_pnl"],
                "net_pnl_pct": trade["net_pnl_pct"], "entry_date": _iso(trade["entry_ns"]),
                "exit_date": _iso(trade["exit_ns"]), "status": "closed",
                "closed_by": trade["exit_reason"],
            },
        )
    for lot in store.open_lots(run_id):
        order = orders.get(lot.lot_id.split("#")[0])
        rows.append(
            {
                "strategy": lot.strategy, "signal_type": order["tags"] if order else "",
                "symbol": lot.symbol, "entry_qty": lot.quantity, "entry_price": lot.price,
                "exit_qty": "", "exit_price": "", "pnl": "", "charges": lot.commission,
                "net_pnl": "", "net_pnl_pct": "", "entry_date": _iso(lot.opened_ns),
                "exit_date": "", "status": "open", "closed_by": "",
            },
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Deals report from the journal.")
    parser.add_argument("--journal", help="journal database URL")
    parser.add_argument("--schema", help="journal PostgreSQL schema")
    parser.add_argument("--run-id", help="only this run (backtests); default every run")
    parser.add_argument("--result", type=Path, help="a backtest result folder (reads records.json)")
    parser.add_argument("--csv", type=Path, help="also write the deals to this CSV file (must not exist)")
    args = parser.parse_args(argv)
    console = Console(width=220)
    url, run_id = args.journal, args.run_id
    if args.result is not None:
        manifest_path = args.result / "records.json"
        if not manifest_path.exists():
            console.print(f"error: --result: {manifest_path} not found", highlight=False)
            return 2
        manifest = json.loads(manifest_path.read_text())
        url = url or manifest["journal_url"]
        run_id = run_id or manifest["run_id"]
    if not url:
        console.print("error: --journal: give the journal database URL (or --result)", highlight=False)
        return 2
    if args.csv is not None and args.csv.exists():
        console.print(f"error: --csv: {args.csv} exists; it is never overwritten", highlight=False)
        return 2
    store = JournalStore(url, args.schema)
    try:
        rows = deals(store, run_id)
    finally:
        store.close()
    table = Table(title=f"Deals ({len(rows)})")
    for column in DEAL_COLUMNS:
        table.add_column(column, justify="right" if column.endswith(("qty", "price", "pnl", "pct", "charges")) else "left")
    for row in rows:
        table.add_row(*(str(row[c]) for c in DEAL_COLUMNS))
    console.print(table)
    if args.csv is not None:
        with args.csv.open("x", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=DEAL_COLUMNS)
            writer.writeheader()
            writer.writerows({k: str(v) for k, v in row.items()} for row in rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
