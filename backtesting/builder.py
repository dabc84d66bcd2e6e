"""
Builds the Nautilus BacktestRunConfig for a request: one simulated venue (SIM) holding one cash
account for the whole bankroll, the catalog's minute bars (and quotes where the strategy wants
them), an IB-like commission, slippage, and the strategies as ImportableStrategyConfig so the
same classes run live. run_backtest.py and the sweeps both build runs here.

The risk layer (pre-trade gate and kill switch, actors/) is on by default: the request's
RiskConfig, with the strategy spec's risk overrides on top, configures both actors and the
Nautilus RiskEngine's own limits (max notional per order, submit rate) behind them. The gate
is installed in front of the RiskEngine by run.py once the node is built (install_risk_layer).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd
from nautilus_trader.backtest.config import BacktestDataConfig
from nautilus_trader.backtest.config import BacktestEngineConfig
from nautilus_trader.backtest.config import BacktestRunConfig
from nautilus_trader.backtest.config import BacktestVenueConfig
from nautilus_trader.backtest.config import ImportableFeeModelConfig
from nautilus_trader.backtest.config import ImportableFillModelConfig
from nautilus_trader.config import ImportableActorConfig
from nautilus_trader.config import ImportableExecAlgorithmConfig
from nautilus_trader.config import ImportableStrategyConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import RiskEngineConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from backtesting.registry import StrategySpec
from backtesting.registry import Universe
from backtesting.registry import build_params
from backtesting.registry import build_universe_params
from backtesting.registry import get_spec
from backtesting.registry import risk_overrides_for
from backtesting.registry import specs_for
from backtesting.registry import split_overrides
from catalog.instruments import BACKTEST_VENUE
from catalog.instruments import backtest_instrument_id
from config.engine import data_engine_config
from config.risk import RiskConfig
from strategies.bearish import DEFAULT_INVERSE_ETFS
from strategies.sessions import EXCHANGE_TZ
from strategies.sessions import session_for

MINUTE_BARS = "1-MINUTE-LAST-EXTERNAL"
# Universe strategies also take 5-minute bars for symbols the catalog has only at 5 minutes
# (the shared sample's inverse ETFs); 1-minute bars are preferred where both exist.
FIVE_MINUTE_BARS = "5-MINUTE-LAST-EXTERNAL"
# The VIX gate reads whichever VIX bars the catalog has: minutes (the sample) or daily closes
# (the CBOE history, stamped at the session close by the importer).
VIX_BAR_TYPES = (f"VIX.{BACKTEST_VENUE}-1-MINUTE-LAST-EXTERNAL", f"VIX.{BACKTEST_VENUE}-1-DAY-LAST-EXTERNAL")


class BacktestRequestError(ValueError):
    """A request the catalog cannot serve: unknown symbol, no data in range, bad dates."""


@dataclass(frozen=True)
class BacktestRequest:
    strategy: str
    symbols: tuple[str, ...]
    catalog: Path
    start: dt.date | None = None
    end: dt.date | None = None  # inclusive
    capital: Decimal = Decimal("100000")
    overrides: dict[str, Any] = field(default_factory=dict)
    # Probability that a market or stop-market fill is one tick worse (backtesting/fills.py).
    slippage_prob: float = 1.0
    per_share_fee: Decimal = Decimal("0.005")
    min_fee: Decimal = Decimal("1.00")
    progress: bool = True
    log_level: str = "ERROR"
    log_directory: Path | None = None
    run_id: str = "backtest"
    # The risk layer's settings; None runs without the gate and the kill switch.
    risk: RiskConfig | None = RiskConfig()
    # RiskConfig fields settled by the operator (an env file's explicit keys): the strategy's
    # own risk values (its registry `risk_overrides`) do not replace them.
    risk_settled: frozenset[str] = frozenset()
    # Trade records (actors/journal.py, actors/ledger.py): a journal database URL and the
    # folder for trade_history, strategy logs and daily_summary.json; a fresh GnuCash book.
    journal_url: str | None = None
    records_dir: Path | None = None
    ledger_book: Path | None = None
    log_format: str = "csv"  # trade_history.csv or trade_history.json

    @property
    def spec(self) -> StrategySpec:
        return get_spec(self.strategy)

    @property
    def specs(self) -> list[StrategySpec]:
        return specs_for(self.strategy)

    def instrument_ids(self) -> list[InstrumentId]:
        return [backtest_instrument_id(symbol) for symbol in self.symbols]

    def risk_config(self) -> RiskConfig | None:
        """The request's risk settings with the strategy's own overrides applied."""
        if self.risk is None:
            return None
        # Parsed, not replaced, so the merged settings are validated like any other config.
        own = {k: v for k, v in risk_overrides_for(self.strategy).items() if k not in self.risk_settled}
        settings = msgspec.to_builtins(self.risk) | own
        return RiskConfig.parse(msgspec.json.encode(settings))


def risk_actor_configs(
    risk: RiskConfig,
    bar_types: list[str],
    venue: str = BACKTEST_VENUE.value,
    kill_switch_state: str | None = None,
    window_on_data_time: bool = False,
) -> list[ImportableActorConfig]:
    """
    The pre-trade gate and the kill switch (watching `venue`'s account), from one RiskConfig.
    kill_switch_state: the file the kill switch keeps its state in (live), None: none.
    window_on_data_time: the gate judges the entry window on the data's time (a live replay).
    """
    settings = msgspec.to_builtins(risk)
    return [
        ImportableActorConfig(
            actor_path="actors.pre_trade_gate:PreTradeGate",
            config_path="actors.pre_trade_gate:PreTradeGateConfig",
            config={"risk": settings, "bar_types": bar_types, "window_on_data_time": window_on_data_time},
        ),
        ImportableActorConfig(
            actor_path="actors.kill_switch:KillSwitch",
            config_path="actors.kill_switch:KillSwitchConfig",
            config={"risk": settings, "bar_types": bar_types, "venue": venue,
                    "state_path": kill_switch_state},
        ),
    ]


def fill_model_config(slippage_prob: float) -> ImportableFillModelConfig:
    """
    The simulated venue's fill rules (backtesting/fills.py: market-type orders slip, limits
    fill at their limit); the replay venue of a live paper run uses the same.
    """
    return ImportableFillModelConfig(
        fill_model_path="backtesting.fills:MarketSlippageFillModel",
        config_path="backtesting.fills:MarketSlippageFillModelConfig",
        # A fixed seed keeps runs reproducible: identical inputs give identical fills.
        config={"prob_slippage": slippage_prob, "random_seed": 42},
    )


def fee_model_config(per_share: Decimal, minimum: Decimal) -> ImportableFeeModelConfig:
    return ImportableFeeModelConfig(
        fee_model_path="backtesting.fees:PerShareFeeModel",
        config_path="backtesting.fees:PerShareFeeModelConfig",
        config={"per_share": str(per_share), "minimum": str(minimum)},
    )


def _utc_bound(date: dt.date) -> pd.Timestamp:
    """Midnight in New York at the start of a calendar date, in UTC."""
    return pd.Timestamp(dt.datetime.combine(date, dt.time(0), EXCHANGE_TZ)).tz_convert("UTC")


@dataclass(frozen=True)
class RunPlan:
    """What a request loads: the specs, their overrides, and each instrument's bar type."""

    specs: tuple[StrategySpec, ...]
    overrides: dict[str, dict[str, Any]]  # spec name -> its --set values
    bar_types: dict[InstrumentId, str]  # watchlist first, then extra instruments (inverse ETFs)
    vix_bar_type: str | None  # VIX bars, loaded for strategies with a VIX gate
    notes: tuple[str, ...] = ()  # what the run leaves out that a default would trade

    @property
    def is_universe(self) -> bool:
        return any(spec.is_universe for spec in self.specs)


