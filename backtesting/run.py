"""
Runs a backtest request through Nautilus's BacktestNode and writes its result folder:
report.html, trades.csv, trades.json, fills.csv, positions.csv, metrics.json and
risk_events.json (the gate's refusals by rule and the kill switch's events).

The steps are separate so a sweep trial runs the very same path without writing a folder:
`execute` (prepare_node, run, read out) then `measure` (metrics, trades, equity).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.config import BacktestRunConfig
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.common.config import resolve_path
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from actors.kill_switch import KillSwitch
from actors.pre_trade_gate import PreTradeGate
from actors.pre_trade_gate import install_risk_layer
from backtesting.builder import BacktestRequest
from backtesting.builder import RunPlan
from backtesting.builder import build_run_config
from backtesting.builder import plan_run
from backtesting.builder import quoted_instruments
from backtesting.indicators import indicator_panels
from backtesting.metrics import compute_metrics
from backtesting.report import price_figure
from backtesting.report import strategy_table
from backtesting.report import write_report
from backtesting.results import equity_curve
from backtesting.results import fills_frame
from backtesting.results import final_equity
from backtesting.results import load_closes
from backtesting.results import positions_over_time
from backtesting.results import round_trips
from backtesting.risk_summary import risk_actions

# What each headline figure means; the report states it, and no other figure answers the same
# question (Nautilus's analyzer, which judges a cash account by its cash, is not run).
FIGURE_DEFINITIONS = (
    "Figures: net profit is the final equity (cash plus shares held, at their last close) less "
    "the starting capital; realised P&L is the closed round trips' net P&L; Sharpe and Sortino "
    "come from daily returns of that marked equity, max drawdown from its every bar; win rate, "
    "profit factor and expectancy are per round trip. metrics.json's engine_cash_balance is "
    "the account's cash alone."
)
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
    account_balance: Decimal  # the engine's own final cash balance
    # What changed the run from what its settings alone say (the summary prints them first).
    warnings: list[str]


def new_result_dir(root: Path, strategy: str) -> Path:
    """backtest_results/<strategy>-<timestamp>/, never reusing an earlier run's folder."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate = root / f"{strategy}-{stamp}"
    n = 1
    while candidate.exists():
        n += 1
        candidate = root / f"{strategy}-{stamp}-{n}"
    return candidate


def strict_json(value: object) -> object:
    """
    `value` with every non-finite float (a ratio over no data) as None, so the files are
    strict JSON that any parser reads (Python's json writes a bare NaN otherwise).
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return value


def write_json(path: Path, value: object) -> None:
    """A result file as strict JSON; Decimals, timestamps and ids as their text."""
    path.write_text(json.dumps(strict_json(value), indent=1, default=str, allow_nan=False))


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


def trades_per_strategy(trades: pd.DataFrame, strategy_ids: list[str]) -> pd.DataFrame:
    """Round trips, winners, net P&L and commission per strategy (every strategy listed)."""
    rows = []
    for strategy_id in strategy_ids:
        mine = trades[trades["strategy_name"] == strategy_id] if not trades.empty else trades
        rows.append(
            {
                "strategy": strategy_id,
                "trades": len(mine),
                "winners": int((mine["pnl"] > 0).sum()) if len(mine) else 0,
                "net_pnl": sum(mine["pnl"], Decimal(0)).quantize(Decimal("0.01")) if len(mine) else Decimal("0.00"),
                "commission": sum(mine["commission"], Decimal(0)) if len(mine) else Decimal("0.00"),
            },
        )
    return pd.DataFrame(rows, columns=["strategy", "trades", "winners", "net_pnl", "commission"])


def _readiness_notes(engine: BacktestEngine) -> list[str]:
    """Each session strategy's self_check() at the end of the run, loudly when not ready."""
    notes = []
    for strategy in engine.trader.strategies():
        if not hasattr(strategy, "self_check"):
            continue
        report = strategy.self_check()
        state = "ready" if report.ready else "NOT READY for live trading"
        details = "; ".join([*report.problems(), *report.notes])
        notes.append(f"{report.strategy} self_check: {state}" + (f" ({details})" if details else ""))
    return notes


