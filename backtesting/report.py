"""
The self-contained HTML report of a backtest: Plotly charts with plotly.js inlined (no CDN),
so the file opens offline, and the trades table.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from backtesting.metrics import drawdown
from strategies.sessions import EXCHANGE_TZ

# Charts are resampled to this step so a year of minutes stays a readable, light page.
CHART_STEP = "30min"

METRIC_LABELS = {
    "starting_capital": "Starting capital (USD)",
    "final_equity": "Final equity (USD)",
    "net_profit": "Net profit (USD)",
    "total_return_pct": "Total return %",
    "annualised_return_pct": "Annualised return %",
    "sharpe": "Sharpe (daily, 252)",
    "sortino": "Sortino (daily, 252)",
    "max_drawdown_pct": "Max drawdown %",
    "calmar": "Calmar",
    "trades": "Trades",
    "win_rate_pct": "Win rate %",
    "profit_factor": "Profit factor",
    "expectancy": "Expectancy per trade (USD)",
    "realised_pnl": "Realised P&L, net (USD)",
    "average_trade_duration": "Average trade duration",
    "exposure_pct": "Exposure % (bars in a position)",
    "commissions": "Commissions (USD)",
    "fills": "Fills",
    "sessions": "Sessions",
    "exits_by_reason": "Exits by reason",
}


def metric_text(value: object) -> str:
    """A metric as the summary and the report show it ({'target': 3} -> 'target 3')."""
    if isinstance(value, dict):
        return ", ".join(f"{key} {count}" for key, count in value.items()) or "none"
    return str(value)


def _resample_last(series: pd.Series) -> pd.Series:
    return series.resample(CHART_STEP, label="right", closed="right").last().dropna()


def price_figure(
    symbol: str,
    closes: pd.Series,
    fills: pd.DataFrame,
    overlays: Mapping[str, pd.Series],
    panels: Mapping[str, pd.Series],
    panel_levels: tuple[float, ...] = (),
) -> go.Figure:
    """Price with buy/sell markers, indicator overlays, and an optional indicator panel."""
    rows = 2 if panels else 1
    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04,
        row_heights=[0.7, 0.3] if panels else [1.0],
    )
    price = _resample_last(closes).tz_convert(EXCHANGE_TZ)
    fig.add_trace(go.Scattergl(x=price.index, y=price.values, name=f"{symbol} close", line={"width": 1}), 1, 1)
    for name, series in overlays.items():
        s = _resample_last(series).tz_convert(EXCHANGE_TZ)
        fig.add_trace(go.Scattergl(x=s.index, y=s.values, name=name, line={"width": 1}), 1, 1)
    for side, colour, marker in (("BUY", "#2ca02c", "triangle-up"), ("SELL", "#d62728", "triangle-down")):
        mine = fills[fills["side"] == side] if not fills.empty else fills
        if mine.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=mine["ts_event"].dt.tz_convert(EXCHANGE_TZ),
                y=mine["price"].astype(float),
                mode="markers",
                name="entries" if side == "BUY" else "exits",
                marker={"symbol": marker, "size": 9, "color": colour},
                text=[f"{side} {q} @ {p}" for q, p in zip(mine["quantity"], mine["price"], strict=True)],
            ),
            1, 1,
        )
    for name, series in panels.items():
        s = _resample_last(series).tz_convert(EXCHANGE_TZ)
        fig.add_trace(go.Scattergl(x=s.index, y=s.values, name=name, line={"width": 1}), 2, 1)
    for level in panel_levels:
        fig.add_hline(y=level, line={"dash": "dot", "width": 1, "color": "grey"}, row=2, col=1)
    fig.update_layout(title=f"{symbol}: price, signals and indicators (exchange time)", height=520)
    return fig


def equity_figure(equity: pd.Series) -> go.Figure:
    eq = _resample_last(equity).tz_convert(EXCHANGE_TZ)
    dd = _resample_last(drawdown(equity) * 100).tz_convert(EXCHANGE_TZ)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04)
    fig.add_trace(go.Scattergl(x=eq.index, y=eq.values, name="equity (USD)"), 1, 1)
    fig.add_trace(go.Scattergl(x=dd.index, y=dd.values, name="drawdown %", fill="tozeroy"), 2, 1)
    fig.update_layout(title="Equity curve and drawdown", height=480)
    return fig


def monthly_returns(equity: pd.Series) -> pd.DataFrame:
    """Return % per calendar month (rows: years, columns: months) from month-end equity."""
    local = equity.tz_convert(EXCHANGE_TZ)
    month_end = local.groupby([local.index.year, local.index.month]).last()
    first = local.iloc[0]
    returns = (month_end / month_end.shift(1).fillna(first) - 1) * 100
    table = returns.unstack()
    table.index.name = "year"
    table.columns = [pd.Timestamp(2000, m, 1).strftime("%b") for m in table.columns]
    return table


def monthly_figure(equity: pd.Series) -> go.Figure:
    table = monthly_returns(equity)
    fig = go.Figure(
        go.Heatmap(
            z=table.to_numpy().tolist(), x=list(table.columns), y=[str(y) for y in table.index],
            colorscale="RdYlGn", zmid=0,
            text=[[f"{v:.2f}%" if pd.notna(v) else "" for v in row] for row in table.values],
            texttemplate="%{text}",
        ),
    )
    # Plotly draws no heatmap in a plot area under about 100 px: keep the margins small and
    # the height generous even for a single year.
    fig.update_layout(title="Monthly returns %", height=220 + 50 * len(table), margin={"t": 60, "b": 40})
    return fig


def _metrics_table(metrics: Mapping[str, object]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(metric_text(metrics.get(key)))}</td></tr>"
        for key, label in METRIC_LABELS.items()
        if key in metrics
    )
    return f"<table class='metrics'>{rows}</table>"


def _trades_table(trades: pd.DataFrame, limit: int = 2000) -> str:
    if trades.empty:
        return "<p>No round-trip trades.</p>"
    columns = ["entry_time", "exit_time", "strategy_name", "ticker", "size", "entry_price",
               "exit_price", "gross_pnl", "commission", "pnl", "pnl_pct", "duration", "exit_reason"]
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = []
    for row in trades[columns].head(limit).itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, pd.Timestamp):
                value = value.tz_convert(EXCHANGE_TZ).strftime("%Y-%m-%d %H:%M")
            cells.append(f"<td>{html.escape(str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note = f"<p>First {limit} of {len(trades)} trades; all are in trades.csv.</p>" if len(trades) > limit else ""
    return f"{note}<table class='trades'><tr>{head}</tr>{''.join(body)}</table>"


def strategy_table(per_strategy: pd.DataFrame) -> str:
    """The trades of each strategy in a run of several (round trips, winners, net P&L)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in per_strategy.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in per_strategy.itertuples(index=False)
    )
    return f"<h2>Trades per strategy</h2><table class='trades per-strategy'><tr>{head}</tr>{body}</table>"


