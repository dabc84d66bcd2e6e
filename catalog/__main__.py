"""
Command line for the data catalog: ``python -m catalog SUB-COMMAND ...``.

    python -m catalog import PATH [PATH ...] --catalog DIR [--format NAME] [--symbol SYM]
        [--timeframe 1min|5min|1day] [--tz ZONE|aware] [--stamp open|close]
        [--columns T=SRC,...] [--timestamp-format FMT]
        [--skip-bad-rows] [--replace] [--no-lot-conversion]
    python -m catalog list --catalog DIR
    python -m catalog formats

Each sub-command is a parser built by ``_add_<name>`` plus a handler ``_cmd_<name>``; add a
new one (e.g. ``sample``) by writing both and registering the builder in ``SUBCOMMANDS``.
Exit codes: 0 success, 1 a file failed to import, 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn
from rich.table import Table

from catalog.importer import AWARE
from catalog.importer import PRESETS
from catalog.importer import BarImportError
from catalog.importer import ImportSummary
from catalog.importer import detect_format
from catalog.importer import import_file
from catalog.importer import iter_bar_files
from catalog.importer import list_bar_types
from catalog.store import BAR_SPECS
from catalog.store import open_catalog


def _add_import(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import",
        help="import bar files (CSV, CSV.gz, Parquet) into a catalog",
        description="Import bar files into the Parquet catalog. A directory imports every bar "
        "file under it, choosing the format per file from its header.",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="file or directory")
    p.add_argument("--catalog", required=True, type=Path, metavar="DIR", help="catalog folder")
    p.add_argument("--format", choices=sorted(PRESETS), help="preset (default: detect)")
    p.add_argument("--symbol", help="symbol (default: from the file name)")
    p.add_argument("--timeframe", choices=list(BAR_SPECS), help="default: from the data")
    p.add_argument(
        "--tz",
        help=f"zone of naive timestamps (America/New_York, ET, UTC) or '{AWARE}' when they "
        "carry an offset (default: the preset's)",
    )
    p.add_argument("--stamp", choices=("open", "close"), help="what a timestamp marks")
    p.add_argument(
        "--columns",
        type=_column_map,
        metavar="T=SRC,...",
        help="column mapping, targets timestamp (or date and time), open, high, low, close, "
        "volume; e.g. 'date=Day,time=Time,volume=Vol'",
    )
    p.add_argument(
        "--timestamp-format", metavar="FMT", help="strftime format, e.g. '%%Y%%m%%d %%H%%M%%S'"
    )
    p.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="write the good rows and list every skipped one (default: a bad row fails the file)",
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="replace the catalog's bars in each file's time range (default: merge identical "
        "bars, refuse conflicting ones)",
    )
    p.add_argument(
        "--no-lot-conversion",
        action="store_true",
        help="report volume that looks 100x too small instead of converting it",
    )
    p.set_defaults(func=_cmd_import)


def _column_map(text: str) -> dict[str, str]:
    pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
    if any(len(pair) != 2 for pair in pairs):
        raise argparse.ArgumentTypeError(f"expected TARGET=SOURCE pairs, got {text!r}")
    return {target.strip(): source.strip() for target, source in pairs}


def _add_list(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("list", help="list the catalog's bar types with counts and ranges")
    p.add_argument("--catalog", required=True, type=Path, metavar="DIR", help="catalog folder")
    p.set_defaults(func=_cmd_list)


def _add_formats(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("formats", help="list the import presets")
    p.set_defaults(func=_cmd_formats)


def _add_sample(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sample", help="generate the embedded sample catalog (deterministic; skipped if present)",
    )
    p.add_argument("--catalog", type=Path, metavar="DIR", help="catalog folder (default: the demo's)")
    p.set_defaults(func=_cmd_sample)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_import,
    _add_list,
    _add_formats,
    _add_sample,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m catalog", description=__doc__.split("\n\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def _ts(value) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M")


def _summary_table(summaries: list[ImportSummary]) -> Table:
    table = Table(title="Imported")
    columns = (
        ("file", "left"),
        ("bars", "left"),
        ("read", "right"),
        ("written", "right"),
        ("first close (UTC)", "left"),
        ("last close (UTC)", "left"),
        ("sessions", "right"),
        ("vol x100", "right"),
        ("rounded", "right"),
        ("bad rows", "right"),
        ("catalog", "left"),
    )
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for s in summaries:
        if s.existing_replaced:
            catalog_note = f"replaced {s.existing_replaced:,}"
        elif s.existing_identical or s.existing_kept:
            catalog_note = f"{s.existing_identical:,} same" + (
                f", {s.existing_kept:,} merged" if s.existing_kept else ""
            )
        else:
            catalog_note = "new"
        table.add_row(
            s.path.name,
            f"{s.symbol} {s.timeframe}",
            f"{s.rows_read:,}",
            f"{s.rows_written:,}",
            _ts(s.first),
            _ts(s.last),
            f"{s.sessions:,}",
            f"{len(s.volume_days_converted)}" if s.volume_days_converted else "",
            f"{s.prices_rounded:,}" + (f" +{s.volumes_rounded:,}v" if s.volumes_rounded else ""),
            f"[yellow]{len(s.bad_rows):,}[/]" if s.bad_rows else "0",
            catalog_note,
        )
    table.caption = (
        "vol x100: blocks whose volume was converted from lots; rounded: prices moved to the "
        "0.01 tick (+v: fractional volumes rounded)"
    )
    return table


def _details(console: Console, summaries: list[ImportSummary]) -> None:
    """Everything the table cannot show: converted days, warnings, every skipped row."""
    for s in summaries:
        if s.volume_days_converted:
            ratio = s.volume_unit_ratio
            measured = f"; measured ~{ratio:.0f}x below the share days" if ratio else ""
            console.print(
                f"[bold]{s.path.name}[/]: volume x100 on {len(s.volume_days_converted)} "
                f"block(s){measured}: {', '.join(s.volume_converted_runs)}",
                highlight=False,
            )
        if s.volume_days_ambiguous:
            console.print(
                f"[bold]{s.path.name}[/]: [yellow]volume unit unclear[/] on "
                f"{', '.join(s.volume_days_ambiguous)}"
            )
        for warning in s.warnings:
            console.print(f"[bold]{s.path.name}[/]: [yellow]{warning}[/]")
        if s.bad_rows:
            console.print(
                f"[bold]{s.path.name}[/]: [yellow]skipped {len(s.bad_rows)} bad row(s)[/]"
            )
            for bad in s.bad_rows:
                console.print(f"  {bad}", highlight=False, markup=False, soft_wrap=True)


def _cmd_import(args: argparse.Namespace, console: Console) -> int:
    files = list(iter_bar_files(args.paths))
    missing = [p for p, explicit in files if explicit and not p.exists()]
    if missing:
        for p in missing:
            console.print(f"[red]error:[/] {p}: no such file or directory", highlight=False)
        return 1
    catalog = open_catalog(args.catalog)
    summaries: list[ImportSummary] = []
    errors: list[str] = []
    skipped: list[str] = []
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task("importing", total=len(files))
        for path, explicit in files:
            progress.update(task, description=f"importing {path.name}")
            try:
                if args.format is None and not explicit:
                    try:
                        detect_format(path)
                    except BarImportError:
                        skipped.append(str(path))
                        continue
                summaries.append(
                    import_file(
                        path,
                        catalog,
                        fmt=args.format,
                        symbol=args.symbol,
                        timeframe=args.timeframe,
                        tz=args.tz,
                        stamp=args.stamp,
                        columns=args.columns,
                        timestamp_format=args.timestamp_format,
                        skip_bad_rows=args.skip_bad_rows,
                        replace=args.replace,
                        convert_lots=not args.no_lot_conversion,
                    )
                )
            except BarImportError as exc:
                errors.append(str(exc))
            finally:
                progress.advance(task)
    if summaries:
        console.print(_summary_table(summaries))
        _details(console, summaries)
    if skipped:
        console.print(f"skipped {len(skipped)} file(s) that no preset recognises:")
        for path in skipped:
            console.print(f"  {path}", highlight=False, soft_wrap=True)
    for error in errors:
        console.print("[red]error:[/] ", end="")
        console.print(error, highlight=False, markup=False, soft_wrap=True)
    if errors:
        console.print(
            f"[red]{len(errors)} file(s) failed[/], {len(summaries)} imported into {args.catalog}"
        )
        return 1
    if not summaries:
        console.print("[red]error:[/] no bar files found")
        return 1
    console.print(f"{len(summaries)} file(s) imported into {args.catalog}")
    return 0


def _cmd_list(args: argparse.Namespace, console: Console) -> int:
    if not args.catalog.is_dir():
        console.print(f"[red]error:[/] {args.catalog}: no such catalog folder", highlight=False)
        return 1
    rows = list_bar_types(open_catalog(args.catalog))
    if not rows:
        console.print(f"{args.catalog}: no bars")
        return 0
    table = Table(title=f"Bars in {args.catalog}")
    for name in ("bar type", "bars", "first close (UTC)", "last close (UTC)", "files"):
        table.add_column(name, justify="right" if name in ("bars", "files") else "left")
    for row in rows:
        table.add_row(row.bar_type, f"{row.count:,}", _ts(row.first), _ts(row.last), str(row.files))
    console.print(table)
    return 0


def _cmd_sample(args: argparse.Namespace, console: Console) -> int:
    from catalog.sample import ensure_sample_catalog
    from catalog.store import DEFAULT_CATALOG

    path = ensure_sample_catalog(args.catalog or DEFAULT_CATALOG, progress=True)
    console.print(f"sample catalog ready: {path}")
    return 0


def _cmd_formats(args: argparse.Namespace, console: Console) -> int:
    table = Table(title="Import presets")
    for name in ("name", "zone", "stamp", "timeframe", "description"):
        table.add_column(name, overflow="fold")
    for fmt in PRESETS.values():
        daily = fmt.timeframe == "1day"
        table.add_row(
            fmt.name,
            "-" if daily else fmt.tz,
            "session close" if daily else fmt.stamp,
            fmt.timeframe or "from data",
            fmt.description,
        )
    console.print(table)
    return 0


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    args = build_parser().parse_args(argv)
    if console is None:
        console = Console()
        if not console.is_terminal:  # a log or a pipe: do not squeeze the tables into 80 columns
            console = Console(width=160)
    return args.func(args, console)


if __name__ == "__main__":
    sys.exit(main())