def _risk_events(engine: BacktestEngine, gate: PreTradeGate | None) -> dict[str, object]:
    """What the risk layer did: refusals by rule (with the latest reasons) and kill-switch events."""
    if gate is None:
        return {"enabled": False}
    by_rule: dict[str, int] = {}
    for _, _, refusal in gate.refusals:
        by_rule[refusal.rule] = by_rule.get(refusal.rule, 0) + 1
    kill_switches = [a for a in engine.trader.actors() if isinstance(a, KillSwitch)]
    denials = [
        (o.ts_last, o.events[-1].reason) for o in engine.cache.orders() if o.status == OrderStatus.DENIED
    ]
    return {
        "enabled": True,
        "summary": risk_actions(gate.controls, denials),
        "refusals_by_rule": by_rule,
        "latest_refusals": [
            {"ts": pd.Timestamp(ts, tz="UTC").isoformat(), "order": order_id, "reason": str(refusal)}
            for ts, order_id, refusal in list(gate.refusals)[-20:]
        ],
        "kill_switch_events": [asdict(e) for k in kill_switches for e in k.events],
    }


@dataclass
class PreparedRun:
    node: BacktestNode
    config: BacktestRunConfig
    plan: RunPlan
    gate: PreTradeGate | None


def prepare_node(request: BacktestRequest) -> PreparedRun:
    """
    A built BacktestNode for the request with the risk layer installed, ready to run: every
    caller (run_backtest.py, sweeps, benchmarks) runs backtests through the same path.
    """
    plan = plan_run(request)
    config = build_run_config(request, plan)
    node = BacktestNode([config])
    node.build()
    engine = node.get_engine(config.id)
    gate = install_risk_layer(engine.kernel) if request.risk is not None else None
    return PreparedRun(node, config, plan, gate)


@dataclass
class EngineRun:
    """What the engine produced for one request, read out before the node is disposed."""

    config: BacktestRunConfig
    plan: RunPlan
    fills: pd.DataFrame
    balance: Decimal  # the engine's own final cash balance
    positions: pd.DataFrame
    risk_events: dict[str, object]
    strategy_params: dict[str, dict[str, object]]
    # What strategies and execution algorithms recorded for their own report sections.
    strategy_states: list[object]
    algorithm_stats: dict[str, object]
    readiness: list[str]


@dataclass
class Measured:
    """The figures of a finished run, computed from its fills and the catalog's closes."""

    metrics: dict[str, object]
    trades: pd.DataFrame
    equity: pd.Series
    closes: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    per_strategy: pd.DataFrame | None


def execute(request: BacktestRequest, prepared: PreparedRun | None = None) -> EngineRun:
    """Run the request's node (prepare_node: risk layer installed) and read out its results."""
    prepared = prepared or prepare_node(request)
    node, config = prepared.node, prepared.config
    try:
        engine = node.get_engine(config.id)
        node.run()
        fills = fills_frame(engine)
        venue = engine.list_venues()[0]
        balance = engine.portfolio.account(venue).balance_total().as_decimal()
        positions = engine.trader.generate_positions_report()
        risk_events = _risk_events(engine, prepared.gate)
        strategy_params = {
            str(s.id): dict(s.config.dict()) for s in engine.trader.strategies()
        }
        strategy_states = [
            s.report_state() for s in engine.trader.strategies() if hasattr(s, "report_state")
        ]
        algorithm_stats = {
            str(a.id): a.stats.as_dict()
            for a in engine.trader.exec_algorithms()
            if hasattr(a, "stats")
        }
        readiness = _readiness_notes(engine)
    finally:
        node.dispose()
    return EngineRun(config, prepared.plan, fills, balance, positions, risk_events,
                     strategy_params, strategy_states, algorithm_stats, readiness)


def measure(request: BacktestRequest, run: EngineRun) -> Measured:
    """The report's metrics, round trips and equity curve of a finished run."""
    catalog = ParquetDataCatalog(str(request.catalog))
    start, end = pd.Timestamp(run.config.start), pd.Timestamp(run.config.end)
    bar_types = list(run.plan.bar_types.values())
    closes = load_closes(catalog, bar_types, start, end)
    fills = run.fills
    trades = round_trips(fills)
    last_prices = {iid: Decimal(str(closes[iid].dropna().iloc[-1])) for iid in closes.columns}
    final = final_equity(fills, last_prices, request.capital)
    equity = equity_curve(fills, closes, request.capital)
    exposure = (positions_over_time(fills, closes) != 0).any(axis=1)
    metrics = compute_metrics(equity, trades, fills, request.capital, final, exposure)
    metrics["engine_cash_balance"] = str(run.balance)
    per_strategy = None
    if run.plan.is_universe:
        per_strategy = trades_per_strategy(trades, list(run.strategy_params))
        metrics["trades_per_strategy"] = dict(zip(per_strategy["strategy"], per_strategy["trades"].map(int)))
    return Measured(metrics, trades, equity, closes, start, end, per_strategy)


