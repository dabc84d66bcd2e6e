"""
One real backtest with the journal and the ledger (run_backtest.py --ledger): the MA cross
on a hand-built oscillating catalog trades dozens of times; then the reconcile command, the
deals report and GnuCash itself (gnucash-cli's Balance Sheet) are checked against it.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import subprocess
from decimal import Decimal as D
from pathlib import Path

import pandas as pd
import pytest

import run_backtest
from actors import deals
from actors import reconcile
from actors.journal_store import JournalStore
from tests.records_catalog import SESSIONS
from tests.records_catalog import build_catalog
from tests.services import require_gnucash_cli


@pytest.fixture(scope="module")
def backtest(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("records")
    catalog = build_catalog(root / "catalog")
    out = root / "result"
    code = run_backtest.main([
        "--catalog", str(catalog), "--symbols", "SPY,QQQ", "--set", "fast_period=3",
        "--set", "slow_period=8", "--out", str(out), "--journal",
        f"sqlite:///{root / 'journal_backtest.sqlite'}", "--ledger", "--no-progress",
    ])
    assert code == 0
    manifest = json.loads((out / "records.json").read_text())
    return {"root": root, "out": out, "manifest": manifest}


def test_the_backtest_trades_many_times_and_all_records_reconcile(backtest, capsys) -> None:
    capsys.readouterr()
    code = reconcile.main(["--result", str(backtest["out"])])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "All 5 sources agree to the cent." in out
    with (backtest["out"] / "fills.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) >= 40


def test_reconcile_names_a_difference_and_fails(backtest, tmp_path, capsys) -> None:
    history = Path(backtest["manifest"]["trade_history"])
    tampered = tmp_path / "trade_history.csv"
    lines = history.read_text().splitlines()
    # A sale's commission raised by one cent: cash, commissions and net P&L all disagree.
    row = next(i for i, line in enumerate(lines) if ",SELL," in line)
    fields = next(csv.reader([lines[row]]))
    fields[9] = str(D(fields[9]) + D("0.01"))
    lines[row] = ",".join(fields)
    tampered.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    code = reconcile.main(["--result", str(backtest["out"]), "--trade-history", str(tampered)])
    out = capsys.readouterr().out
    assert code == 1
    assert re.search(r"DIFFERENCE commissions: .*trade_history \(trade_history.csv\) = \d+\.\d1", out)
    assert "DIFFERENCE cash:" in out


def test_deals_report_lists_every_round_trip(backtest, tmp_path) -> None:
    target = tmp_path / "deals.csv"
    assert deals.main(["--result", str(backtest["out"]), "--csv", str(target)]) == 0
    with target.open() as handle:
        rows = list(csv.DictReader(handle))
    store = JournalStore(backtest["manifest"]["journal_url"])
    trades = store.rows("trades", backtest["manifest"]["run_id"])
    store.close()
    closed = [r for r in rows if r["status"] == "closed"]
    assert len(closed) == len(trades) >= 20
    assert sum(D(r["net_pnl"]) for r in closed) == sum(t["net_pnl"] for t in trades)
    assert {r["closed_by"] for r in closed} == {"signal"}
    fills = pd.read_csv(backtest["out"] / "fills.csv")
    assert set(fills[fills.side == "SELL"].tags) == {"exit:signal"}  # MA cross's exits say why
    assert deals.main(["--result", str(backtest["out"]), "--csv", str(target)]) == 2  # never overwrites


def test_daily_summary_has_each_session(backtest) -> None:
    summary = json.loads((backtest["out"] / "daily_summary.json").read_text())
    assert sorted(summary) == [d.isoformat() for d in SESSIONS]
    store = JournalStore(backtest["manifest"]["journal_url"])
    trades = store.rows("trades", backtest["manifest"]["run_id"])
    store.close()
    assert sum(D(s["pnl"]) for s in summary.values()) == sum(t["net_pnl"] for t in trades)
    assert sum(s["trades"] for s in summary.values()) == len(trades)


def _balance_sheet_cells(report: str) -> list[str]:
    text = re.sub(r"<[^>]+>", "\n", report)
    cells = [html.unescape(c).replace("\xa0", " ").strip() for c in text.split("\n")]
    return [c for c in cells if c]


def _amount_after(cells: list[str], label: str) -> D:
    index = cells.index(label)
    amount = next(c for c in cells[index + 1:] if c.startswith(("$", "-$", "($")))
    negative = amount.startswith(("-", "("))
    value = D(amount.strip("-()$").replace(",", ""))
    return -value if negative else value


def test_gnucash_opens_the_book_and_its_balance_sheet_matches_the_journal(backtest, tmp_path) -> None:
    gnucash_cli = require_gnucash_cli()
    copy = tmp_path / "copy.gnucash"  # GnuCash writes a log beside the book: never the original
    shutil.copy(backtest["manifest"]["ledger_book"], copy)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBUS")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"),
               XDG_CACHE_HOME=str(home / "cache"), LANG="C.UTF-8", LC_ALL="C.UTF-8")
    report = tmp_path / "balance_sheet.html"
    result = subprocess.run(
        [gnucash_cli, "--report", "run", "--name", "Balance Sheet", "--output-file", str(report), str(copy)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    cells = _balance_sheet_cells(report.read_text())

    store = JournalStore(backtest["manifest"]["journal_url"])
    run_id = backtest["manifest"]["run_id"]
    cash = store.last_equity(run_id)["total"]
    trades = store.rows("trades", run_id)
    commissions = sum((f["commission"] for f in store.rows("fills", run_id)), D(0))
    open_lots = store.open_lots(run_id)
    store.close()
    assert _amount_after(cells, "Cash") == cash
    gross = sum((t["gross_pnl"] for t in trades), D(0))
    # Income less expenses: realised gains less every commission paid.
    retained = gross - commissions
    label = "Retained Earnings" if retained >= 0 else "Retained Losses"
    assert _amount_after(cells, label) == abs(retained)
    if not open_lots:
        assert _amount_after(cells, "Total Assets") == cash
