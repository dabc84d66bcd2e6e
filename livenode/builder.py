"""
Builds the TradingNodeConfig of a live run from validated Settings.

Shared with the backtest builder: the strategy registry (same strategy classes and default
parameters), the risk actors (backtesting.builder.risk_actor_configs), the data engine
settings (config/engine.py) and, for the replay venue, the very fill and fee models a backtest
uses, so a replayed day fills like a backtest of that day.

Brokers:
- ib: the Interactive Brokers data and execution clients (convert_exchange_to_mic_venue, so
  instrument ids are the catalog's live ids, SPY.ARCX), the market-data-type setting.
- replay: adapters/replay's data client over a catalog and the sandbox execution client on the
  catalog's venue SIM.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd
from nautilus_trader.config import CacheConfig
from nautilus_trader.config import DatabaseConfig
from nautilus_trader.config import ImportableActorConfig
from nautilus_trader.config import ImportableExecAlgorithmConfig
from nautilus_trader.config import ImportableStrategyConfig
from nautilus_trader.config import LiveExecEngineConfig
from nautilus_trader.config import LiveRiskEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import TradingNodeConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from actors.ledger import ledger_config_for
from adapters.replay.config import REPLAY_CLIENT_ID
from adapters.replay.config import ReplayDataClientConfig
from adapters.replay.config import ReplayExecClientConfig
from backtesting.builder import MINUTE_BARS
from backtesting.builder import BacktestRequest
from backtesting.builder import BacktestRequestError
from backtesting.builder import exec_algorithm_configs
from backtesting.builder import plan_run
from backtesting.builder import strategy_configs_for
from backtesting.builder import fee_model_config
from backtesting.builder import fill_model_config
from backtesting.builder import risk_actor_configs
from backtesting.registry import StrategyParameterError
from backtesting.registry import Universe
from backtesting.registry import build_params
from backtesting.registry import build_universe_params
from backtesting.registry import risk_overrides_for
from backtesting.registry import specs_for
from backtesting.registry import strategy_names
from catalog.instruments import BACKTEST_VENUE
from catalog.instruments import backtest_instrument_id
from catalog.instruments import live_instrument_id
from catalog.store import DEFAULT_CATALOG
from config.engine import live_data_engine_config
from config.risk import RiskConfig
from config.settings import KEYS
from config.settings import Key
from config.settings import SCHEMA
from config.settings import Settings
from strategies.sessions import EXCHANGE_TZ

IB_CLIENT = "IB"
# Nautilus's IB factory names the account "<client name>-<account id>", so the account's
# venue (what the kill switch asks the portfolio for) is the client name.
IB_ACCOUNT_VENUE = IB_CLIENT


class LivePlanError(ValueError):
    """Settings that validate but cannot be served (no data for the replay day, ...)."""


@dataclass(frozen=True)
class LivePlan:
    """What a live run trades and where its state lives, resolved from the settings."""

    settings: Settings
    state_dir: Path
    catalog: Path | None  # replay only
    # Every instrument the run loads (watchlist first, then extras such as inverse ETFs) and
    # its source bar type; the gate, the kill switch and the watchdog watch these.
    bar_types: dict[InstrumentId, str] = field(default_factory=dict)
    vix_bar_type: str | None = None
    strategies: tuple[ImportableStrategyConfig, ...] = ()
    exec_algorithms: tuple[ImportableExecAlgorithmConfig, ...] = ()
    replay_start: pd.Timestamp | None = None
    replay_end: pd.Timestamp | None = None
    # A restarted replay (CACHE_BACKEND=redis): the data time the previous run stopped at.
    replay_resume_ns: int | None = None
    # Things the operator should know about the plan, printed at start.
    notes: tuple[str, ...] = ()
    # Backtest-equivalent fill rules of the replay venue.
    slippage_prob: float = 1.0
    per_share_fee: Decimal = Decimal("0.005")
    min_fee: Decimal = Decimal("1.00")

    @property
    def replay(self) -> bool:
        return self.settings.broker == "replay"

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.settings["SYMBOLS"]

    def instrument_ids(self) -> list[InstrumentId]:
        return list(self.bar_types)

    @property
    def broker_name(self) -> str:
        """Written into the journal and the ledger: "simulated" like a backtest, or "ib"."""
        return "simulated" if self.replay else "ib"

    @property
    def account_venue(self) -> str:
        return BACKTEST_VENUE.value if self.replay else IB_ACCOUNT_VENUE

    def source_bar_types(self) -> list[str]:
        return list(dict.fromkeys(self.bar_types.values()))

    def risk_overrides(self) -> tuple[RiskOverride, ...]:
        """Each strategy's own value for a risk limit, and whether the operator's holds."""
        return risk_overrides(self.settings)

    def risk_config(self) -> RiskConfig:
        """The settings' limits with the strategies' own values on the limits the operator
        left at their defaults (an explicit setting always holds)."""
        risk = self.settings.risk_config()
        in_force = {o.field: o.value for o in self.risk_overrides() if o.in_force}
        if not in_force:
            return risk
        return RiskConfig.parse(msgspec.json.encode(msgspec.to_builtins(risk) | in_force))

    def risk_limits(self) -> list[dict[str, str]]:
        """Every risk limit in force and where it comes from, for the start-up log and the
        dashboard."""
        risk = self.risk_config()
        taken = {o.field: o for o in self.risk_overrides() if o.in_force}
        limits = []
        for key in SCHEMA:
            if key.risk_field is None:
                continue
            value = getattr(risk, key.risk_field)
            origin = (f"{taken[key.risk_field].strategy}'s own value"
                      if key.risk_field in taken else self.settings.source_of(key.name))
            limits.append({"key": key.name, "value": _as_written(key, value), "from": origin})
        return limits


def _as_written(key: Key, value: Any) -> str:
    """A limit as the env file writes it (5%, true, 09:30)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    text = f"{value.normalize():f}" if isinstance(value, Decimal) else str(value)
    return f"{text}%" if key.form.startswith("percent") else text