def run_backtest(request: BacktestRequest, out_dir: Path) -> BacktestOutcome:
    # The request is validated (plan_run, build_run_config) before its folder exists: a run
    # refused for a bad symbol or parameter leaves nothing behind, and its retry may reuse --out.
    prepared = prepare_node(request)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = execute(request, prepared)
    measured = measure(request, run)
    plan, fills, balance = run.plan, run.fills, run.balance
    positions, risk_events, strategy_params = run.positions, run.risk_events, run.strategy_params
    strategy_states, algorithm_stats, readiness = run.strategy_states, run.algorithm_stats, run.readiness
    metrics, trades, equity, closes = measured.metrics, measured.trades, measured.equity, measured.closes
    start, end, per_strategy = measured.start, measured.end, measured.per_strategy
    unquoted = []
    if any(spec.needs_quotes for spec in plan.specs):
        quoted = set(quoted_instruments(request))
        unquoted = [iid.symbol.value for iid in request.instrument_ids() if iid not in quoted]
    extra_notes: list[str] = []
    extra_sections: list[str] = []
    extra_figures: list = []
    for spec in plan.specs:
        if spec.report_extras:
            build_extras = resolve_path(spec.report_extras)
            notes_, sections_, figures_ = build_extras(strategy_states, algorithm_stats, unquoted)
            extra_notes += notes_
            extra_sections += sections_
            extra_figures += figures_

    _trades_export(trades).to_csv(out_dir / "trades.csv", index=False)
    write_json(out_dir / "trades.json", _trades_export(trades).to_dict(orient="records"))
    fills.assign(**{c: fills[c].map(str) for c in ("quantity", "price", "commission")}).to_csv(
        out_dir / "fills.csv", index=False,
    )
    # The engine's own positions (NETTING: each closed cycle is a snapshot row) for audits.
    positions.to_csv(out_dir / "positions.csv")
    write_json(out_dir / "risk_events.json", risk_events)
    write_json(
        out_dir / "metrics.json",
        {
            "strategy": request.strategy,
            "symbols": list(request.symbols),
            "start": start.isoformat(),
            "end": end.isoformat(),
            "parameters": strategy_params,
            "metrics": metrics,
            "strategy_summaries": {st["instrument_id"]: st["summary"] for st in strategy_states},
            "execution_algorithms": algorithm_stats,
            "symbols_without_quotes": unquoted,
        },
    )
    figures = []
    for iid in closes.columns:
        params = next((p for p in strategy_params.values() if str(p.get("instrument_id")) == iid), {})
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
        "Fills: Nautilus simulated venue SIM, one cash account; market and stop-market orders "
        f"slip one tick with probability {request.slippage_prob}, limit orders fill at their "
        f"limit or better; commission {request.per_share_fee} USD per share, minimum "
        f"{request.min_fee} USD per order, at most 1% of the trade value.",
        "Round trips match sells to buys first-in first-out; P&L is net of both sides' commissions.",
        FIGURE_DEFINITIONS,
        f"Catalog: {request.catalog}",
        *extra_notes,
    ]
    sections = []
    if plan.is_universe:
        sections.append(strategy_table(per_strategy))
        notes += [
            "Instruments: " + ", ".join(f"{iid.symbol} ({bt.split('-', 1)[1]})" for iid, bt in plan.bar_types.items())
            + (f"; VIX bars {plan.vix_bar_type}" if plan.vix_bar_type else "; no VIX bars in the catalog"),
            *readiness,
        ]
    # What the risk layer did (one line per halt or reduce-only), then what the plan left out.
    warnings = [*risk_events.get("summary", []), *plan.notes]
    write_report(
        out_dir / "report.html",
        f"Backtest: {request.strategy} {', '.join(request.symbols)}",
        notes, metrics, [*figures, *extra_figures], equity, trades, [*sections, *extra_sections],
        warnings,
    )
    return BacktestOutcome(out_dir, metrics, fills, trades, equity, balance, warnings)
