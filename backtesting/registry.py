"""
The strategies run_backtest.py and the sweeps know by name, and how each is configured.

A spec turns (symbol, instrument id, number of symbols) into a strategy config; the Nautilus
config class validates it, so a bad `--set` fails the same way a bad live config does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import msgspec
from nautilus_trader.common.config import resolve_config_path
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.identifiers import InstrumentId


class StrategyParameterError(ValueError):
    """An unknown strategy parameter or a value its config class refuses."""


@dataclass(frozen=True)
class StrategySpec:
    name: str
    strategy_path: str
    config_path: str
    summary: str
    # Default parameters for one instance trading `symbol` among `n_symbols`.
    defaults: Callable[[InstrumentId, int], dict[str, Any]]
    minute_source: str = "1-MINUTE-LAST-EXTERNAL"
    needs_quotes: bool = False
    indicator_panels: tuple[str, ...] = field(default_factory=tuple)
    # Execution algorithms the strategy routes orders through: (algorithm path, config path,
    # config), added to the engine once for all instances.
    exec_algorithms: tuple[tuple[str, str, dict[str, Any]], ...] = field(default_factory=tuple)
    # "module:function" building the strategy's own report notes, sections and figures from
    # what its instances and algorithms recorded (see backtesting/core_rsi_report.py).
    report_extras: str | None = None
    # RiskConfig fields this strategy needs changed from the defaults (a documented choice).
    risk_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def config_class(self) -> type:
        return resolve_config_path(self.config_path)

    def parameter_names(self) -> list[str]:
        return [f.name for f in msgspec.structs.fields(self.config_class)]

    def own_parameter_names(self) -> list[str]:
        """The strategy's own parameters, without Nautilus's StrategyConfig plumbing."""
        base = {f.name for f in msgspec.structs.fields(StrategyConfig)}
        return [name for name in self.parameter_names() if name not in base]


def _ma_cross_defaults(instrument_id: InstrumentId, n_symbols: int) -> dict[str, Any]:
    return {
        "instrument_id": str(instrument_id),
        "bar_type": f"{instrument_id}-5-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL",
        "order_id_tag": instrument_id.symbol.value,
        # Each symbol gets an equal slice so the instances never compete for the same cash.
        "position_fraction": round(0.95 / n_symbols, 6),
    }


def _noop_defaults(instrument_id: InstrumentId, n_symbols: int) -> dict[str, Any]:
    return {
        "instrument_id": str(instrument_id),
        "bar_type": f"{instrument_id}-1-MINUTE-LAST-EXTERNAL",
        "order_id_tag": instrument_id.symbol.value,
    }


def _core_rsi_defaults(instrument_id: InstrumentId, n_symbols: int) -> dict[str, Any]:
    return {
        "instrument_id": str(instrument_id),
        "bar_type": f"{instrument_id}-15-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL",
        # Where there are no quotes the bid chaser prices at the latest minute close.
        "fallback_bar_type": f"{instrument_id}-1-MINUTE-LAST-EXTERNAL",
        "order_id_tag": instrument_id.symbol.value,
    }


STRATEGIES: dict[str, StrategySpec] = {
    spec.name: spec
    for spec in (
        StrategySpec(
            name="ma_cross",
            strategy_path="strategies.ma_cross:MACross",
            config_path="strategies.ma_cross:MACrossConfig",
            summary="long-only moving-average crossover (reference strategy)",
            defaults=_ma_cross_defaults,
            indicator_panels=("fast", "slow"),
            # The reference strategy puts 95% of equity into its symbols (an equal slice each),
            # so the per-symbol cap is lifted; every other limit (risk per trade on the default
            # stop: 1.9%, open risk, volume, the kill switch) applies as configured.
            risk_overrides={"symbol_cap_pct": "100"},
        ),
        StrategySpec(
            name="noop",
            strategy_path="strategies.noop:NoOp",
            config_path="strategies.noop:NoOpConfig",
            summary="subscribes to minute bars and trades nothing (benchmark baseline)",
            defaults=_noop_defaults,
        ),
        StrategySpec(
            name="core_rsi",
            strategy_path="strategies.core_rsi:CoreRSI",
            config_path="strategies.core_rsi:CoreRSIConfig",
            summary="core-building RSI lots with bid-chasing limit orders (the user's plan)",
            defaults=_core_rsi_defaults,
            needs_quotes=True,
            exec_algorithms=(
                ("strategies.bid_chaser:BidChaser", "strategies.bid_chaser:BidChaserConfig", {}),
            ),
            report_extras="backtesting.core_rsi_report:report_extras",
        ),
    )
}


def get_spec(name: str) -> StrategySpec:
    if name not in STRATEGIES:
        raise StrategyParameterError(
            f"--strategy: unknown strategy {name!r}; choose one of {', '.join(sorted(STRATEGIES))}",
        )
    return STRATEGIES[name]


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs; values are JSON where they parse as JSON, else plain strings."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise StrategyParameterError(f"--set {pair!r}: expected key=value")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        overrides[key.strip()] = value
    return overrides


def build_params(
    spec: StrategySpec,
    instrument_id: InstrumentId,
    n_symbols: int,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """The validated parameters of one strategy instance (raises StrategyParameterError)."""
    known = spec.parameter_names()
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise StrategyParameterError(
            f"--set {unknown[0]}: {spec.name} has no parameter {unknown[0]!r}; "
            f"its parameters are {', '.join(spec.own_parameter_names())}",
        )
    params = spec.defaults(instrument_id, n_symbols) | overrides
    try:
        spec.config_class.parse(json.dumps(params))
    except msgspec.ValidationError as exc:
        # msgspec says "... - at `$.fast_period`": name the --set key it came from.
        message = str(exc)
        key = message.rsplit("$.", 1)[-1].rstrip("`") if "$." in message else None
        shown = f"{key}={overrides[key]!r}" if key in overrides else spec.name
        raise StrategyParameterError(f"--set {shown}: {message}") from None
    except (ValueError, TypeError) as exc:
        raise StrategyParameterError(f"--set ({spec.name}): {exc}") from None
    return params
