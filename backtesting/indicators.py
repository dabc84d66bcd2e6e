"""
Indicator series for the report's panels, recomputed with the same Nautilus indicator classes
the strategies register, over bars resampled the way the engine aggregates them (right-closed,
stamped at the close).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import pandas as pd
from nautilus_trader.indicators import MovingAverageFactory
from nautilus_trader.indicators import MovingAverageType
from nautilus_trader.model.data import BarType


@dataclass
class IndicatorPanels:
    overlays: dict[str, pd.Series] = field(default_factory=dict)  # drawn on the price
    panels: dict[str, pd.Series] = field(default_factory=dict)  # drawn below it
    levels: tuple[float, ...] = ()


def bar_closes(minute_closes: pd.Series, bar_type: object) -> pd.Series:
    """Closes of the strategy's bars, aggregated from minute closes like the engine does."""
    spec = BarType.from_str(str(bar_type)).spec
    step = pd.Timedelta(spec.timedelta)
    if step <= pd.Timedelta(minutes=1):
        return minute_closes
    return minute_closes.resample(step, label="right", closed="right").last().dropna()


def _ma_cross(minute_closes: pd.Series, params: Mapping[str, Any]) -> IndicatorPanels:
    closes = bar_closes(minute_closes, params["bar_type"])
    kind = MovingAverageType[params.get("average", "EXPONENTIAL")]
    result = IndicatorPanels()
    for name, period in (("fast", params.get("fast_period", 10)), ("slow", params.get("slow_period", 30))):
        average = MovingAverageFactory.create(period, kind)
        values = []
        for close in closes.to_numpy():
            average.update_raw(float(close))
            values.append(average.value if average.initialized else float("nan"))
        result.overlays[f"{name} {kind.name.lower()} MA({period})"] = pd.Series(values, index=closes.index)
    return result


INDICATORS = {"ma_cross": _ma_cross}


def indicator_panels(strategy: str, minute_closes: pd.Series, params: Mapping[str, Any]) -> IndicatorPanels:
    compute = INDICATORS.get(strategy)
    return compute(minute_closes, params) if compute else IndicatorPanels()
