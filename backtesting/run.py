"""
Runs a backtest request through Nautilus's BacktestNode and writes its result folder:
report.html, trades.csv, trades.json, fills.csv, positions.csv, metrics.json and
risk_events.json (the gate's refusals by rule and the kill switch's events).

The steps are separate so a sweep trial runs the very same path without writing a folder:
`execute` (the node, with the risk layer installed) then `measure` (metrics, trades, equity).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd
from nautilus_trader.analysis import MaxDrawdown
from nautilus_trader.backtest.config import BacktestRunConfig
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from actors.kill_switch import KillSwitch
from actors.pre_trade_gate import PreTradeGate
from actors.pre_trade_gate import install_risk_layer
from backtesting.builder import MINUTE_BARS
from backtesting.builder import BacktestRequest
from backtesting.builder import build_run_config
from backtesting.indicators import indicator_panels
from backtesting.metrics import compute_metrics
from backtesting.report import price_figure
from backtesting.report import write_report
from backtesting.results import equity_curve
from backtesting.results import fills_frame
from backtesting.results import final_equity
from backtesting.results import load_closes
from backtesting.results import positions_over_time
from backtesting.results import round_trips

TRADE_COLUMNS = ["timestamp", "strategy_name", "ticker", "side", "size", "entry_price",
                 "exit_price", "PnL", "commission", "broker", "mode", "entry_time",
                 "gross_pnl", "pnl_pct", "duration", "exit_reason"]


@dataclass
class BacktestOutcome:
    out_dir: Path
    metrics: dict[str, object]
    fills: pd.DataFrame
    trades: pd.DataFrame
    equity: pd.Series
    engine_stats: dict[str, object]
    account_balance: Decimal  # the engine's own final cash balance


def new_result_dir(root: Path, strategy: str) -> Path:
    """backtest_results/<strategy>-<timestamp>/, never reusing an earlier run's folder."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate = root / f"{strategy}-{stamp}"
    n = 1
    while candidate.exists():
        n += 1
        candidate = root / f"{strategy}-{stamp}-{n}"
    return candidate


def _trades_export(trades: pd.DataFrame) -> pd.DataFrame:
    if trades.empty:
        return pd.DataFrame(columns=TRADE_COLUMNS)
    out = pd.DataFrame(
        {
            "timestamp": trades["exit_time"].map(lambda t: t.isoformat()),
            "strategy_name": trades["strategy_name"],
            "ticker": trades["ticker"],
            "side": trades["side"],
            "size": trades["size"].map(str),
            "entry_price": trades["entry_price"].map(str),
            "exit_price": trades["exit_price"].map(str),
            "PnL": trades["pnl"].map(lambda d: str(d.quantize(Decimal("0.01")))),
            "commission": trades["commission"].map(str),
            "broker": "simulated",
            "mode": "backtest",
            "entry_time": trades["entry_time"].map(lambda t: t.isoformat()),
            "gross_pnl": trades["gross_pnl"].map(lambda d: str(d.quantize(Decimal("0.01")))),
            "pnl_pct": trades["pnl_pct"].map(str),
            "duration": trades["duration"].map(str),
            "exit_reason": trades["exit_reason"],
        },
    )
    return out[TRADE_COLUMNS]


def _engine_stats(engine: BacktestEngine) -> dict[str, object]:
    """Nautilus's own analyzer figures, with its max drawdown statistic registered."""
    analyzer = engine.portfolio.analyzer
    analyzer.register_statistic(MaxDrawdown())
    return {
        "pnls": analyzer.get_performance_stats_pnls(),
        "returns": analyzer.get_performance_stats_returns(),
        "general": analyzer.get_performance_stats_general(),
    }


def _risk_events(engine: BacktestEngine, gate: PreTradeGate | None) -> dict[str, object]:
    """What the risk layer did: refusals by rule (with the latest reasons) and kill-switch events."""
    if gate is None:
        return {"enabled": False}
    by_rule: dict[str, int] = {}
    for _, _, refusal in gate.refusals:
        by_rule[refusal.rule] = by_rule.get(refusal.rule, 0) + 1
    kill_switches = [a for a in engine.trader.actors() if isinstance(a, KillSwitch)]
    return {
        "enabled": True,
        "refusals_by_rule": by_rule,
        "latest_refusals": [
            {"ts": pd.Timestamp(ts, tz="UTC").isoformat(), "order": order_id, "reason": str(refusal)}
            for ts, order_id, refusal in list(gate.refusals)[-20:]
        ],
        "kill_switch_events": [asdict(e) for k in kill_switches for e in k.events],
    }


@dataclass
class EngineRun:
    """What the engine produced for one request, read out before the node is disposed."""

    config: BacktestRunConfig
    fills: pd.DataFrame
    balance: Decimal  # the engine's own final cash balance
    engine_stats: dict[str, object]
    positions: pd.DataFrame
    risk_events: dict[str, object]
    strategy_params: dict[str, dict[str, object]]