@dataclass(frozen=True)
class RiskOverride:
    """A strategy's own value for a risk limit (`risk_overrides` of its registry entry): in
    force where the operator left the key at its default, otherwise the operator's holds."""

    key: str  # the settings key, e.g. SYMBOL_CAP
    field: str  # the RiskConfig field, e.g. symbol_cap_pct
    strategy: str  # the STRATEGIES entry asking for it
    value: str
    operator_source: str | None  # file:line of the operator's explicit setting, or None

    @property
    def in_force(self) -> bool:
        return self.operator_source is None

    def note(self, settings: Settings) -> str:
        value = f"{self.value}%" if KEYS[self.key].form.startswith("percent") else self.value
        if self.in_force:
            return (f"{self.key} is {value} for {self.strategy} (the strategy's own value; "
                    f"the default is {KEYS[self.key].default}); set {self.key} to hold another limit")
        return (f"{self.key}={settings[self.key]} ({self.operator_source}) holds; {self.strategy}'s "
                f"own value {value} is not applied")


def risk_overrides(settings: Settings) -> tuple[RiskOverride, ...]:
    fields = {key.risk_field: key.name for key in SCHEMA if key.risk_field}
    overrides = []
    for name in settings.strategies:
        for field_name, value in risk_overrides_for(name).items():
            key = fields[field_name]
            source = settings.source_of(key) if settings.explicitly_set(key) else None
            overrides.append(RiskOverride(key, field_name, name, str(value), source))
    return tuple(overrides)


def check_symbol_caps(settings: Settings, configs: list[ImportableStrategyConfig]) -> None:
    """
    An explicit SYMBOL_CAP below what one position of a strategy takes would refuse every entry
    that strategy makes: refuse it at start, naming both.
    """
    if not settings.explicitly_set("SYMBOL_CAP"):
        return
    cap = settings["SYMBOL_CAP"]
    specs = {spec.strategy_path: (name, spec) for name in settings.strategies for spec in specs_for(name)}
    for config in configs:
        name, spec = specs[config.strategy_path]
        if spec.symbol_share_pct is None:
            continue
        share = spec.symbol_share_pct(spec.config_class.parse(msgspec.json.encode(config.config)))
        if share > cap:
            raise LivePlanError(
                f"SYMBOL_CAP={cap} ({settings.source_of('SYMBOL_CAP')}): {name} ({spec.name}) puts "
                f"{share.normalize():f}% of equity into one position, so the pre-trade gate would "
                f"refuse every entry it makes; set SYMBOL_CAP to at least {share.normalize():f}, "
                f"or remove it to take {name}'s own value",
            )


