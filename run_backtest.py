"""
Backtest a strategy over the Parquet catalog and write a report folder.

    python run_backtest.py                      # reference strategy on the embedded sample
    python run_backtest.py --strategy ma_cross --symbols SPY,QQQ --start 2024-03-01 \
        --end 2024-06-30 --set fast_period=20 --set slow_period=60
    python run_backtest.py --catalog ~/my_catalog --symbols SPY
    python run_backtest.py --strategy session --symbols SPY,QQQ,NVDA --catalog ~/my_catalog \
        --set eod_momentum.min_vix=15          # the three session strategies on one account

With no --catalog the embedded sample catalog is generated on first use (deterministic).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from dataclasses import replace
from decimal import Decimal
from decimal import InvalidOperation
from pathlib import Path

from rich.console import Console
from rich.table import Table

from actors.journal import new_run_id
from actors.journal_store import default_url
from actors.trade_files import LOG_FORMATS
from backtesting.builder import BacktestRequest
from backtesting.builder import BacktestRequestError
from backtesting.registry import default_symbols
from backtesting.registry import strategy_names
from backtesting.registry import StrategyParameterError
from backtesting.registry import parse_overrides
from backtesting.report import METRIC_LABELS
from backtesting.report import metric_text
from backtesting.run import new_result_dir
from backtesting.run import run_backtest
from catalog.instruments import ListingError
from catalog.store import DEFAULT_CATALOG
from config.risk import RiskConfig
from config.version import version_banner

DEFAULT_RESULTS = Path("backtest_results")


class CliError(ValueError):
    """A command-line value that cannot be used; the message names the option."""


def _date(option: str, text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CliError(f"{option}: expected a date YYYY-MM-DD, got {text!r}") from None


def _capital(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CliError(f"--capital: expected an amount in USD, got {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise CliError(f"--capital: must be a positive amount in USD, got {text!r}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CliError(f"--slippage: expected a probability 0..1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise CliError(f"--slippage: expected a probability 0..1, got {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Backtest a strategy over the Parquet catalog and write a report.",
    )
    parser.add_argument(
        "--strategy", default="ma_cross",
        help=f"one of: {', '.join(strategy_names())} (session: the three session strategies on one account)",
    )
    parser.add_argument("--symbols", help="comma-separated symbols (default SPY; the session "
                                           "strategies SPY,QQQ,AAPL)")
    parser.add_argument("--start", help="first session date, YYYY-MM-DD (default: start of data)")
    parser.add_argument("--end", help="last session date, YYYY-MM-DD, inclusive (default: end of data)")
    parser.add_argument("--catalog", type=Path, help="catalog folder (default: the embedded sample)")
    parser.add_argument("--capital", help="starting cash in USD (default 100000, or the --config "
                                          "file's STARTING_CAPITAL)")
    parser.add_argument("--config", type=Path, metavar="ENV_FILE",
                        help="a live env file: the backtest takes its risk limits, entry window, "
                             "starting capital and the strategy settings (ALLOCATION x WEIGHTS, "
                             "BEARISH_INSTRUMENT, VIX_MIN) as run_live.py would apply them")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="strategy parameter, validated against its config class (repeatable)")
    parser.add_argument("--slippage", default="1.0",
                        help="probability that a market or stop-market fill is one tick worse; "
                             "limits never slip (default 1.0)")
    parser.add_argument("--out", type=Path, help="result folder (default backtest_results/<strategy>-<time>)")
    parser.add_argument("--journal", metavar="URL",
                        help="journal database URL (default: journal_backtest.sqlite beside the "
                             "result folder, i.e. one database for all backtests in backtest_results/)")
    parser.add_argument("--no-journal", action="store_true", help="record no journal")
    parser.add_argument("--log-format", default=os.environ.get("LOG_FORMAT", "csv"),
                        help="trade_history format, csv or json (default $LOG_FORMAT or csv)")
    parser.add_argument("--ledger", action="store_true",
                        help="export the fills to a fresh GnuCash book <out>/ledger.gnucash")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--log-level", default="ERROR", help="engine log level on the console")
    parser.add_argument("--no-risk", action="store_true",
                        help="run without the pre-trade gate and the kill switch (default: with them)")
    parser.add_argument("--version", action="version", version=version_banner("backtest"))
    return parser.parse_args(argv)


def request_from_args(args: argparse.Namespace) -> BacktestRequest:
    if args.strategy not in strategy_names():
        raise CliError(f"--strategy: unknown strategy {args.strategy!r}; choose one of {', '.join(strategy_names())}")
    if args.symbols is None:
        symbols = default_symbols(args.strategy)
    else:
        symbols = tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip())
    if not symbols:
        raise CliError("--symbols: give at least one symbol, e.g. --symbols SPY")
    start, end = _date("--start", args.start), _date("--end", args.end)
    if start and end and start > end:
        raise CliError(f"--start {start} is after --end {end}")
    catalog = args.catalog.expanduser().resolve() if args.catalog else DEFAULT_CATALOG
    if args.catalog and not (catalog / "data").is_dir():
        raise CliError(f"--catalog: {catalog} is not a Parquet data catalog (no data/ folder)")
    request = BacktestRequest(
        strategy=args.strategy,
        symbols=symbols,
        catalog=catalog,
        start=start,
        end=end,
        capital=_capital(args.capital or "100000"),
        overrides=parse_overrides(args.set),
        slippage_prob=_probability(args.slippage),
        progress=not args.no_progress,
        log_level=args.log_level.upper(),
        risk=None if args.no_risk else RiskConfig(),
    )
    return request if args.config is None else with_env_file(request, args)


def with_env_file(request: BacktestRequest, args: argparse.Namespace) -> BacktestRequest:
    """
    The request with a live env file's settings as run_live.py applies them to the same
    strategy: its risk limits (an explicit one holds over the strategy's own value), entry
    window, STARTING_CAPITAL (unless --capital is given) and the settings that map onto
    strategy parameters; --set still wins over the file.
    """
    from config.settings import SettingsError
    from config.settings import load_settings
    from livenode.builder import LivePlanError
    from livenode.builder import settled_risk_fields
    from livenode.builder import strategy_overrides
    from livenode.builder import with_strategy_settings

    if args.no_risk:
        raise CliError("--config and --no-risk: the env file's risk limits need the risk layer")
    # The backtest's own strategy, offline: no broker history, no state across restarts.
    forced = {"STRATEGIES": request.strategy, "BROKER": "replay", "MODE": "dry-run"}
    try:
        settings, _ = with_strategy_settings(load_settings(args.config, forced))
    except SettingsError as exc:
        raise CliError(f"--config {args.config}: {len(exc.problems)} problem(s):\n{exc}") from None
    except LivePlanError as exc:
        raise CliError(f"--config {args.config}: {exc}") from None
    capital = request.capital if args.capital else settings["STARTING_CAPITAL"]
    return replace(
        request,
        capital=Decimal(capital),
        risk=settings.risk_config(),
        risk_settled=settled_risk_fields(settings),
        overrides=strategy_overrides(settings, request.strategy) | request.overrides,
    )


def records_options(args: argparse.Namespace, out_dir: Path) -> dict[str, object]:
    """Journal and ledger settings of a run: the records go into the result folder."""
    if args.log_format not in LOG_FORMATS:
        raise CliError(f"--log-format: expected csv or json, got {args.log_format!r}")
    options: dict[str, object] = {"run_id": new_run_id("backtest"), "log_format": args.log_format}
    if not args.no_journal:
        options["journal_url"] = args.journal or default_url("backtest", out_dir.resolve().parent)
        options["records_dir"] = out_dir.resolve()
    if args.ledger:
        options["ledger_book"] = (out_dir / "ledger.gnucash").resolve()
    return options


def write_records_manifest(request: BacktestRequest, out_dir: Path) -> None:
    """records.json: where this run's records are, for the reconcile and deals commands."""
    manifest = {
        "run_id": request.run_id,
        "mode": "backtest",
        "capital": str(request.capital),
        "journal_url": request.journal_url,
        "trade_history": None,
        "ledger_book": str(request.ledger_book) if request.ledger_book else None,
        "fills": str((out_dir / "fills.csv").resolve()),
    }
    if request.records_dir is not None:
        found = sorted(request.records_dir.glob("trade_history.*"))
        manifest["trade_history"] = str(found[0]) if found else None
    (out_dir / "records.json").write_text(json.dumps(manifest, indent=1))


def print_summary(console: Console, metrics: dict[str, object], out_dir: Path, warnings: list[str]) -> None:
    table = Table(title="Backtest summary", show_header=False)
    for key, label in METRIC_LABELS.items():
        if key in metrics:
            table.add_row(label, metric_text(metrics[key]))
    console.print(table)
    for warning in warnings:  # what changed the run, right under its figures
        console.print(f"[yellow]note:[/yellow] {warning}", highlight=False)
    console.print(f"Report: {out_dir / 'report.html'}")
    console.print(f"Trades: {out_dir / 'trades.csv'} and trades.json; metrics: {out_dir / 'metrics.json'}")


def main(argv: list[str] | None = None) -> int:
    console = Console()
    args = parse_args(argv)
    console.print(version_banner("backtest"), highlight=False)
    try:
        request = request_from_args(args)
        if request.catalog == DEFAULT_CATALOG:
            from catalog.sample import ensure_sample_catalog

            ensure_sample_catalog(DEFAULT_CATALOG, progress=request.progress)
        out_dir = args.out or new_result_dir(DEFAULT_RESULTS, request.strategy)
        if out_dir.exists():
            raise CliError(f"--out: {out_dir} already exists; an earlier run is never overwritten")
        request = replace(request, log_directory=out_dir.resolve(), **records_options(args, out_dir))
        outcome = run_backtest(request, out_dir)
        write_records_manifest(request, out_dir)
    except (CliError, StrategyParameterError, BacktestRequestError, ListingError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    print_summary(console, outcome.metrics, outcome.out_dir, outcome.warnings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