def _has_bars(catalog: ParquetDataCatalog, bar_type: str) -> bool:
    return catalog.query_last_timestamp(data_cls=Bar, identifier=bar_type) is not None


def held_inverse_pairs(
    watchlist: tuple[str, ...],
    overrides: dict[str, Any],
    has_bars: Callable[[str], bool],
) -> tuple[dict[str, Any], dict[str, str]]:
    """
    A session strategy's overrides for a catalog, and the default pairs they leave out.

    Left at its default bearish setting (neither bearish_instrument nor inverse_etfs set), a
    strategy trades the default 1x inverse ETFs the catalog holds bars for: a pair whose ETF
    is missing is dropped from its map, so a bearish signal on that underlying is skipped as
    it is for one without a pair (AAPL), and the run says so (skipped_pairs_note). An explicit
    setting is used as given, and a missing ETF is refused (plan_run).
    """
    if {"bearish_instrument", "inverse_etfs"} & set(overrides):
        return overrides, {}
    missing = {u: i for u, i in DEFAULT_INVERSE_ETFS.items() if u in watchlist and not has_bars(i)}
    if not missing:
        return overrides, {}
    kept = {u: i for u, i in DEFAULT_INVERSE_ETFS.items() if u not in missing}
    return overrides | {"inverse_etfs": kept}, missing