def _ny_midnight(date: dt.date) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.combine(date, dt.time(0), EXCHANGE_TZ)).tz_convert("UTC")


def replay_window(settings: Settings, catalog: Path) -> tuple[pd.Timestamp, pd.Timestamp]:
    """REPLAY_START..REPLAY_END as UTC bounds (New York midnights); default the last day held."""
    reader = ParquetDataCatalog(str(catalog))
    lasts = []
    for symbol in settings["SYMBOLS"]:
        bar_type = f"{backtest_instrument_id(symbol)}-{MINUTE_BARS}"
        last = reader.query_last_timestamp(data_cls=Bar, identifier=bar_type)
        if last is None:
            raise LivePlanError(
                f"SYMBOLS: catalog {catalog} has no 1-minute bars for {symbol} ({bar_type})",
            )
        lasts.append(pd.Timestamp(last))
    start_date = settings["REPLAY_START"] or min(lasts).tz_convert(EXCHANGE_TZ).date()
    end_date = settings["REPLAY_END"] or start_date
    return _ny_midnight(start_date), _ny_midnight(end_date + dt.timedelta(days=1))


def keeps_state(settings: Settings) -> bool:
    """Whether state files carry over restarts: always with IB (the account lives on), with
    the replay only on the Redis cache (a memory-cache replay starts every day afresh); never
    in a dry run."""
    restartable = settings.broker == "ib" or settings["CACHE_BACKEND"] == "redis"
    return restartable and settings.mode != "dry-run"


def strategy_overrides(settings: Settings, name: str) -> dict[str, Any]:
    """
    The settings that map onto strategy parameters, for the strategies of `name` that have
    them: BEARISH_INSTRUMENT -> bearish_instrument, VIX_MIN -> min_vix, ALLOCATION x the
    strategy's weight -> capital_fraction when ALLOCATION or WEIGHTS is set explicitly, lots
    kept by the journal (persist_lots) where state survives restarts: always with IB, with the
    replay only on the Redis cache (a memory-cache replay starts every day afresh), and
    WARMUP_DAYS -> warmup_days with IB (its historical bars; the replay client has none).
    """
    parameters = {p for spec in specs_for(name) for p in spec.parameter_names()}
    overrides: dict[str, Any] = {}
    if "persist_lots" in parameters and keeps_state(settings):
        if not settings["JOURNAL"]:
            raise LivePlanError(
                f"STRATEGIES ({name}): its lots are kept by the trade journal across restarts, "
                "and JOURNAL is false; set JOURNAL=true",
            )
        overrides["persist_lots"] = True
    if "warmup_days" in parameters and settings.broker == "ib":
        overrides["warmup_days"] = settings["WARMUP_DAYS"]
    if "bearish_instrument" in parameters:
        overrides["bearish_instrument"] = settings["BEARISH_INSTRUMENT"]
    if "min_vix" in parameters and settings["VIX_MIN"] is not None:
        overrides["min_vix"] = str(settings["VIX_MIN"])
    if "capital_fraction" in parameters and (
        settings.explicitly_set("ALLOCATION") or settings.explicitly_set("WEIGHTS")
    ):
        overrides["capital_fraction"] = str(settings.strategy_weights()[name])
    return overrides


