"""
The core-RSI strategy's part of the report: RSI panels with signal markers, core progress
toward its target, cycles, cost-basis reduction, realised P&L by lot kind, and how the bid
chaser fared (resubmissions, bar-close fallbacks).

It reads what the strategy and the execution algorithm recorded during the run
(`CoreRSI.report_state`, `BidChaser.stats`), so the panels show exactly the values it traded on.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from strategies.sessions import EXCHANGE_TZ


def _series(points: list[tuple[int, float]]) -> pd.Series:
    if not points:
        return pd.Series(dtype=float)
    ts, values = zip(*points, strict=True)
    return pd.Series(values, index=pd.to_datetime(list(ts), utc=True).tz_convert(EXCHANGE_TZ))


def _marker_trace(
    series: pd.Series, stamps: list[int], name: str, marker: dict[str, Any],
) -> go.Scatter:
    """The series' values at the recorded signal times, drawn as markers over its line."""
    index = pd.to_datetime(stamps, utc=True).tz_convert(EXCHANGE_TZ)
    points = series.reindex(index)
    return go.Scatter(x=points.index, y=points.values, mode="markers", name=name, marker=marker)


def rsi_figure(state: Mapping[str, Any]) -> go.Figure:
    symbol = state["instrument_id"].split(".")[0]
    intraday = _series(state["rsi_intraday"])
    weekly = _series(state["rsi_weekly"])
    fig = make_subplots(
        rows=2,
        cols=1,
        vertical_spacing=0.08,
        subplot_titles=("RSI on 15-minute bars", "RSI on NYSE weekly bars"),
    )
    fig.add_trace(
        go.Scattergl(x=intraday.index, y=intraday.values, name="RSI 15-min", line={"width": 1}),
        1,
        1,
    )
    fig.add_trace(
        _marker_trace(
            intraday, state["buy_signals"], "buy signals",
            {"symbol": "triangle-up", "size": 8, "color": "#2ca02c"},
        ),
        1,
        1,
    )
    fig.add_trace(
        go.Scatter(x=weekly.index, y=weekly.values, name="RSI weekly", mode="lines+markers"), 2, 1
    )
    fig.add_trace(
        _marker_trace(
            weekly, state["exit_crosses"], "core-exit crosses",
            {"symbol": "triangle-down", "size": 11, "color": "#d62728"},
        ),
        2,
        1,
    )
    fig.add_hline(y=state["buy_rsi"], line={"dash": "dot", "color": "grey"}, row=1, col=1)
    fig.add_hline(y=state["exit_rsi"], line={"dash": "dot", "color": "grey"}, row=2, col=1)
    fig.update_yaxes(range=[0, 100])
    fig.update_layout(title=f"{symbol}: RSI and signals (exchange time)", height=560)
    return fig


def progress_figure(states: list[Mapping[str, Any]]) -> go.Figure:
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=(
            "Core value as % of its target",
            "Cumulative core cost-basis reduction (USD)",
        ),
    )
    for state in states:
        symbol = state["instrument_id"].split(".")[0]
        progress = _series(state["core_progress"])
        if not progress.empty:
            # One point per 30 minutes keeps the page light; the step is far below a cycle.
            progress = progress.resample("30min").last().dropna()
        fig.add_trace(
            go.Scattergl(x=progress.index, y=progress.values, name=f"{symbol} core %"), 1, 1
        )
        reductions = _series(
            [(ts, float(amount)) for ts, amount in state["cost_basis_reductions"]]
        ).cumsum()
        fig.add_trace(
            go.Scatter(
                x=reductions.index,
                y=reductions.values,
                name=f"{symbol} cost-basis reduction",
                line={"shape": "hv"},
            ),
            2,
            1,
        )
    fig.add_hline(y=100, line={"dash": "dot", "color": "grey"}, row=1, col=1)
    fig.update_layout(title="Core building", height=520)
    return fig


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table class='metrics'>{body}</table>"


def summary_section(states: list[Mapping[str, Any]], chase: Mapping[str, Any] | None) -> str:
    parts = ["<h2>Core-RSI: lots, cycles and execution</h2>"]
    for state in states:
        s = state["summary"]
        realised = s["realised_by_kind"]
        rows = [
            ("Core-building cycles", str(s["cycles"])),
            ("Core shares held", s["core_shares"]),
            (
                "Core cost basis after reductions (USD)",
                s["core_cost_basis"] if Decimal(s["core_shares"]) > 0 else "no core held",
            ),
            ("Cumulative cost-basis reduction (USD)", s["cost_basis_reduction"]),
            *[
                (f"Realised P&L, {kind} lots, net (USD)", str(Decimal(v).quantize(Decimal("0.01"))))
                for kind, v in realised.items()
            ],
            ("Buy signals", str(s["buy_signals"])),
            ("Buys blocked by the symbol cap", str(s["cap_blocks"])),
            ("Weekly-RSI core-exit crosses", str(s["exit_crosses"])),
            ("Weekly rebalances that trimmed", str(len(s["rebalances"]))),
        ]
        parts.append(f"<h3>{html.escape(state['instrument_id'])}</h3>{_table(rows)}")
        if s["rebalances"]:
            items = "".join(f"<li>{html.escape(m)}</li>" for m in s["rebalances"])
            parts.append(f"<ul>{items}</ul>")
    if chase:
        rows = [
            ("Orders worked by the bid chaser", str(chase["sequences"])),
            (
                "Orders that needed a resubmission",
                f"{chase['sequences_resubmitted']} ({chase['resubmitted_fraction'] * 100:.1f}%)",
            ),
            ("Resubmissions in total", str(chase["resubmissions"])),
            ("Buys abandoned as stale", str(chase["stale"])),
            ("Prices from a quote's bid", str(chase["bid_prices"])),
            ("Prices from the bar-close fallback (no quote)", str(chase["fallback_prices"])),
            ("Child orders marked outsideRth", str(chase["extended_hours_orders"])),
        ]
        parts.append(f"<h3>Execution (BidChaser)</h3>{_table(rows)}")
    return "".join(parts)


def fallback_note(chase: Mapping[str, Any] | None, unquoted: list[str]) -> str | None:
    if not chase or not chase["fallback_prices"]:
        return None
    where = f" (no quotes in the catalog for {', '.join(unquoted)})" if unquoted else ""
    return (
        f"Bid fallback: {chase['fallback_prices']} of "
        f"{chase['fallback_prices'] + chase['bid_prices']} "
        f"buy prices came from the latest 1-minute bar close because no quote was known{where}; "
        "fills at those prices are optimistic by up to half the spread."
    )


def report_extras(
    states: list[Mapping[str, Any]],
    algorithm_stats: Mapping[str, Mapping[str, Any]],
    unquoted: list[str],
) -> tuple[list[str], list[str], list[go.Figure]]:
    """(notes, HTML sections, figures) for run.py."""
    chase = algorithm_stats.get("BidChaser")
    notes = [
        "Weekly bars end at the close of the last NYSE session of the week (the following "
        "after-hours minutes start the next week); empty 15-minute bars (no minute data) are "
        "not fed to the RSI.",
    ]
    note = fallback_note(chase, unquoted)
    if note:
        notes.append(note)
    figures = [rsi_figure(state) for state in states]
    if states:
        figures.append(progress_figure(states))
    return notes, [summary_section(states, chase)], figures