def write_report(
    path: Path,
    title: str,
    notes: list[str],
    metrics: Mapping[str, object],
    price_figures: list[go.Figure],
    equity: pd.Series,
    trades: pd.DataFrame,
    extra_sections: list[str] | None = None,
    warnings: list[str] | None = None,
) -> Path:
    """The self-contained HTML report; `warnings` (what changed the run) come first."""
    figures = [*price_figures, equity_figure(equity), monthly_figure(equity)]
    # plotly.js goes into the page once, inline, so the report works with no network.
    charts = [
        fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
        for i, fig in enumerate(figures)
    ]
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    warnings_html = "".join(f"<li>{html.escape(w)}</li>" for w in warnings or [])
    if warnings_html:
        warnings_html = f"<div class='warnings'><h2>Read first</h2><ul>{warnings_html}</ul></div>"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }}
table.metrics th {{ text-align: left; background: #f4f4f4; }}
table.trades th {{ background: #f4f4f4; position: sticky; top: 0; }}
div.warnings {{ border-left: 4px solid #c60; background: #fff4e5; padding: 0.1rem 1rem; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{warnings_html}
<ul>{notes_html}</ul>
<h2>Summary</h2>{_metrics_table(metrics)}
{''.join(extra_sections or [])}
<h2>Charts</h2>{''.join(charts)}
<h2>Trades</h2>{_trades_table(trades)}
</body></html>"""
    path.write_text(page, encoding="utf-8")
    return path
