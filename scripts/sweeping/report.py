"""
The sweep's HTML page: Plotly charts with plotly.js inlined once (no CDN, opens offline).

- a heatmap of the objective over two chosen parameters (the best value over the others),
- the distribution of the objective over the finished trials,
- parallel coordinates of every parameter against the objective,
- the equity curves (at each session's close) of the top trials,
- the best configurations and the failed trials as tables.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from scripts.sweeping.record import best_results
from scripts.sweeping.space import Sweep
from scripts.sweeping.trial import FAILED
from scripts.sweeping.trial import OK
from scripts.sweeping.trial import TrialResult

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; font-size: 0.85rem; margin-bottom: 1rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }
th { background: #f4f4f4; }
td.text { text-align: left; }
"""


def _scores(results: list[TrialResult], sweep: Sweep) -> pd.DataFrame:
    rows = [
        {**r.params, "trial": r.number, "objective": sweep.objective.value(r.metrics),
         "feasible": sweep.objective.feasible(r.metrics)}
        for r in results if r.status == OK
    ]
    return pd.DataFrame(rows)


def heatmap_figure(scores: pd.DataFrame, sweep: Sweep, x: str, y: str) -> go.Figure:
    metric = sweep.objective.metric
    reduce = "max" if sweep.objective.direction == "maximize" else "min"
    table = scores.dropna(subset=["objective"]).pivot_table(index=y, columns=x, values="objective", aggfunc=reduce)
    fig = go.Figure(go.Heatmap(
        z=table.values, x=[str(v) for v in table.columns], y=[str(v) for v in table.index],
        colorscale="RdYlGn", reversescale=sweep.objective.direction == "minimize",
        text=[[f"{v:.3g}" if pd.notna(v) else "" for v in row] for row in table.values],
        texttemplate="%{text}", colorbar={"title": metric},
    ))
    fig.update_layout(title=f"{metric} by {x} and {y} ({reduce} over the other parameters; all finished trials)",
                      xaxis_title=x, yaxis_title=y, height=480)
    return fig


def distribution_figure(scores: pd.DataFrame, sweep: Sweep) -> go.Figure:
    fig = go.Figure(go.Histogram(x=scores["objective"].dropna(), nbinsx=30, name=sweep.objective.metric))
    fig.update_layout(title=f"Distribution of {sweep.objective.metric} over {len(scores)} finished trials",
                      xaxis_title=sweep.objective.metric, yaxis_title="trials", height=360)
    return fig


def parallel_figure(scores: pd.DataFrame, sweep: Sweep) -> go.Figure:
    dimensions = []
    for name in sweep.parameter_names:
        column = scores[name]
        if pd.api.types.is_numeric_dtype(column):
            dimensions.append({"label": name, "values": column})
        else:  # categorical: coded, with the values as tick labels
            categories = sorted(column.astype(str).unique())
            codes = column.astype(str).map({c: i for i, c in enumerate(categories)})
            dimensions.append({"label": name, "values": codes, "tickvals": list(range(len(categories))),
                               "ticktext": categories})
    objective = scores["objective"]
    dimensions.append({"label": sweep.objective.metric, "values": objective})
    fig = go.Figure(go.Parcoords(
        line={"color": objective, "colorscale": "RdYlGn", "showscale": True,
              "reversescale": sweep.objective.direction == "minimize"},
        dimensions=dimensions,
    ))
    fig.update_layout(title="Parameters against the objective (parallel coordinates)", height=460)
    return fig


def equity_figure(best: list[TrialResult], sweep: Sweep, title: str) -> go.Figure:
    fig = go.Figure()
    for r in best:
        series = pd.Series(r.equity)
        label = ", ".join(f"{k}={v}" for k, v in r.params.items())
        fig.add_trace(go.Scatter(x=list(series.index), y=series.values, name=f"#{r.number}: {label}",
                                 mode="lines"))
    fig.update_layout(title=title, yaxis_title="equity (USD)", height=460)
    return fig


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f"<td class='text'>{html.escape(str(c))}</td>" if isinstance(c, str) else f"<td>{html.escape(str(c))}</td>"
            for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_page(title: str, notes: list[str], sections: list[str], figures: list[go.Figure]) -> str:
    # plotly.js goes into the page once, inline, so the page works with no network.
    charts = [
        fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
        for i, fig in enumerate(figures)
    ]
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1><ul>{notes_html}</ul>"
        f"{''.join(sections)}<h2>Charts</h2>{''.join(charts)}</body></html>"
    )


def write_sweep_report(path: Path, sweep: Sweep, results: list[TrialResult],
                       heatmap: tuple[str, str] | None = None, top: int = 5) -> Path:
    scores = _scores(results, sweep)
    # Trials without the objective (e.g. no Sharpe without trades) have nothing to chart.
    scores = scores.dropna(subset=["objective"]) if not scores.empty else scores
    objective = sweep.objective
    best = best_results(results, objective, top)
    failed = [r for r in results if r.status == FAILED]
    notes = [
        f"Strategy {sweep.strategy} on {', '.join(sweep.symbols)}, {sweep.start or 'start of data'} .. "
        f"{sweep.end or 'end of data'}, starting capital {sweep.capital} USD, catalog {sweep.catalog}.",
        f"{len(results)} trials: {len(results) - len(failed)} finished, {len(failed)} failed. "
        f"Objective: {objective.direction} {objective.metric}"
        + (f"; constraints: {', '.join(str(c) for c in objective.constraints)}" if objective.constraints else "")
        + f"; {len(scores)} trial(s) have a {objective.metric}.",
        "Every figure is the run_backtest.py figure of that configuration (same builder, risk layer and metrics).",
    ]
    sections = []
    if best:
        header = ["trial", *sweep.parameter_names, objective.metric, "total_return_pct", "max_drawdown_pct", "trades"]
        rows = [[r.number, *[r.params.get(n) for n in sweep.parameter_names],
                 objective.value(r.metrics), r.metrics.get("total_return_pct"),
                 r.metrics.get("max_drawdown_pct"), r.metrics.get("trades")] for r in best]
        sections.append(f"<h2>Best configurations (feasible)</h2>{_table(header, rows)}")
    else:
        sections.append("<h2>Best configurations</h2><p>No finished trial meets the constraints.</p>")
    if failed:
        rows = [[r.number, ", ".join(f"{k}={v}" for k, v in r.params.items()), r.error or ""] for r in failed]
        sections.append(f"<h2>Failed trials</h2>{_table(['trial', 'parameters', 'error'], rows)}")
    figures = []
    if not scores.empty:
        names = sweep.parameter_names
        x, y = heatmap or ((names[0], names[1]) if len(names) >= 2 else (names[0], names[0]))
        if x != y:
            figures.append(heatmap_figure(scores, sweep, x, y))
        figures += [distribution_figure(scores, sweep), parallel_figure(scores, sweep)]
    if best:
        figures.append(equity_figure(best, sweep, f"Equity of the top {len(best)} trials (session closes)"))
    path.write_text(render_page(f"Sweep: {sweep.strategy} {', '.join(sweep.symbols)}", notes, sections, figures),
                    encoding="utf-8")
    return path