@dataclass
class Measured:
    """The figures of a finished run, computed from its fills and the catalog's closes."""

    metrics: dict[str, object]
    trades: pd.DataFrame
    equity: pd.Series
    closes: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp


def execute(request: BacktestRequest) -> EngineRun:
    """Build and run the request's BacktestNode (risk layer installed when configured)."""
    config = build_run_config(request)
    node = BacktestNode([config])
    try:
        node.build()
        engine = node.get_engine(config.id)
        gate = install_risk_layer(engine.kernel) if request.risk is not None else None
        node.run()
        fills = fills_frame(engine)
        venue = engine.list_venues()[0]
        balance = engine.portfolio.account(venue).balance_total().as_decimal()
        engine_stats = _engine_stats(engine)
        positions = engine.trader.generate_positions_report()
        risk_events = _risk_events(engine, gate)
        strategy_params = {
            str(s.id): dict(s.config.dict()) for s in engine.trader.strategies()
        }
    finally:
        node.dispose()
    return EngineRun(config, fills, balance, engine_stats, positions, risk_events, strategy_params)


def measure(request: BacktestRequest, run: EngineRun) -> Measured:
    """The report's metrics, round trips and equity curve of a finished run."""
    catalog = ParquetDataCatalog(str(request.catalog))
    start, end = pd.Timestamp(run.config.start), pd.Timestamp(run.config.end)
    bar_types = [f"{iid}-{MINUTE_BARS}" for iid in request.instrument_ids()]
    closes = load_closes(catalog, bar_types, start, end)
    fills = run.fills
    trades = round_trips(fills)
    last_prices = {iid: Decimal(str(closes[iid].dropna().iloc[-1])) for iid in closes.columns}
    final = final_equity(fills, last_prices, request.capital)
    equity = equity_curve(fills, closes, request.capital)
    exposure = (positions_over_time(fills, closes) != 0).any(axis=1)
    metrics = compute_metrics(equity, trades, fills, request.capital, final, exposure)
    metrics["engine_cash_balance"] = str(run.balance)
    return Measured(metrics, trades, equity, closes, start, end)


def run_backtest(request: BacktestRequest, out_dir: Path) -> BacktestOutcome:
    out_dir.mkdir(parents=True, exist_ok=True)
    run = execute(request)
    measured = measure(request, run)
    fills, balance, engine_stats = run.fills, run.balance, run.engine_stats
    positions, risk_events, strategy_params = run.positions, run.risk_events, run.strategy_params
    metrics, trades, equity, closes = measured.metrics, measured.trades, measured.equity, measured.closes
    start, end = measured.start, measured.end

    _trades_export(trades).to_csv(out_dir / "trades.csv", index=False)
    (out_dir / "trades.json").write_text(
        json.dumps(_trades_export(trades).to_dict(orient="records"), indent=1),
    )
    fills.assign(**{c: fills[c].map(str) for c in ("quantity", "price", "commission")}).to_csv(
        out_dir / "fills.csv", index=False,
    )
    # The engine's own positions (NETTING: each closed cycle is a snapshot row) for audits.
    positions.to_csv(out_dir / "positions.csv")
    (out_dir / "risk_events.json").write_text(json.dumps(risk_events, indent=1, default=str))
    (out_dir / "metrics.json").write_text(
        json.dumps(
            {
                "strategy": request.strategy,
                "symbols": list(request.symbols),
                "start": start.isoformat(),
                "end": end.isoformat(),
                "parameters": strategy_params,
                "metrics": metrics,
                "engine_stats": engine_stats,
            },
            indent=1,
            default=str,
        ),
    )
    figures = []
    for iid in closes.columns:
        params = next(p for p in strategy_params.values() if str(p.get("instrument_id")) == iid) \
            if strategy_params else {}
        panels = indicator_panels(request.strategy, closes[iid].dropna(), params)
        figures.append(
            price_figure(
                iid.split(".")[0], closes[iid].dropna(),
                fills[fills["instrument_id"] == iid] if not fills.empty else fills,
                panels.overlays, panels.panels, panels.levels,
            ),
        )
    notes = [
        f"Strategy {request.strategy} on {', '.join(request.symbols)}, "
        f"{start.date()} .. {end.date()} (UTC), starting capital {request.capital} USD.",
        "Fills: Nautilus simulated venue SIM, one cash account; market orders slip one tick "
        f"with probability {request.slippage_prob}; commission {request.per_share_fee} USD per "
        f"share, minimum {request.min_fee} USD per order, at most 1% of the trade value.",
        "Round trips match sells to buys first-in first-out; P&L is net of both sides' commissions.",
        f"Catalog: {request.catalog}",
    ]
    write_report(
        out_dir / "report.html",
        f"Backtest: {request.strategy} {', '.join(request.symbols)}",
        notes, metrics, figures, equity, trades,
    )
    return BacktestOutcome(out_dir, metrics, fills, trades, equity, engine_stats, balance)
