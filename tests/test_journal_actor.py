"""
The journal and ledger actors on a hand-computed script (tests/journal_engine.py):
deny 10.5 shares; buy 10 @ 100; buy 10 @ 110; sell 15 @ 120 (target); sell 5 @ 90 (stop).
Commission 1.00 per order (IB minimum). FIFO: the 15 sold cost 10 x 100 + 5 x 110 = 1550,
gross +250, charges 1.00 + 0.50 + 1.00 = 2.50, net 247.50; the last 5 cost 550, gross -100,
charges 0.50 + 1.00 = 1.50, net -101.50. Cash 100000 - 1001 - 1101 + 1799 + 449 = 100146.
"""

from __future__ import annotations

import json
from decimal import Decimal as D

import pandas as pd
import pytest
from sqlalchemy import text

from actors import deals
from actors import reconcile
from actors.journal_store import JournalStore
from actors.ledger import GnuCashLedger
from actors.trade_files import read_trade_history
from tests.journal_engine import run_engine
from tests.services import require_postgres
from tests.services import unique_schema


@pytest.fixture(scope="module")
def hand_run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("hand")
    url = f"sqlite:///{root / 'journal_backtest.sqlite'}"
    run_id = run_engine(url, root / "records", ledger_book=root / "book.gnucash")
    return {"root": root, "url": url, "run_id": run_id, "records": root / "records",
            "book": root / "book.gnucash"}


def test_round_trips_are_hand_computed(hand_run) -> None:
    store = JournalStore(hand_run["url"])
    trades = store.rows("trades", hand_run["run_id"])
    store.close()
    assert [(t["quantity"], t["gross_pnl"], t["charges"], t["net_pnl"], t["exit_reason"]) for t in trades] == [
        (D("15"), D("250.00"), D("2.50"), D("247.50"), "target"),
        (D("5"), D("-100.00"), D("1.50"), D("-101.50"), "stop-loss"),
    ]
    assert [t["signal_type"] for t in trades] == ["signal", "signal"]
    assert trades[0]["net_pnl_pct"] == D("15.97")  # 247.50 / 1550
    assert trades[0]["duration_s"] == 240


def test_orders_keep_a_restart_proof_reference_and_every_state(hand_run) -> None:
    store = JournalStore(hand_run["url"])
    orders = store.rows("orders", hand_run["run_id"])
    events = store.rows("order_events", hand_run["run_id"])
    risks = store.rows("risk_events", hand_run["run_id"])
    signals = store.rows("signals", hand_run["run_id"])
    equity = store.last_equity(hand_run["run_id"])
    store.close()
    assert [o["order_ref"] for o in orders] == [
        f"{hand_run['run_id']}/ScriptedTrader-T1/{n}" for n in range(1, 6)
    ]
    assert orders[0]["client_order_id"].startswith("O-20240304-150100")
    by_order = {}
    for e in events:
        by_order.setdefault(e["order_ref"], []).append(e["event_type"])
    assert by_order[orders[0]["order_ref"]] == ["OrderInitialized", "OrderDenied"]
    assert by_order[orders[1]["order_ref"]] == ["OrderInitialized", "OrderSubmitted", "OrderFilled"]
    assert [(r["kind"], r["source"]) for r in risks] == [("limit", "test-gate"), ("refusal", "RiskEngine")]
    assert "quantity 10.5 invalid" in risks[1]["detail"]
    assert json.loads(signals[0]["indicators"]) == {"fast": "101.5", "slow": "100.25"}
    assert equity["total"] == D("100146.00")


