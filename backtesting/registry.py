"""
The strategies run_backtest.py and the sweeps know by name, and how each is configured.

A per-symbol spec turns (instrument id, number of symbols) into one strategy config per
symbol; a universe spec turns the whole universe (watchlist plus the instruments it needs, e.g.
mapped inverse ETFs, each with the bar type the catalog holds) into one config. A composite
name (``session``) runs several universe specs together on one account. The Nautilus config
class validates every config, so a bad `--set` fails the same way a bad live config does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from typing import Any

import msgspec
from nautilus_trader.common.config import resolve_config_path
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.identifiers import InstrumentId


class StrategyParameterError(ValueError):
    """An unknown strategy parameter or a value its config class refuses. The message speaks
    run_backtest.py's language (`--set key: ...`); `detail` is the problem alone, for callers
    whose parameters come from elsewhere (the live node's settings)."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail if detail is not None else message


@dataclass(frozen=True)
class Universe:
    """What a universe strategy instance is built from."""

    watchlist: tuple[InstrumentId, ...]
    bar_types: dict[InstrumentId, str]  # every instrument loaded for it -> its bar type
    vix_bar_type: str | None = None  # the VIX index bars, where the catalog has them


@dataclass(frozen=True)
class StrategySpec:
    name: str
    strategy_path: str
    config_path: str
    summary: str
    # Per-symbol specs: default parameters for one instance trading `symbol` among `n_symbols`.
    defaults: Callable[[InstrumentId, int], dict[str, Any]] | None = None
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
    # Live, they apply only to limits the operator left at their defaults.
    risk_overrides: dict[str, Any] = field(default_factory=dict)
    # The percent of account equity one position of an instance takes, from its config: a
    # SYMBOL_CAP below it would refuse every entry, so the live plan refuses such a cap.
    symbol_share_pct: Callable[[Any], Decimal] | None = None
    # Live settings (env-file keys) the strategy's own rules set otherwise than the defaults,
    # applied where the operator left the key at its default (the operator's value holds).
    live_settings: dict[str, str] = field(default_factory=dict)
    # Universe specs: one instance for the whole universe, from these defaults.
    universe_defaults: Callable[[Universe], dict[str, Any]] | None = None
    # Universe specs: the symbols to load beyond the watchlist, given the watchlist and the
    # spec's overrides (e.g. the mapped inverse ETFs).
    extra_symbols: Callable[[tuple[str, ...], dict[str, Any]], tuple[str, ...]] | None = None
    # What run_backtest.py trades without --symbols.
    default_symbols: tuple[str, ...] = ("SPY",)

    @property
    def is_universe(self) -> bool:
        return self.universe_defaults is not None

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


def _inverse_symbols(watchlist: tuple[str, ...], overrides: dict[str, Any]) -> tuple[str, ...]:
    """The inverse ETFs a session strategy needs bars for (none unless bearish = inverse_etf)."""
    from strategies.bearish import DEFAULT_INVERSE_ETFS

    if overrides.get("bearish_instrument", "inverse_etf") != "inverse_etf":
        return ()
    mapping = overrides.get("inverse_etfs", DEFAULT_INVERSE_ETFS)
    if not isinstance(mapping, dict):
        raise StrategyParameterError(f"--set inverse_etfs: expected a JSON object, got {mapping!r}")
    return tuple(mapping[s] for s in watchlist if s in mapping)


# The session strategies' watchlist without --symbols: the sample's three stocks. They rank
# candidates across a watchlist, and on one symbol the opening-range and VWAP rules rarely fire
# (the sample's SPY alone never trades either in a year).
SESSION_WATCHLIST = ("SPY", "QQQ", "AAPL")


def _session_defaults(tag: str) -> Callable[[Universe], dict[str, Any]]:
    def defaults(universe: Universe) -> dict[str, Any]:
        return {
            "bar_types": list(universe.bar_types.values()),
            "watchlist": [iid.symbol.value for iid in universe.watchlist],
            "order_id_tag": tag,
        }

    return defaults


def _eod_defaults(universe: Universe) -> dict[str, Any]:
    params = _session_defaults("EOD")(universe)
    if universe.vix_bar_type is not None:
        params["vix_bar_type"] = universe.vix_bar_type
    return params


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
            symbol_share_pct=lambda config: Decimal(str(config.position_fraction)) * 100,
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
            # The plan buys and sells in every session: pre-market and after-hours included,
            # with no entry window (the backtest has none either).
            live_settings={"EXTENDED_HOURS": "true", "TRADING_START": "", "TRADING_END": ""},
        ),
        StrategySpec(
            name="opening_range",
            strategy_path="strategies.opening_range:OpeningRangeBreakout",
            config_path="strategies.opening_range:OpeningRangeConfig",
            summary="opening-range breakout 09:30-10:20 ET over the symbols (one instance)",
            universe_defaults=_session_defaults("ORB"),
            extra_symbols=_inverse_symbols,
            default_symbols=SESSION_WATCHLIST,
            # One candidate takes the strategy's whole 30% (the 1 -> 100% weight).
            risk_overrides={"symbol_cap_pct": "30"},
            symbol_share_pct=lambda config: config.capital_fraction * 100,
        ),
        StrategySpec(
            name="vwap_reversion",
            strategy_path="strategies.vwap_reversion:VWAPReversion",
            config_path="strategies.vwap_reversion:VWAPReversionConfig",
            summary="reversion to the session VWAP 10:30-14:30 ET, bearish via inverse ETFs",
            universe_defaults=_session_defaults("VWAP"),
            extra_symbols=_inverse_symbols,
            default_symbols=SESSION_WATCHLIST,
        ),
        StrategySpec(
            name="eod_momentum",
            strategy_path="strategies.eod_momentum:EODMomentum",
            config_path="strategies.eod_momentum:EODMomentumConfig",
            summary="end-of-day momentum or fade 14:30-15:55 ET, bearish via inverse ETFs",
            universe_defaults=_eod_defaults,
            extra_symbols=_inverse_symbols,
            default_symbols=SESSION_WATCHLIST,
            # 30-40% of capital in at most max_positions (default 2) names: 17.5% each by
            # default, up to 35% with max_positions=1.
            risk_overrides={"symbol_cap_pct": "35"},
            symbol_share_pct=lambda config: config.capital_fraction * 100 / config.max_positions,
        ),
    )
}

