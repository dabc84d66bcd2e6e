"""
End to end: the three session strategies together on one account over the shared real data
(SPY, QQQ, NVDA 1-minute; the inverse ETFs at 5 minutes; VIX daily), imported with
catalog/importer.py (which normalises the lot volumes) and run through run_backtest.py.

The shared data's only inverse ETFs are leveraged (SPXS, SQQQ, SOXS), which real configs
refuse. This test maps them with the explicit test-only override allow_leveraged_for_test:
each strategy logs a warning per leveraged pair and self_check() reports NOT READY (so
run_live would refuse it), which the report states. The 1x mapping itself (SPY -> SH) is
proven on hand-built data in test_vwap_reversion and test_eod_momentum.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

import run_backtest
from backtesting.builder import BacktestRequest
from backtesting.builder import BacktestRequestError
from backtesting.builder import build_run_config
from backtesting.builder import plan_run
from backtesting.registry import StrategyParameterError
from catalog.importer import ImportSummary
from catalog.importer import import_file
from catalog.store import open_catalog
from strategies.sessions import EXCHANGE_TZ
from strategies.sessions import session_for

# The range all six instruments cover (SQQQ's 5-minute file ends 2026-03-06), trimmed at the
# start to keep the run short; the first 20 sessions warm up the average daily volume.
START, END = dt.date(2025, 11, 3), dt.date(2026, 3, 6)
ONE_MINUTE = "intraday_1min/jeffreymalkus_alert_overlay/{}_1min.csv.gz"
FIVE_MINUTE = "intraday_5min/jeffreymalkus_alert_overlay/{}_5min.csv.gz"
VIX_FILE = "vix/CBOE_VIX_History_1990-01-02_2026-07-07.csv"
WATCHLIST = ("SPY", "QQQ", "NVDA")
INVERSE = {"SPY": "SPXS", "QQQ": "SQQQ", "NVDA": "SOXS"}
TEST_ONLY = [
    "--set", f"inverse_etfs={json.dumps(INVERSE)}",
    "--set", "allow_leveraged_for_test=true",
    "--set", "eod_momentum.min_vix=15",
]


@dataclass
class Run:
    catalog: Path
    out: Path
    imports: dict[str, ImportSummary]
    metrics: dict[str, object]
    trades: pd.DataFrame
    fills: pd.DataFrame
    report: str


@pytest.fixture(scope="module")
def run(market_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    catalog = tmp_path_factory.mktemp("shared_catalog")
    files = [ONE_MINUTE.format(s) for s in WATCHLIST] + [FIVE_MINUTE.format(s) for s in INVERSE.values()]
    imports = {}
    for name in [*files, VIX_FILE]:
        # The CBOE file has a few rows whose high/low do not bracket open/close: skipped, listed.
        summary = import_file(market_data / name, open_catalog(catalog), skip_bad_rows=name == VIX_FILE)
        imports[summary.symbol] = summary
    out = tmp_path_factory.mktemp("session") / "result"
    argv = ["--strategy", "session", "--symbols", ",".join(WATCHLIST), "--catalog", str(catalog),
            "--start", START.isoformat(), "--end", END.isoformat(),
            "--out", str(out), "--no-progress", *TEST_ONLY]
    assert run_backtest.main(argv) == 0
    fills = pd.read_csv(out / "fills.csv", parse_dates=["ts_event"])
    fills["local"] = fills["ts_event"].dt.tz_convert(EXCHANGE_TZ)
    return Run(
        catalog, out, imports, json.loads((out / "metrics.json").read_text()),
        pd.read_csv(out / "trades.csv"), fills, (out / "report.html").read_text(),
    )


STRATEGY_IDS = ("OpeningRangeBreakout-ORB", "VWAPReversion-VWAP", "EODMomentum-EOD")


def test_report_shows_trades_per_strategy(run: Run) -> None:
    per_strategy = run.metrics["metrics"]["trades_per_strategy"]
    assert set(per_strategy) == set(STRATEGY_IDS)
    assert all(per_strategy[s] > 0 for s in STRATEGY_IDS), per_strategy
    assert sum(per_strategy.values()) == len(run.trades)
    assert "<h2>Trades per strategy</h2>" in run.report
    for strategy_id in STRATEGY_IDS:
        assert f"<td>{strategy_id}</td><td>{per_strategy[strategy_id]}</td>" in run.report


def test_the_importer_normalised_the_lot_volumes_of_the_minute_files(run: Run) -> None:
    # README: most days before 2026-01-22 are in lots of 100 shares; the run covers some.
    for symbol in WATCHLIST:
        converted = run.imports[symbol].volume_days_converted
        assert any(day < "2026-01-22" for day in converted), symbol
    assert run.imports["VIX"].bar_type == "VIX.SIM-1-DAY-LAST-EXTERNAL"


WINDOWS = {  # strategy -> entries strictly inside (start, end); every exit at or before `exit`
    "OpeningRangeBreakout-ORB": ("09:50", "10:20", "10:20"),
    "VWAPReversion-VWAP": ("10:30", "14:30", "15:15"),
    "EODMomentum-EOD": ("14:30", "15:55", "15:55"),
}


def test_every_fill_is_inside_its_strategys_window(run: Run) -> None:
    for strategy_id, (start, end, exit_) in WINDOWS.items():
        mine = run.fills[run.fills.strategy_id == strategy_id]
        times = mine.local.dt.strftime("%H:%M")
        buys, sells = times[mine.side == "BUY"], times[mine.side == "SELL"]
        assert ((buys > start) & (buys < end)).all(), strategy_id
        assert (sells <= exit_).all(), strategy_id


def test_each_strategy_is_flat_at_the_end_of_every_session(run: Run) -> None:
    signed = run.fills.quantity.where(run.fills.side == "BUY", -run.fills.quantity)
    net = signed.groupby([run.fills.strategy_id, run.fills.instrument_id, run.fills.local.dt.date]).sum()
    assert (net == 0).all()


def test_a_ticker_is_traded_once_per_session_across_strategies(run: Run) -> None:
    entries = run.fills[run.fills.side == "BUY"].drop_duplicates("client_order_id")
    day = entries.local.dt.date
    assert not entries.assign(day=day).duplicated(["day", "instrument_id"]).any()
    signal_symbol = entries.tags.str.split(":").str[2]
    assert not entries.assign(day=day, signal=signal_symbol).duplicated(["day", "signal"]).any()


def test_bearish_signals_bought_only_the_mapped_inverse_etf(run: Run) -> None:
    entries = run.fills[run.fills.side == "BUY"].drop_duplicates("client_order_id")
    mode, side, signal = zip(*entries.tags.str.split(":"))
    entries = entries.assign(side_=side, signal=signal, ticker=entries.instrument_id.str.split(".").str[0])
    bearish = entries[entries.side_ == "bearish"]
    bullish = entries[entries.side_ == "bullish"]
    assert len(bearish) > 0
    assert (bearish.ticker == bearish.signal.map(INVERSE)).all()
    assert (bullish.ticker == bullish.signal).all()


def test_cash_reconciles_with_the_round_trips_to_the_cent(run: Run) -> None:
    net = sum((Decimal(str(p)) for p in run.trades["PnL"]), Decimal(0))
    cash = Decimal(run.metrics["metrics"]["engine_cash_balance"])
    assert cash == Decimal("100000") + net


def test_the_leveraged_override_is_reported_as_not_ready(run: Run) -> None:
    assert run.report.count("self_check: NOT READY for live trading") == 3
    assert "QQQ -&gt; SQQQ is a leveraged ETF" in run.report
    assert "auction-imbalance filter off (live only)" in run.report
    assert "VIX gate on: min_vix 15" in run.report


# -- the builder on the same catalog (no backtest) --------------------------------------------


def request(run: Run, strategy: str, overrides: dict[str, object]) -> BacktestRequest:
    return BacktestRequest(strategy=strategy, symbols=WATCHLIST, catalog=run.catalog, overrides=overrides, progress=False)


def test_trading_starts_after_the_average_volume_warm_up(run: Run) -> None:
    # average_volume_sessions = 20: the 21st session of the run is the first that can trade.
    days = (START + dt.timedelta(days=i) for i in range(60))
    run_sessions = [d for d in days if session_for(d) is not None]
    traded = sorted(set(run.fills.local.dt.date))
    assert traded[0] >= run_sessions[20]


def test_the_default_one_x_map_skips_the_inverse_etfs_the_catalog_lacks_and_says_so(run: Run) -> None:
    plan = plan_run(request(run, "session", {}))
    assert [str(i) for i in plan.bar_types] == ["SPY.SIM", "QQQ.SIM", "NVDA.SIM"]
    assert plan.notes == (
        "opening_range, vwap_reversion, eod_momentum: bearish signals on SPY, QQQ are skipped: the "
        "catalog has no bars for SH, PSQ, their default inverse ETF (import those bars to trade them)",
    )
    assert "SPY" not in plan.overrides["vwap_reversion"]["inverse_etfs"]
    asked = {"bearish_instrument": "inverse_etf"}
    with pytest.raises(BacktestRequestError, match=r"no 1-minute or 5-minute bars for SH \(the inverse ETF opening_range maps"):
        plan_run(request(run, "session", asked))


def test_each_strategy_runs_alone_as_one_instance_over_the_universe(run: Run) -> None:
    for name, tag in (("opening_range", "ORB"), ("vwap_reversion", "VWAP"), ("eod_momentum", "EOD")):
        config = build_run_config(request(run, name, {"bearish_instrument": "disabled"}))
        assert [s.config["order_id_tag"] for s in config.engine.strategies] == [tag]
        assert config.engine.strategies[0].config["watchlist"] == list(WATCHLIST)
    plan = plan_run(request(run, "session", {"inverse_etfs": INVERSE, "allow_leveraged_for_test": True}))
    assert list(plan.bar_types.values()) == [
        "SPY.SIM-1-MINUTE-LAST-EXTERNAL", "QQQ.SIM-1-MINUTE-LAST-EXTERNAL", "NVDA.SIM-1-MINUTE-LAST-EXTERNAL",
        "SPXS.SIM-5-MINUTE-LAST-EXTERNAL", "SQQQ.SIM-5-MINUTE-LAST-EXTERNAL", "SOXS.SIM-5-MINUTE-LAST-EXTERNAL",
    ]
    assert plan.vix_bar_type == "VIX.SIM-1-DAY-LAST-EXTERNAL"


def test_session_overrides_are_validated_per_member(run: Run) -> None:
    disabled = {"bearish_instrument": "disabled"}
    config = build_run_config(request(run, "session", disabled | {"opening_range.breakout_buffer": 0.003}))
    buffers = [s.config.get("breakout_buffer") for s in config.engine.strategies]
    assert buffers == [0.003, None, None]
    with pytest.raises(StrategyParameterError, match="--set nope: no strategy of session has a parameter 'nope'"):
        build_run_config(request(run, "session", {"nope": 1}))
    with pytest.raises(StrategyParameterError, match="'orb' is not part of session"):
        build_run_config(request(run, "session", {"orb.breakout_buffer": 0.1}))
    with pytest.raises(StrategyParameterError, match="bearish_instrument='long_put' is not yet supported"):
        build_run_config(request(run, "session", {"bearish_instrument": "long_put"}))
    with pytest.raises(StrategyParameterError, match="inverse_etfs: QQQ -> SQQQ is a leveraged ETF"):
        build_run_config(request(run, "vwap_reversion", {"inverse_etfs": INVERSE}))


def test_per_symbol_strategies_still_need_one_minute_bars(run: Run) -> None:
    bad = BacktestRequest(strategy="ma_cross", symbols=("SPXS",), catalog=run.catalog, progress=False)
    with pytest.raises(BacktestRequestError, match="has no 1-minute bars for SPXS"):
        plan_run(bad)


def test_the_risk_layer_ran_and_refused_nothing(run: Run) -> None:
    # The session specs lift the per-symbol cap to their own allocations (30% / 35%); every
    # other gate rule and the kill switch apply as configured and never had to act here.
    events = json.loads((run.out / "risk_events.json").read_text())
    assert events["enabled"] is True
    assert events["refusals_by_rule"] == {}
    assert events["kill_switch_events"] == []