def _replay_strategies(
    settings: Settings, catalog: Path, start: pd.Timestamp,
) -> tuple[dict[InstrumentId, str], str | None, list[ImportableStrategyConfig]]:
    """
    The backtest's own planning for each strategy of the sequence (same instruments, bar
    types and strategy configs as run_backtest.py over the same catalog), merged.
    """
    bar_types: dict[InstrumentId, str] = {}
    vix: str | None = None
    configs: list[ImportableStrategyConfig] = []
    for name in settings.strategies:
        request = BacktestRequest(
            strategy=name, symbols=settings["SYMBOLS"], catalog=catalog,
            start=start.tz_convert(EXCHANGE_TZ).date(), progress=False,
            overrides=strategy_overrides(settings, name),
        )
        try:
            run_plan = plan_run(request)
            configs += strategy_configs_for(request, run_plan)
        except (BacktestRequestError, StrategyParameterError) as exc:
            raise LivePlanError(f"STRATEGIES ({name}): {_explain(request.overrides, exc)}") from None
        for instrument_id, bar_type in run_plan.bar_types.items():
            bar_types.setdefault(instrument_id, bar_type)
        vix = vix or run_plan.vix_bar_type
    return bar_types, vix, configs


def _live_strategies(
    settings: Settings,
) -> tuple[dict[InstrumentId, str], list[ImportableStrategyConfig]]:
    """The registry's defaults on the live instrument ids (SPY.ARCX), 1-minute bars."""
    watchlist = tuple(live_instrument_id(symbol) for symbol in settings["SYMBOLS"])
    bar_types = {iid: f"{iid}-{MINUTE_BARS}" for iid in watchlist}
    configs = []
    for name in settings.strategies:
        mapped = strategy_overrides(settings, name)
        try:
            configs += _live_strategy_configs(name, mapped, watchlist, bar_types)
        except StrategyParameterError as exc:
            raise LivePlanError(f"STRATEGIES ({name}): {_explain(mapped, exc)}") from None
    return bar_types, configs


def claim_broker_orders(
    configs: list[ImportableStrategyConfig],
) -> tuple[list[ImportableStrategyConfig], list[str]]:
    """
    Give each instrument traded by exactly one strategy to that strategy as its Nautilus
    external order claim: after a restart on an empty cache the node rebuilds orders and
    positions from the broker's reports, and without a claim they belong to no strategy
    (EXTERNAL), so nothing would manage the position or its resting orders. An instrument
    traded by several strategies cannot be given to one of them: it stays unclaimed, and a
    note says so.
    """
    owners: dict[str, list[int]] = {}
    for index, config in enumerate(configs):
        if "instrument_id" in config.config:
            owners.setdefault(str(config.config["instrument_id"]), []).append(index)
    claimed = list(configs)
    notes = []
    for instrument_id, indexes in owners.items():
        if len(indexes) > 1:
            names = ", ".join(configs[i].strategy_path.rsplit(":", 1)[-1] for i in indexes)
            notes.append(
                f"{instrument_id} is traded by {len(indexes)} strategies ({names}): orders and "
                "positions found at the broker after a restart stay EXTERNAL, unmanaged"
            )
            continue
        [index] = indexes
        config = configs[index]
        claimed[index] = ImportableStrategyConfig(
            strategy_path=config.strategy_path,
            config_path=config.config_path,
            config=config.config | {"external_order_claims": [instrument_id]},
        )
    return claimed, notes


def _explain(mapped: dict[str, Any], exc: Exception) -> str:
    """Name the settings a refused strategy parameter came from, in the settings' words."""
    sources = {"capital_fraction": "ALLOCATION x WEIGHTS", "bearish_instrument": "BEARISH_INSTRUMENT",
               "min_vix": "VIX_MIN"}
    detail = exc.detail if isinstance(exc, StrategyParameterError) else str(exc)
    named = [f"{sources[k]} -> {k} {mapped[k]}" for k in mapped if k in detail and k in sources]
    return f"{'; '.join(named)}: {detail}" if named else detail


