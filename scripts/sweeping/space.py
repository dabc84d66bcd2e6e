"""
The sweep file (TOML): which strategy, symbols, dates and catalog, the parameter space, the
objective, and how to search it. Every bad entry is refused with the file and the key named.

    strategy = "ma_cross"
    symbols = ["SPY"]
    start = 2024-03-26            # first session date (inclusive)
    end = 2025-04-02              # last session date (inclusive)
    catalog = "catalog"           # relative to the sweep file's folder
    capital = "100000"            # optional, USD
    slippage = 1.0                # optional, as run_backtest.py --slippage
    risk = true                   # optional; false runs without the gate (run_backtest --no-risk)

    [fixed]                       # strategy parameters held the same in every trial
    average = "EXPONENTIAL"

    [parameters]
    fast_period = { values = [5, 10, 20] }               # listed values
    slow_period = { low = 30, high = 90, step = 20 }     # low..high inclusive, every step
    position_fraction = { low = 0.5, high = 0.95 }       # continuous: random and optuna only

    [objective]
    metric = "sharpe"             # any metric of the backtest report
    direction = "maximize"
    constraints = ["max_drawdown_pct >= -10", "trades >= 5"]

    [search]
    method = "grid"               # grid, random or optuna (--search overrides)
    samples = 40                  # random: how many; optuna: trials in the study
    seed = 7

TOML was chosen over YAML: tomllib is in the standard library and dates are a native type.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import operator
import random
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from decimal import InvalidOperation
from pathlib import Path
from typing import Any

from backtesting.builder import BacktestRequest
from backtesting.registry import StrategyParameterError
from backtesting.registry import build_params
from backtesting.registry import specs_for
from backtesting.registry import split_overrides
from backtesting.registry import strategy_names
from backtesting.report import METRIC_LABELS
from catalog.instruments import ListingError
from catalog.instruments import backtest_instrument_id
from config.risk import RiskConfig

SEARCH_METHODS = ("grid", "random", "optuna")
DIRECTIONS = ("maximize", "minimize")
# Metrics that are numbers (or exact money strings) and can be an objective or a constraint.
NUMERIC_METRICS = tuple(k for k in METRIC_LABELS if k not in ("average_trade_duration", "exits_by_reason"))
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
}


class SweepFileError(ValueError):
    """A sweep file entry that cannot be used; the message names the file and the key."""

    def __init__(self, path: Path, key: str, problem: str) -> None:
        super().__init__(f"{path}: {key}: {problem}")
        self.path, self.key, self.problem = path, key, problem


@dataclass(frozen=True)
class Parameter:
    """One swept parameter: listed values, or a low..high range (stepped or continuous)."""

    name: str
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) for v in (self.low, self.high, self.step) if v is not None)

    def grid(self) -> tuple[Any, ...] | None:
        """Every value a grid visits, or None for a continuous range."""
        if self.values is not None:
            return self.values
        if self.step is None:
            return None
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        if self.is_int:
            return tuple(int(self.low + i * self.step) for i in range(count))
        # Decimal arithmetic so 0.1 steps give 0.3, not 0.30000000000000004.
        low, step = Decimal(str(self.low)), Decimal(str(self.step))
        return tuple(float(low + i * step) for i in range(count))

    def sample(self, rng: random.Random) -> Any:
        grid = self.grid()
        if grid is not None:
            return grid[rng.randrange(len(grid))]
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class Constraint:
    """`metric op bound`, e.g. max_drawdown_pct >= -10; a trial without the metric fails it."""

    metric: str
    op: str
    bound: float

    def holds(self, metrics: dict[str, Any]) -> bool:
        value = metric_value(metrics, self.metric)
        return value is not None and _OPERATORS[self.op](value, self.bound)

    def violation(self, metrics: dict[str, Any]) -> float:
        """0 when the constraint holds, else how far the metric is from the bound (> 0)."""
        if self.holds(metrics):
            return 0.0
        value = metric_value(metrics, self.metric)
        return 1.0 if value is None else max(abs(value - self.bound), 1e-9)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


@dataclass(frozen=True)
class Objective:
    metric: str = "sharpe"
    direction: str = "maximize"
    constraints: tuple[Constraint, ...] = ()

    def value(self, metrics: dict[str, Any]) -> float | None:
        return metric_value(metrics, self.metric)

    def feasible(self, metrics: dict[str, Any]) -> bool:
        return all(c.holds(metrics) for c in self.constraints)

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "maximize" else a < b


def metric_value(metrics: dict[str, Any], name: str) -> float | None:
    """A metric as a float for ranking (money strings included); None when absent."""
    value = metrics.get(name)
    if value is None:
        return None
    number = float(Decimal(value)) if isinstance(value, str) else float(value)
    return None if math.isnan(number) else number


@dataclass(frozen=True)
class Sweep:
    path: Path
    strategy: str
    symbols: tuple[str, ...]
    catalog: Path
    start: dt.date | None
    end: dt.date | None
    parameters: tuple[Parameter, ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    capital: Decimal = Decimal("100000")
    slippage: float = 1.0
    risk: bool = True
    objective: Objective = Objective()
    method: str = "grid"
    samples: int = 20
    seed: int = 0
    study_name: str = "sweep"

    @property
    def parameter_names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def request(self, params: dict[str, Any], start: dt.date | None = None,
                end: dt.date | None = None) -> BacktestRequest:
        """The backtest of one trial, built exactly as run_backtest.py builds it."""
        return BacktestRequest(
            strategy=self.strategy,
            symbols=self.symbols,
            catalog=self.catalog,
            start=start or self.start,
            end=end or self.end,
            capital=self.capital,
            overrides=self.fixed | params,
            slippage_prob=self.slippage,
            progress=False,
            risk=RiskConfig() if self.risk else None,
        )

    def grid(self) -> list[dict[str, Any]]:
        axes = []
        for p in self.parameters:
            values = p.grid()
            if values is None:
                raise SweepFileError(
                    self.path, f"parameters.{p.name}",
                    "a grid needs `values` or a `step`; a continuous range only works with "
                    "--search random or optuna",
                )
            axes.append(values)
        return [dict(zip(self.parameter_names, combo, strict=True)) for combo in itertools.product(*axes)]

    def random_samples(self) -> list[dict[str, Any]]:
        """`samples` distinct draws (fewer when the space is smaller), reproducible by `seed`."""
        rng = random.Random(self.seed)
        seen: list[dict[str, Any]] = []
        attempts = 0
        while len(seen) < self.samples and attempts < self.samples * 50:
            attempts += 1
            draw = {p.name: p.sample(rng) for p in self.parameters}
            if draw not in seen:
                seen.append(draw)
        return seen


def _require(table: dict[str, Any], key: str, path: Path, kind: type | tuple[type, ...],
             where: str = "") -> Any:
    name = f"{where}{key}"
    if key not in table:
        raise SweepFileError(path, name, "missing")
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = " or ".join(k.__name__ for k in kinds)
        raise SweepFileError(path, name, f"expected {expected}, got {value!r}")
    return value


def _parameter(name: str, entry: Any, path: Path) -> Parameter:
    key = f"parameters.{name}"
    if not isinstance(entry, dict):
        raise SweepFileError(path, key, f"expected a table such as {{ values = [...] }}, got {entry!r}")
    unknown = sorted(set(entry) - {"values", "low", "high", "step", "log"})
    if unknown:
        raise SweepFileError(path, f"{key}.{unknown[0]}", "unknown key; use values, or low/high/step/log")
    if "values" in entry:
        if set(entry) != {"values"}:
            raise SweepFileError(path, key, "give either `values` or `low`/`high`, not both")
        values = entry["values"]
        if not isinstance(values, list) or not values:
            raise SweepFileError(path, f"{key}.values", f"expected a non-empty list, got {values!r}")
        return Parameter(name, values=tuple(values))
    number = (int, float)
    low = _require(entry, "low", path, number, f"{key}.")
    high = _require(entry, "high", path, number, f"{key}.")
    step = _require(entry, "step", path, number, f"{key}.") if "step" in entry else None
    log = _require(entry, "log", path, bool, f"{key}.") if "log" in entry else False
    if high < low:
        raise SweepFileError(path, f"{key}.high", f"{high} is below low {low}")
    if step is not None and step <= 0:
        raise SweepFileError(path, f"{key}.step", f"must be positive, got {step}")
    if log and (low <= 0 or step is not None):
        raise SweepFileError(path, f"{key}.log", "a log range needs low > 0 and no step")
    return Parameter(name, low=low, high=high, step=step, log=log)


def _constraint(text: Any, path: Path, index: int) -> Constraint:
    key = f"objective.constraints[{index}]"
    parts = text.split() if isinstance(text, str) else []
    if len(parts) != 3 or parts[1] not in _OPERATORS:
        raise SweepFileError(path, key, f"expected 'metric >= number' (or <=, >, <), got {text!r}")
    metric, op, raw = parts
    if metric not in NUMERIC_METRICS:
        raise SweepFileError(path, key, f"unknown metric {metric!r}; one of {', '.join(NUMERIC_METRICS)}")
    try:
        bound = float(raw)
    except ValueError:
        raise SweepFileError(path, key, f"bound must be a number, got {raw!r}") from None
    return Constraint(metric, op, bound)


def _objective(table: Any, path: Path) -> Objective:
    if not isinstance(table, dict):
        raise SweepFileError(path, "objective", f"expected a table, got {table!r}")
    metric = table.get("metric", "sharpe")
    if metric not in NUMERIC_METRICS:
        raise SweepFileError(path, "objective.metric",
                             f"unknown metric {metric!r}; one of {', '.join(NUMERIC_METRICS)}")
    direction = table.get("direction", "maximize")
    if direction not in DIRECTIONS:
        raise SweepFileError(path, "objective.direction", f"expected maximize or minimize, got {direction!r}")
    raw = table.get("constraints", [])
    if not isinstance(raw, list):
        raise SweepFileError(path, "objective.constraints", f"expected a list of strings, got {raw!r}")
    return Objective(metric, direction, tuple(_constraint(c, path, i) for i, c in enumerate(raw)))


def _date(table: dict[str, Any], key: str, path: Path) -> dt.date | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise SweepFileError(path, key, f"expected a date such as 2024-03-26, got {value!r}")


def load_sweep(path: Path) -> Sweep:
    """Read and validate a sweep file; the strategy's config class checks every parameter."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepFileError(path, "file", "not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepFileError(path, "TOML", str(exc)) from None
    known = {"strategy", "symbols", "start", "end", "catalog", "capital", "slippage", "risk",
             "fixed", "parameters", "objective", "search", "study_name"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SweepFileError(path, unknown[0], f"unknown key; known keys: {', '.join(sorted(known))}")

    strategy = _require(data, "strategy", path, str)
    if strategy not in strategy_names():
        raise SweepFileError(path, "strategy", f"unknown strategy {strategy!r}; one of {', '.join(strategy_names())}")
    symbols = _require(data, "symbols", path, list)
    if not symbols or not all(isinstance(s, str) and s.strip() for s in symbols):
        raise SweepFileError(path, "symbols", f"expected a non-empty list of symbols, got {symbols!r}")
    for index, symbol in enumerate(symbols):
        try:
            backtest_instrument_id(symbol.strip().upper())
        except ListingError as exc:
            raise SweepFileError(path, f"symbols[{index}]", str(exc)) from None
    catalog = (path.parent / _require(data, "catalog", path, str)).expanduser().resolve()
    if not (catalog / "data").is_dir():
        raise SweepFileError(path, "catalog", f"{catalog} is not a Parquet data catalog (no data/ folder)")
    start, end = _date(data, "start", path), _date(data, "end", path)
    if start and end and start > end:
        raise SweepFileError(path, "start", f"{start} is after end {end}")
    try:
        capital = Decimal(str(data.get("capital", "100000")))
    except InvalidOperation:
        raise SweepFileError(path, "capital", f"expected an amount in USD, got {data['capital']!r}") from None
    if not capital.is_finite() or capital <= 0:
        raise SweepFileError(path, "capital", f"must be a positive amount in USD, got {data['capital']!r}")
    slippage = data.get("slippage", 1.0)
    if isinstance(slippage, bool) or not isinstance(slippage, (int, float)) or not 0 <= slippage <= 1:
        raise SweepFileError(path, "slippage", f"expected a probability 0..1, got {slippage!r}")
    risk = data.get("risk", True)
    if not isinstance(risk, bool):
        raise SweepFileError(path, "risk", f"expected true or false, got {risk!r}")

    fixed = data.get("fixed", {})
    if not isinstance(fixed, dict):
        raise SweepFileError(path, "fixed", f"expected a table of parameter = value, got {fixed!r}")
    raw_parameters = _require(data, "parameters", path, dict)
    if not raw_parameters:
        raise SweepFileError(path, "parameters", "name at least one parameter to sweep")
    parameters = tuple(_parameter(name, entry, path) for name, entry in raw_parameters.items())
    specs = specs_for(strategy)
    for name in [*fixed, *raw_parameters]:
        table = "fixed" if name in fixed else "parameters"
        if len(specs) == 1 and name not in specs[0].parameter_names():
            raise SweepFileError(path, f"{table}.{name}",
                                 f"{strategy} has no parameter {name!r}; its parameters are "
                                 f"{', '.join(specs[0].own_parameter_names())}")
        try:
            # A composite (e.g. session) takes `member.key` or a key some member has.
            split_overrides(strategy, {name: None})
        except StrategyParameterError as exc:
            raise SweepFileError(path, f"{table}.{name}", str(exc)) from None
    both = sorted(set(fixed) & set(raw_parameters))
    if both:
        raise SweepFileError(path, f"fixed.{both[0]}", "is also a swept parameter")

    search = data.get("search", {})
    if not isinstance(search, dict):
        raise SweepFileError(path, "search", f"expected a table, got {search!r}")
    method = search.get("method", "grid")
    if method not in SEARCH_METHODS:
        raise SweepFileError(path, "search.method", f"expected one of {', '.join(SEARCH_METHODS)}, got {method!r}")
    samples = search.get("samples", 20)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise SweepFileError(path, "search.samples", f"expected a positive whole number, got {samples!r}")
    seed = search.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SweepFileError(path, "search.seed", f"expected a whole number, got {seed!r}")
    study_name = data.get("study_name", path.stem)
    if not isinstance(study_name, str) or not study_name:
        raise SweepFileError(path, "study_name", f"expected a name, got {study_name!r}")

    sweep = Sweep(
        path=path,
        strategy=strategy,
        symbols=tuple(s.strip().upper() for s in symbols),
        catalog=catalog,
        start=start,
        end=end,
        parameters=parameters,
        fixed=fixed,
        capital=capital,
        slippage=float(slippage),
        risk=risk,
        objective=_objective(data.get("objective", {}), path),
        method=method,
        samples=samples,
        seed=seed,
        study_name=study_name,
    )
    _check_fixed(sweep)
    return sweep


def _check_fixed(sweep: Sweep) -> None:
    """
    The fixed values must satisfy the strategy's config classes, with each swept parameter at
    its first value (a universe strategy's run is built to check them).
    """
    probe = {p.name: (p.grid() or (p.low,))[0] for p in sweep.parameters}
    instrument_id = sweep.request({}).instrument_ids()[0]
    try:
        by_spec = split_overrides(sweep.strategy, sweep.fixed | probe)
        for spec in specs_for(sweep.strategy):
            if spec.defaults is not None:
                build_params(spec, instrument_id, len(sweep.symbols), by_spec[spec.name])
        if any(spec.is_universe for spec in specs_for(sweep.strategy)):
            # A universe strategy's config needs the catalog's instruments: build the run.
            from backtesting.builder import build_run_config

            build_run_config(sweep.request(probe))
    except StrategyParameterError as exc:
        # A problem naming a fixed value is the file's fault; other combinations are left to
        # the trials, where a refused combination is a recorded failure.
        for name in sweep.fixed:
            if name in str(exc):
                raise SweepFileError(sweep.path, f"fixed.{name}", str(exc)) from None