def test_trade_history_log_and_daily_summary(hand_run) -> None:
    rows = read_trade_history(hand_run["records"] / "trade_history.csv")
    assert [(r["side"], r["size"], r["entry_price"], r["exit_price"], r["PnL"], r["error_code"][:6])
            for r in rows] == [
        ("", "", "", "", "", "DENIED"),
        ("BUY", "10", "100.00", "", "", ""),
        ("BUY", "10", "110.00", "", "", ""),
        ("SELL", "15", "103.3333", "120.00", "247.50", ""),
        ("SELL", "5", "110.0000", "90.00", "-101.50", ""),
    ]
    assert {r["mode"] for r in rows} == {"backtest"} and {r["broker"] for r in rows} == {"simulated"}
    log = (hand_run["records"] / "ScriptedTrader-T1.log").read_text()
    assert "FILL SELL 15 SPY @ 120.00 commission 1.00 net P&L 247.50 (target)" in log
    assert "SIGNAL ma_cross_up SPY.SIM" in log
    summary = json.loads((hand_run["records"] / "daily_summary.json").read_text())["2024-03-04"]
    assert summary["close_utc"] == "2024-03-04T21:00:00+00:00"
    assert (summary["pnl"], summary["trades"], summary["win_rate"], summary["fees"]) == ("146.00", 2, "0.5000", "4.00")
    assert summary["equity"] == "100146.00" and summary["open_positions"] == {}
    assert [r["kind"] for r in summary["risk_events"]] == ["limit", "refusal"]


def test_ledger_books_balanced_transactions_with_memos_and_prices(hand_run) -> None:
    ledger = GnuCashLedger.open(hand_run["book"], readonly=True)
    try:
        chart = ledger.chart
        assert ledger.balance(chart.cash) == D("100146.00")
        assert ledger.balance(chart.realized) == D("-150.00")
        assert ledger.balance(chart.commissions) == D("4.00")
        assert ledger.balance(chart.opening) == D("-100000.00")
        assert ledger.positions() == {}
        transactions = ledger.book.transactions
        assert len(transactions) == 5  # opening balance and four fills
        for tx in transactions:
            assert sum(s.value for s in tx.splits) == 0
            assert all("strategy_name=" in s.memo and "broker=simulated" in s.memo for s in tx.splits)
        sale = next(tx for tx in transactions if tx.description.startswith("SELL 15"))
        stock_split = next(s for s in sale.splits if s.account.type == "STOCK")
        assert (stock_split.quantity, stock_split.value) == (D("-15"), D("-1550.00"))
        prices = [(p.date.isoformat(), p.value) for p in ledger.book.prices]
        assert prices == [("2024-03-04", D("90"))]  # the day's last fill price
    finally:
        ledger.close()


def test_reconcile_and_deals_agree_with_the_hand_figures(hand_run, capsys) -> None:
    code = reconcile.main([
        "--journal", hand_run["url"], "--run-id", hand_run["run_id"], "--capital", "100000",
        "--trade-history", str(hand_run["records"] / "trade_history.csv"),
        "--book", str(hand_run["book"]),
    ])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "All 4 sources agree to the cent." in out
    store = JournalStore(hand_run["url"])
    rows = deals.deals(store, hand_run["run_id"])
    store.close()
    assert [(r["status"], r["closed_by"], r["net_pnl"]) for r in rows] == [
        ("closed", "target", D("247.50")), ("closed", "stop-loss", D("-101.50")),
    ]