def _live_strategy_configs(
    name: str,
    mapped: dict[str, Any],
    watchlist: tuple[InstrumentId, ...],
    bar_types: dict[InstrumentId, str],
) -> list[ImportableStrategyConfig]:
    """One sequence entry's strategies; `bar_types` gains the extra instruments they load."""
    symbols = tuple(iid.symbol.value for iid in watchlist)
    configs = []
    for spec in specs_for(name):
        overrides = {k: v for k, v in mapped.items() if k in spec.parameter_names()}
        if spec.is_universe:
            extras = spec.extra_symbols(symbols, overrides) if spec.extra_symbols else ()
            for extra in extras:
                iid = live_instrument_id(extra)
                bar_types.setdefault(iid, f"{iid}-{MINUTE_BARS}")
            params = [build_universe_params(spec, Universe(watchlist, dict(bar_types)), overrides)]
        else:
            params = [build_params(spec, iid, len(watchlist), overrides) for iid in watchlist]
        configs += [
            ImportableStrategyConfig(strategy_path=spec.strategy_path,
                                     config_path=spec.config_path, config=p)
            for p in params
        ]
    return configs


def with_strategy_settings(settings: Settings) -> tuple[Settings, list[str]]:
    """
    The settings with each strategy's own live settings (`live_settings` of its registry entry)
    on the keys the operator left at their defaults, and a note for each: applied, or not
    applied because the operator's value holds. Two strategies asking different values of one
    key is a start-up error.
    """
    wanted: dict[str, tuple[str, str]] = {}
    for name in settings.strategies:
        for spec in specs_for(name):
            for key, raw in spec.live_settings.items():
                if key in wanted and wanted[key][1] != raw:
                    raise LivePlanError(
                        f"STRATEGIES: {wanted[key][0]} sets {key}={wanted[key][1]!r} and {spec.name} "
                        f"{key}={raw!r}; set {key} explicitly to choose",
                    )
                wanted[key] = (spec.name, raw)
    values, sources, notes = dict(settings.values), dict(settings.sources), []
    for key, (name, raw) in wanted.items():
        shown = raw or "(empty)"
        if settings.explicitly_set(key):
            if settings[key] == KEYS[key].parse(raw):
                continue  # the operator wrote the strategy's own value
            notes.append(f"{key}={_as_written(KEYS[key], settings[key]) or '(empty)'} ({settings.source_of(key)}) "
                         f"holds; {name}'s own value {shown} is not applied")
            continue
        values[key] = KEYS[key].parse(raw)
        sources[key] = f"{name}'s own value"
        notes.append(f"{key} is {shown} for {name} (the strategy's own value; the default is "
                     f"{KEYS[key].default or '(empty)'}); set {key} to hold another value")
    return Settings(values, sources), notes


def settled_risk_fields(settings: Settings) -> frozenset[str]:
    """The RiskConfig fields the env file sets explicitly (a strategy's own value never
    replaces them)."""
    return frozenset(key.risk_field for key in SCHEMA
                     if key.risk_field and settings.explicitly_set(key.name))


def make_plan(settings: Settings, state_dir: Path | None = None, catalog: Path | None = None) -> LivePlan:
    settings, settings_notes = with_strategy_settings(settings)
    state = state_dir or settings["STATE_DIR"]
    algorithms = tuple(exec_algorithm_configs(
        tuple(spec for name in settings.strategies for spec in specs_for(name)),
    ))
    if settings["CACHE_BACKEND"] == "redis":
        check_redis(settings["REDIS_HOST"], settings["REDIS_PORT"])
    risk_notes = settings_notes + [override.note(settings) for override in risk_overrides(settings)]
    if settings.broker != "replay":
        bar_types, configs = _live_strategies(settings)
        check_symbol_caps(settings, configs)
        configs, notes = claim_broker_orders(configs)
        return LivePlan(settings=settings, state_dir=state, catalog=None, bar_types=bar_types,
                        strategies=tuple(configs), exec_algorithms=algorithms,
                        notes=tuple(risk_notes + notes))
    if not keeps_state(settings) and settings.mode != "dry-run":
        refuse_earlier_records(settings, state)
    catalog = catalog or settings["REPLAY_CATALOG"] or DEFAULT_CATALOG
    start, end = replay_window(settings, catalog)
    bar_types, vix, configs = _replay_strategies(settings, catalog, start)
    check_symbol_caps(settings, configs)
    resume = None
    if settings["CACHE_BACKEND"] == "redis":
        resume = replay_resume_point(state, catalog, start, end)
    return LivePlan(settings=settings, state_dir=state, catalog=catalog, bar_types=bar_types,
                    vix_bar_type=vix, strategies=tuple(configs), exec_algorithms=algorithms,
                    replay_start=start, replay_end=end, replay_resume_ns=resume,
                    notes=tuple(risk_notes))


