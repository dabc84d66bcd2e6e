"""run_backtest.py --strategy core_rsi over two months of the real SPY minutes, bars only."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

import run_backtest
from catalog.instruments import make_instrument
from catalog.store import bar_type_for
from catalog.store import bars_from_frame
from catalog.store import open_catalog
from catalog.store import write_instrument
from tests.shared_data import spy_year_frame

CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = spy_year_frame()
    frame = frame[
        (frame.index >= pd.Timestamp("2024-04-01", tz="UTC"))
        & (frame.index < pd.Timestamp("2024-06-01", tz="UTC"))
    ]
    catalog_path = tmp_path_factory.mktemp("spy_bars_only")
    catalog = open_catalog(catalog_path)
    instrument = make_instrument("SPY")
    write_instrument(catalog, instrument)
    catalog.write_data(bars_from_frame(instrument, bar_type_for(instrument.id, "1min"), frame))
    out = tmp_path_factory.mktemp("run") / "core_rsi"
    code = run_backtest.main(
        [
            "--strategy",
            "core_rsi",
            "--catalog",
            str(catalog_path),
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    return out


def test_bars_only_catalog_runs_and_the_report_says_the_bid_fell_back(result: Path) -> None:
    document = json.loads((result / "metrics.json").read_text())
    assert document["symbols_without_quotes"] == ["SPY"]
    chase = document["execution_algorithms"]["BidChaser"]
    assert chase["bid_prices"] == 0 and chase["fallback_prices"] > 0
    page = (result / "report.html").read_text()
    assert "Bid fallback:" in page and "no quotes in the catalog for SPY" in page
    for heading in (
        "Core-RSI: lots, cycles and execution",
        "RSI on 15-minute bars",
        "RSI on NYSE weekly bars",
        "Core value as % of its target",
        "Orders that needed a resubmission",
        "Realised P&amp;L, trading lots, net (USD)",
    ):
        assert heading in page


def test_lot_book_reconciles_with_the_engines_fills_to_the_cent(result: Path) -> None:
    document = json.loads((result / "metrics.json").read_text())
    summary = document["strategy_summaries"]["SPY.SIM"]
    fills = pd.read_csv(result / "fills.csv", dtype=str)
    bought = sum(
        Decimal(q) for q, s in zip(fills["quantity"], fills["side"], strict=True) if s == "BUY"
    )
    sold = sum(
        Decimal(q) for q, s in zip(fills["quantity"], fills["side"], strict=True) if s == "SELL"
    )
    assert Decimal(summary["open_shares"]) == bought - sold
    # Cash from the fills = capital - open cost + realised P&L of every lot (all net of fees).
    cash = Decimal("100000")
    for row in fills.itertuples(index=False):
        sign = -1 if row.side == "BUY" else 1
        cash += sign * Decimal(row.quantity) * Decimal(row.price) - Decimal(row.commission)
    realised = sum(Decimal(v) for v in summary["realised_by_kind"].values())
    lots_cash = Decimal("100000") - Decimal(summary["open_cost"]) + realised
    assert lots_cash.quantize(CENT) == cash.quantize(CENT)
    assert Decimal(document["metrics"]["engine_cash_balance"]).quantize(CENT) == cash.quantize(CENT)