def test_a_restart_appends_and_rewrites_nothing(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'journal_paper.sqlite'}"
    records = tmp_path / "records"
    buy_only = (("100.00", "BUY:10:signal"), ("100.00", ""))
    first = run_engine(url, records, buy_only, mode="paper")
    history_before = (records / "trade_history.csv").read_bytes()
    store = JournalStore(url)
    fills_before = store.rows("fills")
    store.close()
    # The next day a fresh engine (the venue forgot the position, as IB's session ids are
    # forgotten) buys 10 @ 105 and sells 10 @ 106. The simulated venue reuses its ids.
    again = (("105.00", "BUY:10:signal"), ("106.00", "SELL:10:exit:manual"))
    second = run_engine(url, records, again, mode="paper", start=pd.Timestamp("2024-03-05 15:00", tz="UTC"))
    assert first != second
    assert (records / "trade_history.csv").read_bytes().startswith(history_before)
    store = JournalStore(url)
    try:
        fills = store.rows("fills")
        assert fills[: len(fills_before)] == fills_before
        assert [f["order_ref"] for f in fills] == [
            f"{first}/ScriptedTrader-T1/1", f"{second}/ScriptedTrader-T1/1", f"{second}/ScriptedTrader-T1/2",
        ]
        trades = store.rows("trades")
        # Paper carries lots over restarts: the sale closes the first run's lot (FIFO):
        # 10 x (106 - 100) = 60.00, charges 1.00 (first run's buy) + 1.00 (the sale).
        assert [(t["run_id"], t["gross_pnl"], t["charges"], t["exit_reason"]) for t in trades] == [
            (second, D("60.00"), D("2.00"), "manual"),
        ]
        assert [(lot.price, lot.quantity) for lot in store.open_lots(None)] == [(D("105.00"), D("10"))]
        assert [r["run_id"] for r in store.rows("runs")] == [first, second]
    finally:
        store.close()


def test_postgresql_journal_records_the_same(tmp_path) -> None:
    url = require_postgres()
    schema = unique_schema()
    run_id = run_engine(url, tmp_path / "records", schema=schema)
    store = JournalStore(url, schema)
    try:
        trades = store.rows("trades", run_id)
        assert [t["net_pnl"] for t in trades] == [D("247.50"), D("-101.50")]
        assert store.last_equity(run_id)["total"] == D("100146.00")
    finally:
        with store.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        store.close()


def test_json_trade_history_reconciles_too(tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'journal_backtest.sqlite'}"
    run_id = run_engine(url, tmp_path / "records", log_format="json")
    path = tmp_path / "records" / "trade_history.json"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["PnL"] for r in rows if r["side"] == "SELL"] == ["247.50", "-101.50"]
    code = reconcile.main(["--journal", url, "--run-id", run_id, "--capital", "100000",
                           "--trade-history", str(path)])
    assert code == 0, capsys.readouterr().out


def test_a_short_sale_is_kept_in_the_journal_and_stops_loudly(tmp_path) -> None:
    # A cash account never goes short: a venue reporting one is a break in the records.
    from actors.journal import Journal
    from actors.journal import JournalConfig
    from actors.lots import LotError
    from tests.ledger_events import sell_fill_without_position

    url = f"sqlite:///{tmp_path / 'journal_live.sqlite'}"
    journal = Journal(JournalConfig(mode="live", database_url=url, records_dir=str(tmp_path)))
    journal.writer.start(lambda: JournalStore(url), JournalStore.close)
    journal.writer.call(lambda store: store.start_run(journal.run_id, "live", "T-1", "ib"))
    with pytest.raises(LotError, match="sells 5 SPY but holds 0"):
        journal._on_fill(sell_fill_without_position(), f"{journal.run_id}/S-1/1", ["exit:manual"])
    fills = journal.writer.call(lambda store: store.rows("fills"))
    journal.writer.stop()
    assert [(f["side"], f["quantity"], f["price"]) for f in fills] == [("SELL", D("5"), D("101.00"))]


def test_reconcile_bad_input_is_named_and_exits_2(hand_run, tmp_path, capsys) -> None:
    assert reconcile.main(["--result", str(tmp_path)]) == 2
    assert "records.json not found" in capsys.readouterr().out
    broken = tmp_path / "trade_history.csv"
    lines = (hand_run["records"] / "trade_history.csv").read_text().splitlines()
    broken.write_text("\n".join(lines[:3] + [lines[3].replace(",10,", ",ten,")]) + "\n")
    code = reconcile.main(["--journal", hand_run["url"], "--run-id", hand_run["run_id"],
                           "--capital", "100000", "--trade-history", str(broken)])
    out = capsys.readouterr().out
    assert code == 2
    assert "trade_history.csv line 4: expected a decimal number, got 'ten'" in out