REPLAY_STATE_FILE = "replay_state.json"


def refuse_earlier_records(settings: Settings, state_dir: Path) -> None:
    """
    A replay on the memory cache starts a fresh simulated account: records an earlier run left
    in STATE_DIR (journal, GnuCash book, trade history) would keep that run's shares and cash,
    and the books would no longer reconcile. Refused rather than mixed.
    """
    mode = settings.mode
    names = [f"trade_history.{settings['LOG_FORMAT']}", f"gnu_{mode}.gnucash"]
    if not settings["JOURNAL_URL"]:
        names.append(f"journal_{mode}.sqlite")
    found = [name for name in names if (state_dir / name).exists()]
    if found:
        raise LivePlanError(
            f"STATE_DIR {state_dir} holds the records of an earlier {mode} run ({', '.join(found)}); "
            "a replay with CACHE_BACKEND=memory starts a fresh account, so its books could not "
            "continue them: use a new STATE_DIR, move those files aside, or set "
            "CACHE_BACKEND=redis to continue the same account",
        )


def replay_resume_point(state_dir: Path, catalog: Path, start: pd.Timestamp, end: pd.Timestamp) -> int | None:
    """Where an interrupted replay of the same catalog and window stopped, if one did."""
    import json

    path = state_dir / REPLAY_STATE_FILE
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    same = (saved.get("catalog"), saved.get("start"), saved.get("end")) == (
        str(catalog), start.isoformat(), end.isoformat(),
    )
    return int(saved["last_ts"]) if same and saved.get("last_ts") is not None else None