def skipped_pairs_note(spec_names: list[str], missing: dict[str, str]) -> str:
    return (
        f"{', '.join(spec_names)}: bearish signals on {', '.join(missing)} are skipped: the "
        f"catalog has no bars for {', '.join(missing.values())}, their default inverse ETF "
        f"(import those bars to trade them)"
    )


def plan_run(request: BacktestRequest) -> RunPlan:
    specs = tuple(request.specs)
    overrides = split_overrides(request.strategy, request.overrides)
    catalog = ParquetDataCatalog(str(request.catalog))
    universe = any(spec.is_universe for spec in specs)
    choices = (MINUTE_BARS, FIVE_MINUTE_BARS) if universe else (MINUTE_BARS,)

    def bar_type_of(symbol: str) -> str | None:
        instrument_id = backtest_instrument_id(symbol)
        return next((f"{instrument_id}-{c}" for c in choices if _has_bars(catalog, f"{instrument_id}-{c}")), None)

    skipped: dict[tuple[tuple[str, str], ...], list[str]] = {}  # left-out pairs -> spec names
    wanted: dict[str, str | None] = {symbol: None for symbol in request.symbols}  # symbol -> why
    for spec in specs:
        if spec.extra_symbols is None:
            continue
        overrides[spec.name], missing = held_inverse_pairs(
            request.symbols, overrides[spec.name], lambda s: bar_type_of(s) is not None,
        )
        if missing:
            skipped.setdefault(tuple(missing.items()), []).append(spec.name)
        for extra in spec.extra_symbols(request.symbols, overrides[spec.name]):
            wanted.setdefault(extra, f"the inverse ETF {spec.name} maps a watchlist symbol to")
    bar_types: dict[InstrumentId, str] = {}
    for symbol, why in wanted.items():
        instrument_id = backtest_instrument_id(symbol)
        found = bar_type_of(symbol)
        if found is None:
            held = sorted(p.name for p in (request.catalog / "data" / "bar").glob("*"))
            kinds = "1-minute or 5-minute" if universe else "1-minute"
            reason = (
                f" ({why}; --set bearish_instrument=disabled trades no inverse ETF)" if why else ""
            )
            raise BacktestRequestError(
                f"--symbols: catalog {request.catalog} has no {kinds} bars for "
                f"{symbol}{reason} (bar type {instrument_id}-{MINUTE_BARS}); it holds: "
                f"{', '.join(held) or 'nothing'}",
            )
        bar_types[instrument_id] = found
    wants_vix = universe and any("vix_bar_type" in spec.parameter_names() for spec in specs)
    vix = next((bt for bt in VIX_BAR_TYPES if _has_bars(catalog, bt)), None) if wants_vix else None
    notes = tuple(skipped_pairs_note(names, dict(pairs)) for pairs, names in skipped.items())
    return RunPlan(specs, overrides, bar_types, vix, notes)