# Names that run several universe strategies together on one account, as they would live.
COMPOSITES: dict[str, tuple[str, ...]] = {
    "session": ("opening_range", "vwap_reversion", "eod_momentum"),
}


# A composite's risk settings: the most a member needs (the end-of-day strategy's 35%).
COMPOSITE_RISK_OVERRIDES: dict[str, dict[str, Any]] = {
    "session": {"symbol_cap_pct": "35"},
}


def risk_overrides_for(name: str) -> dict[str, Any]:
    """The RiskConfig fields a --strategy name changes from the defaults."""
    if name in COMPOSITES:
        return dict(COMPOSITE_RISK_OVERRIDES.get(name, {}))
    return dict(get_spec(name).risk_overrides)


def strategy_names() -> list[str]:
    """Every name --strategy accepts."""
    return sorted([*STRATEGIES, *COMPOSITES])


def specs_for(name: str) -> list[StrategySpec]:
    """The specs a --strategy name runs: one, or a composite's members."""
    if name in COMPOSITES:
        return [STRATEGIES[member] for member in COMPOSITES[name]]
    return [get_spec(name)]


def default_symbols(name: str) -> tuple[str, ...]:
    """The symbols a --strategy name trades when none are given (a composite: its first member's)."""
    return specs_for(name)[0].default_symbols


def split_overrides(name: str, overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """
    The overrides of each spec a name runs. In a composite, `member.key=value` sets one
    member's parameter and `key=value` every member that has `key` (at least one must).
    """
    specs = specs_for(name)
    if len(specs) == 1 and name not in COMPOSITES:
        return {specs[0].name: dict(overrides)}
    by_member: dict[str, dict[str, Any]] = {spec.name: {} for spec in specs}
    for key, value in overrides.items():
        member, dot, parameter = key.partition(".")
        if dot:
            if member not in by_member:
                raise StrategyParameterError(
                    f"--set {key}: {member!r} is not part of {name}; its strategies are "
                    f"{', '.join(by_member)}",
                )
            by_member[member][parameter] = value
            continue
        owners = [spec.name for spec in specs if key in spec.parameter_names()]
        if not owners:
            raise StrategyParameterError(f"--set {key}: no strategy of {name} has a parameter {key!r}")
        for owner in owners:
            by_member[owner][key] = value
    return by_member


def get_spec(name: str) -> StrategySpec:
    if name not in STRATEGIES:
        raise StrategyParameterError(
            f"--strategy: unknown strategy {name!r}; choose one of {', '.join(strategy_names())}",
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
    assert spec.defaults is not None, f"{spec.name} is a universe strategy"
    return _validated(spec, spec.defaults(instrument_id, n_symbols), overrides)


def build_universe_params(spec: StrategySpec, universe: Universe, overrides: dict[str, Any]) -> dict[str, Any]:
    """The validated parameters of a universe strategy's single instance."""
    assert spec.universe_defaults is not None, f"{spec.name} is a per-symbol strategy"
    return _validated(spec, spec.universe_defaults(universe), overrides)


def _validated(spec: StrategySpec, defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    known = spec.parameter_names()
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        detail = (f"{spec.name} has no parameter {unknown[0]!r}; its parameters are "
                  f"{', '.join(spec.own_parameter_names())}")
        raise StrategyParameterError(f"--set {unknown[0]}: {detail}", detail)
    params = defaults | overrides
    try:
        spec.config_class.parse(json.dumps(params))
    except msgspec.ValidationError as exc:
        # msgspec says "... - at `$.fast_period`": name the --set key it came from.
        message = str(exc)
        key = message.rsplit("$.", 1)[-1].rstrip("`") if "$." in message else None
        shown = f"{key}={overrides[key]!r}" if key in overrides else spec.name
        raise StrategyParameterError(f"--set {shown}: {message}", message) from None
    except (ValueError, TypeError) as exc:
        raise StrategyParameterError(f"--set ({spec.name}): {exc}", str(exc)) from None
    return params