def write_replay_state(
    plan: LivePlan, last_ts: int | None, finished: bool,
) -> None:
    """
    Where the replay stands, durable at once (temp file, fsync, os.replace): last_ts is the
    latest data time the node may have acted on, so a restart after any stop, SIGKILL
    included, replays up to it with trading held and sends none of its orders again.
    """
    import json
    import os

    path = plan.state_dir / REPLAY_STATE_FILE
    if finished or last_ts is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as out:
        json.dump({
            "catalog": str(plan.catalog), "start": plan.replay_start.isoformat(),
            "end": plan.replay_end.isoformat(), "last_ts": last_ts,
        }, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def actor_configs(plan: LivePlan) -> list[ImportableActorConfig]:
    """The risk layer (gate, kill switch, watchdog, error monitor) and e-mail alerts."""
    settings = plan.settings
    risk = plan.risk_config()
    bar_types = plan.source_bar_types()
    kill_switch_state = (
        str(plan.state_dir / f"kill_switch_{settings.mode}.json") if keeps_state(settings) else None
    )
    # A replay's clock is the wall clock but its sessions are the data's: the window follows the data.
    actors = risk_actor_configs(risk, bar_types, plan.account_venue, kill_switch_state,
                                window_on_data_time=plan.replay)
    actors.append(ImportableActorConfig(
        actor_path="actors.watchdog:Watchdog",
        config_path="actors.watchdog:WatchdogConfig",
        config={
            "bar_types": bar_types,
            "heartbeat_s": settings["HEARTBEAT_SECONDS"],
            "broker_grace_s": settings["BROKER_GRACE_SECONDS"],
        },
    ))
    actors.append(ImportableActorConfig(
        actor_path="actors.error_monitor:ErrorMonitor",
        config_path="actors.error_monitor:ErrorMonitorConfig",
        config={
            "risk": msgspec.to_builtins(risk),
            "log_path": str(plan.state_dir / "unresolved_orders.log"),
        },
    ))
    actors += records_actor_configs(plan)
    if settings["NOTIFY_EMAIL"]:
        password = settings["SMTP_PASSWORD"]
        actors.append(ImportableActorConfig(
            actor_path="actors.email_alerts:EmailAlerts",
            config_path="actors.email_alerts:EmailAlertsConfig",
            config={
                "host": settings["SMTP_HOST"],
                "port": settings["SMTP_PORT"],
                "sender": settings["SMTP_SENDER"],
                "recipients": list(settings["SMTP_RECIPIENTS"]),
                "username": settings["SMTP_USERNAME"] or None,
                "password": password.reveal() if password else None,
                "starttls": settings["SMTP_STARTTLS"],
                "notify_on_signal": settings["NOTIFY_ON_SIGNAL"],
                "notify_on_fill": settings["NOTIFY_ON_FILL"],
            },
        ))
    return actors


def journal_url(plan: LivePlan) -> str:
    return plan.settings["JOURNAL_URL"] or f"sqlite:///{plan.state_dir / f'journal_{plan.settings.mode}.sqlite'}"


def records_actor_configs(plan: LivePlan) -> list[ImportableActorConfig]:
    """The journal and the GnuCash ledger, as in a backtest; a dry run keeps no records."""
    settings = plan.settings
    if settings.mode == "dry-run":
        return []
    actors = []
    if settings["JOURNAL"]:
        actors.append(ImportableActorConfig(
            actor_path="actors.journal:Journal",
            config_path="actors.journal:JournalConfig",
            config={
                "mode": settings.mode,
                "database_url": journal_url(plan),
                "database_schema": settings["JOURNAL_SCHEMA"],
                "records_dir": str(plan.state_dir),
                "broker": plan.broker_name,
                "log_format": settings["LOG_FORMAT"],
                "retry_limit": settings["API_RETRY_LIMIT"],
            },
        ))
    ledger = ledger_config_for(settings["GNC_EXPORT_MODE"], settings.mode, plan.state_dir, plan.broker_name)
    if ledger is not None:
        actors.append(ImportableActorConfig(
            actor_path="actors.ledger:Ledger",
            config_path="actors.ledger:LedgerConfig",
            config=msgspec.to_builtins(ledger) | {"retry_limit": settings["API_RETRY_LIMIT"]}
            | ({"journal_url": journal_url(plan), "journal_schema": settings["JOURNAL_SCHEMA"] or None}
               if settings["JOURNAL"] else {}),
        ))
    return actors


def cache_config(settings: Settings) -> CacheConfig:
    """
    memory (default): nothing outside the process; at a restart the orders and positions come
    back from the venue (reconciliation) and strategy state from the state folder. redis: the
    cache is also written to Redis and loaded from it at start.
    """
    if settings["CACHE_BACKEND"] == "redis":
        return CacheConfig(
            database=DatabaseConfig(
                type="redis", host=settings["REDIS_HOST"], port=settings["REDIS_PORT"],
            ),
            buffer_interval_ms=None,
            persist_account_events=True,
        )
    return CacheConfig()


def check_redis(host: str, port: int, timeout: float = 2.0) -> None:
    """CACHE_BACKEND=redis: fail in seconds with a clear message when Redis does not answer."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        raise LivePlanError(
            f"CACHE_BACKEND=redis: Redis at {host}:{port} (REDIS_HOST/REDIS_PORT) does not answer "
            f"({exc.strerror or type(exc).__name__}); start it or set CACHE_BACKEND=memory",
        ) from None
    if not reply.startswith(b"+PONG"):
        raise LivePlanError(
            f"CACHE_BACKEND=redis: {host}:{port} answered PING with {reply[:30]!r}, not +PONG "
            "(a password-protected Redis is not supported)",
        )


def _ib_clients(plan: LivePlan) -> tuple[dict, dict]:
    from nautilus_trader.adapters.interactive_brokers.config import IBMarketDataTypeEnum
    from nautilus_trader.adapters.interactive_brokers.config import InteractiveBrokersDataClientConfig
    from nautilus_trader.adapters.interactive_brokers.config import InteractiveBrokersExecClientConfig
    from nautilus_trader.adapters.interactive_brokers.config import (
        InteractiveBrokersInstrumentProviderConfig,
    )
    from nautilus_trader.adapters.interactive_brokers.config import SymbologyMethod

    settings = plan.settings
    provider = InteractiveBrokersInstrumentProviderConfig(
        symbology_method=SymbologyMethod.IB_SIMPLIFIED,
        convert_exchange_to_mic_venue=True,
        load_ids=frozenset(plan.instrument_ids()),
    )
    common = {
        "ibg_host": settings["IB_HOST"],
        "ibg_port": settings["IB_PORT"],
        "ibg_client_id": settings["IB_CLIENT_ID"],
        "instrument_provider": provider,
        "connection_timeout": settings["CONNECT_TIMEOUT_SECONDS"],
    }
    data = InteractiveBrokersDataClientConfig(
        **common,
        use_regular_trading_hours=not settings["EXTENDED_HOURS"],
        # ibapi's MarketDataTypeEnum holds plain ints as attributes (REALTIME=1 ... DELAYED_FROZEN=4).
        market_data_type=getattr(IBMarketDataTypeEnum, settings["IB_MARKET_DATA_TYPE"]),
    )
    execution = InteractiveBrokersExecClientConfig(**common, account_id=settings["IB_ACCOUNT"])
    return {IB_CLIENT: data}, {IB_CLIENT: execution}


def _replay_clients(plan: LivePlan) -> tuple[dict, dict]:
    settings = plan.settings
    needs_quotes = any(spec.needs_quotes for name in settings.strategies for spec in specs_for(name))
    extra = [plan.vix_bar_type] if plan.vix_bar_type else []
    data = ReplayDataClientConfig(
        catalog_path=str(plan.catalog),
        bar_types=plan.source_bar_types() + extra,
        quote_instrument_ids=[str(i) for i in plan.instrument_ids()] if needs_quotes else [],
        start=plan.replay_start.isoformat(),
        end=plan.replay_end.isoformat(),
        speed=settings["REPLAY_SPEED"],
        warm_up_until_ns=plan.replay_resume_ns,
    )
    execution = ReplayExecClientConfig(
        venue=BACKTEST_VENUE.value,
        starting_balances=[f"{settings['STARTING_CAPITAL']} USD"],
        base_currency="USD",
        oms_type="NETTING",
        account_type="CASH",
        fill_model=fill_model_config(plan.slippage_prob),
        fee_model=fee_model_config(plan.per_share_fee, plan.min_fee),
    )
    return {REPLAY_CLIENT_ID: data}, {BACKTEST_VENUE.value: execution}


def build_node_config(plan: LivePlan) -> TradingNodeConfig:
    settings = plan.settings
    risk = plan.risk_config()
    data_clients, exec_clients = _replay_clients(plan) if plan.replay else _ib_clients(plan)
    log_dir = plan.state_dir / "logs"
    return TradingNodeConfig(
        trader_id=settings["TRADER_ID"],
        logging=LoggingConfig(
            log_level=settings["LOG_LEVEL"],
            log_level_file="INFO",
            log_directory=str(log_dir),
            log_file_name="node",
            log_file_format="json" if settings["ENGINE_LOG_FORMAT"] == "json" else None,
            log_colors=False,
        ),
        cache=cache_config(settings),
        data_engine=live_data_engine_config(),
        risk_engine=LiveRiskEngineConfig(
            bypass=False,
            max_order_submit_rate=risk.max_order_submit_rate,
            max_notional_per_order={
                str(iid): risk.nautilus_notional_limit() for iid in plan.instrument_ids()
            },
        ),
        exec_engine=LiveExecEngineConfig(
            reconciliation=True,
            # The replay venue starts empty every run; IB is asked about the last day.
            reconciliation_lookback_mins=None if plan.replay else 24 * 60,
        ),
        strategies=list(plan.strategies),
        exec_algorithms=list(plan.exec_algorithms),
        actors=actor_configs(plan),
        data_clients=data_clients,
        exec_clients=exec_clients,
        timeout_connection=float(settings["CONNECT_TIMEOUT_SECONDS"]),
        timeout_reconciliation=10.0,
        timeout_portfolio=5.0,
        timeout_disconnection=5.0,
        timeout_post_stop=1.0,
        load_state=settings["CACHE_BACKEND"] == "redis",
        save_state=settings["CACHE_BACKEND"] == "redis",
    )


def known_strategies() -> list[str]:
    return strategy_names()
