"""The risk layer wired into run_backtest: on by default, off with --no-risk, a crash-day halt."""

from __future__ import annotations

import csv
import platform
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import run_backtest
from backtesting.builder import BacktestRequest
from backtesting.builder import build_run_config
from catalog.instruments import make_instrument
from catalog.store import bar_type_for
from catalog.store import bars_from_frame
from catalog.store import open_catalog
from catalog.store import write_instrument
from config.version import project_version


@pytest.fixture(scope="module")
def crash_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """
    One session of SPY minutes: a dip (bars 1-30), a steady climb that makes the MA cross buy
    (bars 31-200), then a crash of 3% a minute for 5 minutes (12:51-12:55 ET) and a flat tail.
    """
    path = tmp_path_factory.mktemp("crash_catalog")
    catalog = open_catalog(path)
    instrument = make_instrument("SPY")
    write_instrument(catalog, instrument)
    closes = list(np.linspace(470, 466, 30)) + list(np.linspace(466.1, 476, 170))
    for _ in range(5):
        closes.append(closes[-1] * 0.97)
    closes += [closes[-1]] * 180
    index = pd.date_range("2024-03-05 09:31", periods=len(closes), freq="1min", tz="America/New_York")
    frame = pd.DataFrame({"close": closes}, index=index.tz_convert("UTC")).round(2)
    frame["open"] = frame["close"].shift(1).fillna(frame["close"].iloc[0])
    frame["high"] = frame[["open", "close"]].max(axis=1)
    frame["low"] = frame[["open", "close"]].min(axis=1)
    frame["volume"] = 50_000.0
    catalog.write_data(bars_from_frame(instrument, bar_type_for(instrument.id, "1min"), frame))
    return path


def test_the_gate_and_kill_switch_are_in_every_backtest_by_default(crash_catalog: Path) -> None:
    request = BacktestRequest(strategy="ma_cross", symbols=("SPY",), catalog=crash_catalog, progress=False)
    engine = build_run_config(request).engine
    paths = [a.actor_path for a in engine.actors]
    assert paths == ["actors.pre_trade_gate:PreTradeGate", "actors.kill_switch:KillSwitch"]
    gate_risk = engine.actors[0].config["risk"]
    assert gate_risk["symbol_cap_pct"] == "100"  # ma_cross's documented override
    assert gate_risk["max_risk_per_trade_pct"] == "2.5" and gate_risk["daily_loss_limit_pct"] == "5"
    assert engine.risk_engine.max_notional_per_order == {"SPY.SIM": 1_000_000}
    assert engine.risk_engine.max_order_submit_rate == "100/00:00:01"

    bare = build_run_config(BacktestRequest(strategy="ma_cross", symbols=("SPY",), catalog=crash_catalog,
                                            progress=False, risk=None)).engine
    assert bare.actors == [] and bare.risk_engine.max_notional_per_order == {}


def test_a_crash_day_halts_the_reference_strategy(crash_catalog: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code = run_backtest.main([
        "--catalog", str(crash_catalog), "--symbols", "SPY", "--set", "fast_period=2",
        "--set", "slow_period=4", "--out", str(out), "--no-progress",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"nautilus-equities {project_version()} (backtest) | nautilus_trader 1.231.0")
    events = json.loads((out / "risk_events.json").read_text())
    # MA cross bought 203 shares at 466.93 (+$1.02 fee): cash 5,212.19. Closes fall 476.00,
    # 461.72, 447.87, 434.43: at 12:52 equity is 5,212.19 + 203 x 447.87 = 96,129.80, a 3.87%
    # loss; at 12:53 it is 5,212.19 + 203 x 434.43 = 93,401.48, 6.60%: the halt, two minutes
    # before the strategy's own 5-minute exit signal could come.
    [halt] = events["kill_switch_events"]
    halt_ts = pd.Timestamp(halt["ts_ns"], tz="UTC")
    assert (halt["action"], halt["equity"], halt["loss_pct"]) == ("HALT", "93401.48", "6.60")
    assert halt_ts == pd.Timestamp("2024-03-05 12:53", tz="America/New_York")
    with open(out / "fills.csv", newline="") as fh:
        fills = list(csv.DictReader(fh))
    buys = [f for f in fills if f["side"] == "BUY"]
    sells = [f for f in fills if f["side"] == "SELL"]
    assert buys and all(pd.Timestamp(f["ts_event"]) < halt_ts for f in buys)
    # Flattened on the halt bar: what was bought was sold, the last sale at the halt.
    assert sum(Decimal(f["quantity"]) for f in buys) == sum(Decimal(f["quantity"]) for f in sells)
    assert pd.Timestamp(sells[-1]["ts_event"]) == halt_ts
    # One tick of slippage: the exit is a market order.
    assert (sells[-1]["price"], sells[-1]["tags"]) == ("434.42", "risk-exit,exit:kill_switch")
    with open(out / "trades.csv", newline="") as fh:
        assert list(csv.DictReader(fh))[-1]["exit_reason"] == "kill switch"
    # Cash: 5,212.19 + 203 x 434.42 - 1.02 = 93,398.43, the engine's own balance.
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert Decimal(metrics["engine_cash_balance"]) == Decimal("93398.43")
    # The summary and the top of the report say what the kill switch did, when and why.
    said = (
        "Risk: kill_switch halted trading from 2024-03-05 12:53 ET to the end of the run: day loss "
        "6.60% (equity 93401.48 vs session start 100000.00) reached DAILY_LOSS_LIMIT 5%; open orders "
        "cancelled; positions closed; 0 orders refused meanwhile"
    )
    assert events["summary"] == [said]
    assert said in " ".join(printed.split())
    report = (out / "report.html").read_text()
    assert report.index("Read first") < report.index(said) < report.index("<h2>Summary</h2>")
    # The journal's risk rows carry the money that caused the halt, not only the state change:
    # a loss of 100,000.00 - 93,401.48 = 6,598.52 against 5% of 100,000.00 = 5,000.00.
    import sqlite3

    with sqlite3.connect(tmp_path / "journal_backtest.sqlite") as db:
        rows = db.execute("SELECT source, kind, detail FROM risk_events WHERE kind = 'halt' "
                          "ORDER BY id").fetchall()
    assert ("kill_switch", "halt",
            "day loss 6598.52 reached the limit 5000.00 (DAILY_LOSS_LIMIT 5% of session start "
            "equity 100000.00; equity 93401.48, loss 6.60%)") in rows


def test_version_flag(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        run_backtest.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == (
        f"nautilus-equities {project_version()} (backtest) | nautilus_trader 1.231.0 | "
        f"Python {platform.python_version()}"
    )
    assert project_version() == "0.1.0"


def test_run_live_prints_the_same_banner(capsys) -> None:
    import run_live

    assert run_live.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith(f"nautilus-equities {project_version()} (live) | nautilus_trader 1.231.0")
