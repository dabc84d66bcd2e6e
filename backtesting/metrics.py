"""
Performance metrics of a backtest, from the equity curve and the round trips.

Money figures (P&L, commissions, equity, expectancy) are Decimal and reconcile with the
fills; ratios (Sharpe, Sortino, Calmar) come from daily returns of the marked equity curve,
taken at each NYSE session's last bar, with a zero risk-free rate and 252 sessions a year.
"""

from __future__ import annotations

import math
from collections import Counter
from decimal import Decimal

import numpy as np
import pandas as pd

from backtesting.results import CENT
from backtesting.results import ZERO
from strategies.sessions import EXCHANGE_TZ

TRADING_DAYS = 252


def drawdown(equity: pd.Series) -> pd.Series:
    """Fraction below the running peak (0 at a new high, negative below it)."""
    return equity / equity.cummax() - 1.0


def daily_returns(equity: pd.Series) -> pd.Series:
    local_day = equity.index.tz_convert(EXCHANGE_TZ).date
    closes = equity.groupby(local_day).last()
    return closes.pct_change().dropna()


def _ratio(numerator: float, denominator: float) -> float | None:
    if denominator == 0 or math.isnan(denominator):
        return None
    return numerator / denominator


def compute_metrics(
    equity: pd.Series,
    trades: pd.DataFrame,
    fills: pd.DataFrame,
    capital: Decimal,
    final: Decimal,
    exposure_mask: pd.Series,
) -> dict[str, object]:
    """
    The report's figures. `final` is the exact final equity; `exposure_mask` marks the bars
    (of the equity curve's index) where any position was held.
    """
    days = (equity.index[-1] - equity.index[0]).total_seconds() / 86400 if len(equity) else 0
    total_return = (final / capital) - 1
    annualised = (
        (1 + float(total_return)) ** (365.25 / days) - 1 if days > 0 and total_return > -1 else None
    )
    rets = daily_returns(equity)
    sharpe = _ratio(rets.mean(), rets.std(ddof=1))
    downside = rets[rets < 0]
    downside_dev = math.sqrt((downside**2).sum() / len(rets)) if len(rets) else float("nan")
    sortino = _ratio(rets.mean(), downside_dev)
    max_dd = float(drawdown(equity).min()) if len(equity) else 0.0
    calmar = _ratio(annualised, abs(max_dd)) if annualised is not None else None

    pnl = list(trades["pnl"]) if not trades.empty else []
    wins = [p for p in pnl if p > 0]
    losses = [p for p in pnl if p <= 0]
    gross_win = sum(wins, ZERO)
    gross_loss = -sum(losses, ZERO)
    commissions = sum(fills["commission"], ZERO) if not fills.empty else ZERO
    durations = trades["duration"] if not trades.empty else pd.Series(dtype="timedelta64[ns]")

    return {
        "starting_capital": str(capital),
        "final_equity": str(final.quantize(CENT)),
        "net_profit": str((final - capital).quantize(CENT)),
        "total_return_pct": round(float(total_return) * 100, 4),
        "annualised_return_pct": round(annualised * 100, 4) if annualised is not None else None,
        "sharpe": round(sharpe * math.sqrt(TRADING_DAYS), 4) if sharpe is not None else None,
        "sortino": round(sortino * math.sqrt(TRADING_DAYS), 4) if sortino is not None else None,
        "max_drawdown_pct": round(max_dd * 100, 4),
        "calmar": round(calmar, 4) if calmar is not None else None,
        "trades": len(pnl),
        "win_rate_pct": round(len(wins) / len(pnl) * 100, 2) if pnl else None,
        "profit_factor": round(float(gross_win / gross_loss), 4) if gross_loss > 0 else None,
        "expectancy": str((sum(pnl, ZERO) / len(pnl)).quantize(CENT)) if pnl else None,
        "realised_pnl": str(sum(pnl, ZERO).quantize(CENT)),
        "average_trade_duration": str(durations.mean().round("s")) if len(durations) else None,
        "exposure_pct": round(float(np.mean(exposure_mask)) * 100, 2) if len(exposure_mask) else 0.0,
        "commissions": str(commissions.quantize(CENT)),
        "fills": len(fills),
        "sessions": len(rets) + 1 if len(equity) else 0,
        # Round trips by how they closed (strategies.records.ExitReason labels), most first.
        "exits_by_reason": dict(Counter(trades["exit_reason"]).most_common()) if not trades.empty else {},
    }