def data_range(request: BacktestRequest, plan: RunPlan | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The UTC range to run, clipped to what the catalog holds for every symbol."""
    plan = plan or plan_run(request)
    catalog = ParquetDataCatalog(str(request.catalog))
    firsts, lasts = [], []
    for bar_type in plan.bar_types.values():
        firsts.append(pd.Timestamp(catalog.query_first_timestamp(data_cls=Bar, identifier=bar_type)))
        lasts.append(pd.Timestamp(catalog.query_last_timestamp(data_cls=Bar, identifier=bar_type)))
    start = max(firsts)
    end = min(lasts)
    if request.start is not None:
        start = max(start, _utc_bound(request.start))
    if request.end is not None:
        end = min(end, _utc_bound(request.end + dt.timedelta(days=1)))
    if start >= end:
        raise BacktestRequestError(
            f"--start/--end: no data between {request.start or 'the start'} and "
            f"{request.end or 'the end'} for {', '.join(request.symbols)} "
            f"(the catalog covers {max(firsts).date()} .. {min(lasts).date()})",
        )
    return start, end


def quoted_instruments(request: BacktestRequest) -> list[InstrumentId]:
    """
    The requested instruments the catalog holds quotes for.

    Quotes are optional: a strategy that wants them (spec.needs_quotes) still runs on a
    bars-only catalog, and its execution falls back to bar closes; the report says so.
    """
    catalog = ParquetDataCatalog(str(request.catalog))
    return [
        instrument_id
        for instrument_id in request.instrument_ids()
        if catalog.query_first_timestamp(data_cls=QuoteTick, identifier=str(instrument_id))
        is not None
    ]


def strategy_configs_for(request: BacktestRequest, plan: RunPlan) -> list[ImportableStrategyConfig]:
    """The strategy instances a request runs (also what the live replay of the same data runs)."""
    instrument_ids = request.instrument_ids()
    configs = []
    for spec in plan.specs:
        overrides = plan.overrides[spec.name]
        if spec.is_universe:
            universe = Universe(tuple(instrument_ids), plan.bar_types, plan.vix_bar_type)
            params = [build_universe_params(spec, universe, overrides)]
        else:
            params = [build_params(spec, iid, len(instrument_ids), overrides) for iid in instrument_ids]
        configs += [
            ImportableStrategyConfig(strategy_path=spec.strategy_path, config_path=spec.config_path, config=p)
            for p in params
        ]
    return configs


def records_actors(request: BacktestRequest) -> list[ImportableActorConfig]:
    """The journal and ledger actors a request asks for (none by default: sweeps stay fast)."""
    actors = []
    if request.journal_url is not None:
        if request.records_dir is None:
            raise BacktestRequestError("records_dir: the journal needs a folder for its files")
        actors.append(
            ImportableActorConfig(
                actor_path="actors.journal:Journal",
                config_path="actors.journal:JournalConfig",
                config={
                    "mode": "backtest",
                    "database_url": request.journal_url,
                    "records_dir": str(request.records_dir),
                    "broker": "simulated",
                    "run_id": request.run_id,
                    "log_format": request.log_format,
                },
            ),
        )
    if request.ledger_book is not None:
        if request.ledger_book.exists():
            raise BacktestRequestError(
                f"--ledger: {request.ledger_book} exists; a backtest exports to a fresh book",
            )
        actors.append(
            ImportableActorConfig(
                actor_path="actors.ledger:Ledger",
                config_path="actors.ledger:LedgerConfig",
                config={"book_path": str(request.ledger_book), "broker": "simulated"},
            ),
        )
    return actors


def exec_algorithm_configs(specs: tuple[StrategySpec, ...]) -> list[ImportableExecAlgorithmConfig]:
    """The execution algorithms the strategies route through, each once (they are shared)."""
    wanted: dict[str, ImportableExecAlgorithmConfig] = {}
    for spec in specs:
        for path, config_path, config in spec.exec_algorithms:
            wanted.setdefault(
                path,
                ImportableExecAlgorithmConfig(
                    exec_algorithm_path=path, config_path=config_path, config=config,
                ),
            )
    return list(wanted.values())


def build_run_config(request: BacktestRequest, plan: RunPlan | None = None) -> BacktestRunConfig:
    if not request.symbols:
        raise BacktestRequestError("--symbols: at least one symbol is required")
    plan = plan or plan_run(request)
    instrument_ids = list(plan.bar_types)
    start, end = data_range(request, plan)
    # Load the NYSE calendar now, not on the first bar inside the timed run.
    session_for(start.date())
    strategies = strategy_configs_for(request, plan)
    # data_cls is passed as the class, not its path: in 1.231.0 BacktestDataConfig.query only
    # turns bar_types into catalog identifiers when `data_cls is Bar`, and with a path string
    # it silently loads every bar type in the catalog.
    # One query per bar type: the engine's stable sort then hands over bars of the same minute
    # in the plan's order (the request's symbols, then the instruments held for them, then
    # VIX), as the replay feed does. A single query of several bar types returns same-timestamp
    # bars in an arbitrary order, and a strategy sizing one instrument from another's last
    # close would then trade a different quantity in a backtest than in a replay of the data.
    bar_groups = [[bar_type] for bar_type in dict.fromkeys(plan.bar_types.values())]
    if plan.vix_bar_type is not None:
        bar_groups.append([plan.vix_bar_type])

    def catalog_data(data_cls: type, **selection: Any) -> BacktestDataConfig:
        return BacktestDataConfig(
            catalog_path=str(request.catalog),
            data_cls=data_cls,
            **selection,
            start_time=start.isoformat(),
            end_time=end.isoformat(),
        )

    data = [catalog_data(Bar, bar_types=bar_types) for bar_types in bar_groups]
    # Quotes are optional: instruments without them run on bars and the report says so.
    quoted = quoted_instruments(request) if any(spec.needs_quotes for spec in plan.specs) else []
    data += [catalog_data(QuoteTick, instrument_id=instrument_id) for instrument_id in quoted]
    actors = []
    risk = request.risk_config()
    if risk is not None:
        actors += risk_actor_configs(risk, list(plan.bar_types.values()))
    if request.progress:
        actors.append(
            ImportableActorConfig(
                actor_path="actors.backtest_progress:BacktestProgress",
                config_path="actors.backtest_progress:BacktestProgressConfig",
                config={
                    "start_ns": start.value,
                    "end_ns": end.value,
                    "description": f"{request.strategy} {','.join(request.symbols)}",
                },
            ),
        )
    actors.extend(records_actors(request))
    venue = BacktestVenueConfig(
        name=BACKTEST_VENUE.value,
        oms_type="NETTING",
        account_type="CASH",
        base_currency="USD",
        starting_balances=[f"{request.capital} USD"],
        fill_model=fill_model_config(request.slippage_prob),
        fee_model=fee_model_config(request.per_share_fee, request.min_fee),
    )
    logging = LoggingConfig(
        log_level=request.log_level,
        log_level_file="INFO" if request.log_directory else None,
        log_directory=str(request.log_directory) if request.log_directory else None,
        log_file_name="nautilus" if request.log_directory else None,
        log_colors=False,
    )
    engine = BacktestEngineConfig(
        trader_id="BACKTESTER-001",
        logging=logging,
        strategies=strategies,
        actors=actors,
        exec_algorithms=exec_algorithm_configs(plan.specs),
        data_engine=data_engine_config(),
        risk_engine=RiskEngineConfig(
            bypass=False,
            max_order_submit_rate=risk.max_order_submit_rate if risk else "100/00:00:01",
            max_notional_per_order=(
                {str(iid): risk.nautilus_notional_limit() for iid in instrument_ids} if risk else {}
            ),
        ),
        # Nautilus's post-run analyzer judges a cash account by its cash (PnL (total) leaves
        # out the shares held) and its positions by netting cycles: figures that contradict
        # the report's for the same questions. The report's figures are the run's only ones.
        run_analysis=False,
    )
    return BacktestRunConfig(
        venues=[venue],
        data=data,
        engine=engine,
        start=start.isoformat(),
        end=end.isoformat(),
        raise_exception=True,
        dispose_on_completion=False,
    )
