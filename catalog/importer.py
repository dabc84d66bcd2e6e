"""
Import real bar files (CSV, optionally gzipped, and Parquet) into the Parquet data catalog.

Every instrument goes on the backtest venue ``SIM`` (``make_instrument(symbol)``). A file is
described by a ``BarFormat``: where its columns are, how its timestamps are written, which
zone they are in and whether they mark the bar's open or its close. ``PRESETS`` holds one
format per file family under ``shared/data/market``; ``detect_format`` picks one from a file's
header (or first line) and name.

Decisions, and why:

- Stamping. Nautilus stamps a bar at its close, so open-stamped intraday bars get
  ``+interval``. Daily bars are stamped at the NYSE session close of their date (16:00
  America/New_York, 13:00 on half-days, from the exchange_calendars ``XNYS`` schedule) rather
  than at 00:00 UTC: midnight UTC is 19:00 or 20:00 New York time the evening *before*, so a
  midnight stamp would hand a backtest the day's close before the session opened. A weekday
  that is not an XNYS session (the VIX prints on some NYSE holidays; Stooq has a row for
  1985-09-27, when the NYSE shut for Hurricane Gloria) is stamped at 16:00 New York time and
  reported as a warning; a weekend date is a bad row.
- Validation. Every row is checked (parseable numbers and timestamps, prices > 0, volume >= 0,
  high >= max(open, close), low <= min(open, close), timestamps strictly increasing). By
  default any bad row fails the file (``BarImportError`` listing the first 50 problems and a
  count); ``skip_bad_rows=True`` writes the good rows and lists every skipped row in the
  summary. Nothing is dropped silently.
- Ticks. Prices are rounded to the instrument's 0.01 tick and the number of values that needed
  it is reported; the OHLC rules are checked again after rounding (rounding is monotonic, so
  they hold, but a price can round to 0.00). Fractional volumes are rounded to whole shares
  and counted too.
- Re-import and overlaps. Before writing, the catalog's bars of the same bar type inside the
  file's time range are compared with the file's. Bars at the same timestamp must be identical
  (equal at the instrument's precision), otherwise the import is refused, listing the
  conflicts. When they agree, the range is rewritten as the union of both, so importing the same
  file twice changes nothing and two files that overlap with identical bars (or interleave
  without sharing a timestamp) merge. ``replace=True`` (CLI ``--replace``) instead deletes the
  catalog's bars of that bar type between the file's first and last bar and writes the file's.
- Volume units. Some Interactive Brokers exports mix units: on some days the volume is ~100
  times too small. Formats with ``detect_lots`` find those sessions, or the part of a session
  after an intraday switch (``find_unit_break``), with ``detect_lot_blocks`` (its docstring
  has the rule) and multiply their volume by ``LOT_SIZE``; the summary lists every converted
  block, the measured ratio, and the blocks whose unit is unclear. In the shared
  jeffreymalkus files those low sessions are not exact lots: their prices have half cents and
  their volume is 10x-150x below the same day's 5-minute bars in shares, varying bar to bar
  (a single-venue feed, by the look of it), so x100 restores the order of magnitude only.
- Zones of the presets, checked against the data: the NinjaTrader (gbeced pyalgotrade) times
  are UTC and mark the bar close (the opening-auction minute is 14:31 in January and 13:31
  after the 2011-03-13 DST change, i.e. 09:31 New York both times, and sessions run 09:01 to
  01:00 UTC = 04:00-20:00 New York); pixie26 is New York time stamped at the close (04:01 to
  20:00); ADMF-PC and the IB exports stamp the open. pixie26 and ADMF-PC give identical prices
  for the minutes they share once stamped this way.
"""

from __future__ import annotations

import csv
import gzip
import re
import warnings
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace as dc_replace
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytz
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.instruments import ListingError
from catalog.instruments import make_instrument
from catalog.store import BAR_INTERVALS
from catalog.store import BAR_SPECS
from catalog.store import bar_type_for
from catalog.store import bars_from_frame
from catalog.store import write_instrument

NEW_YORK = "America/New_York"
TZ_ALIASES = {"ET": NEW_YORK, "US/Eastern": NEW_YORK, "EST5EDT": NEW_YORK, "Z": "UTC"}
AWARE = "aware"  # the timestamps carry their own offset
MAX_LISTED_PROBLEMS = 50
BAR_FILE_SUFFIXES = (".csv", ".csv.gz", ".txt", ".txt.gz", ".parquet")
TARGETS = ("open", "high", "low", "close", "volume")

LOT_SIZE = 100
# Group medians closer than this are one unit: see detect_lot_blocks.
LOT_MIN_RATIO = 8.0
# Regular session by bar open time, the part of the day the volume levels are measured on.
RTH_START_MIN = 9 * 60 + 30
RTH_END_MIN = 16 * 60


class BarImportError(ValueError):
    """A file that cannot be imported; ``problems`` lists every reason (bad rows first)."""

    def __init__(self, path: Path | str, problems: Sequence[str], total: int | None = None):
        self.path = Path(path)
        self.problems = list(problems)
        total = len(self.problems) if total is None else total
        shown = self.problems[:MAX_LISTED_PROBLEMS]
        lines = [f"{self.path}: import failed ({total} problem{'s' if total != 1 else ''})"]
        lines += [f"  {p}" for p in shown]
        if total > len(shown):
            lines.append(f"  ... and {total - len(shown)} more")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class BadRow:
    path: Path
    line: int  # physical line in a text file (header counted), or 1-based row in a Parquet file
    reason: str
    parquet: bool = False

    def __str__(self) -> str:
        where = f"row {self.line}" if self.parquet else str(self.line)
        return f"{self.path}:{where}: {self.reason}"


@dataclass(frozen=True)
class BarFormat:
    """How to read one family of bar files.

    ``columns`` maps each target (``timestamp``, or ``date`` with optional ``time``, and
    ``open high low close volume``) to the source column; a missing ``volume`` means 0.
    ``tz`` is the zone of naive timestamps (``"aware"`` when they carry an offset).
    """

    name: str
    description: str
    columns: dict[str, str]
    kind: str = "csv"  # or "parquet"
    header: bool = True
    names: tuple[str, ...] | None = None  # column names of a file without a header
    sep: str = ","
    timestamp_format: str | None = None  # strftime format; None lets pandas infer (ISO)
    tz: str = NEW_YORK
    stamp: str = "open"  # what the timestamp marks: "open" or "close"
    timeframe: str | None = None  # None: inferred from the spacing of the timestamps
    symbol: str | None = None  # fixed symbol, else taken from the file name
    symbol_pattern: str = r"^([A-Za-z]+)"
    detect_lots: bool = False
    signature: str | None = None  # exact header line (CSV) used by detect_format
    first_line_pattern: str | None = None  # for files without a header
    name_pattern: str | None = None  # file-name regex that must also match, if set

    def with_options(self, **changes: object) -> BarFormat:
        return dc_replace(self, **{k: v for k, v in changes.items() if v is not None})


_OHLCV = {"open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume"}

PRESETS: dict[str, BarFormat] = {
    f.name: f
    for f in (
        BarFormat(
            name="admf_pc_parquet",
            description="dawsh2 ADMF-PC: Parquet, tz-aware UTC timestamp, bar open",
            kind="parquet",
            columns={"timestamp": "timestamp", **_OHLCV},
            tz=AWARE,
            stamp="open",
            symbol_pattern=r"^([A-Z.]+)_\d+m_",
        ),
        BarFormat(
            name="ib_alert_overlay",
            description="jeffreymalkus alert_overlay IB bars: naive US/Eastern, bar open, "
            "volume units mixed per day",
            columns={"timestamp": "datetime", **_OHLCV},
            timestamp_format="%Y-%m-%d %H:%M:%S",
            tz=NEW_YORK,
            stamp="open",
            detect_lots=True,
            signature="datetime,open,high,low,close,volume",
            symbol_pattern=r"^([A-Z.]+)_\d+min\.csv",
        ),
        BarFormat(
            name="pixie26_et_ext",
            description="pixie26 intradayMomentum: UTF-8 BOM, M/D/YYYY H:MM US/Eastern, bar "
            "close (04:01-20:00), extended hours",
            columns={
                "timestamp": "DateTime",
                "open": "Open",
                "high": "High",
                "low": "Low",
                "close": "Close",
                "volume": "Volume",
            },
            timestamp_format="%m/%d/%Y %H:%M",
            tz=NEW_YORK,
            stamp="close",
            signature="DateTime,Symbol,Open,High,Low,Close,Volume,Trades",
            symbol_pattern=r"^([A-Z.]+)_1min_",
        ),
        BarFormat(
            name="ninjatrader_utc",
            description="NinjaTrader minute export (gbeced pyalgotrade): "
            "'YYYYMMDD HHMMSS;O;H;L;C;V', no header, UTC, bar close",
            columns={"timestamp": "timestamp", **_OHLCV},
            header=False,
            names=("timestamp", "open", "high", "low", "close", "volume"),
            sep=";",
            timestamp_format="%Y%m%d %H%M%S",
            tz="UTC",
            stamp="close",
            first_line_pattern=r"^\d{8} \d{6};[^;]*;[^;]*;[^;]*;[^;]*;[^;]*$",
            symbol_pattern=r"^nt-([a-z.]+)-",
        ),
        BarFormat(
            name="stooq_etf_daily",
            description="Stooq daily with <TICKER>,<PER>,<DATE>,<TIME>,... header "
            "(fractional volumes)",
            columns={
                "date": "<DATE>",
                "open": "<OPEN>",
                "high": "<HIGH>",
                "low": "<LOW>",
                "close": "<CLOSE>",
                "volume": "<VOL>",
            },
            timestamp_format="%Y%m%d",
            timeframe="1day",
            signature="<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>",
            symbol_pattern=r"^([a-z.\-]+?)\.us\.txt",
        ),
        BarFormat(
            name="stooq_daily",
            description="Stooq daily 'Date,Open,High,Low,Close,Volume,OpenInt'",
            columns={
                "date": "Date",
                "open": "Open",
                "high": "High",
                "low": "Low",
                "close": "Close",
                "volume": "Volume",
            },
            timestamp_format="%Y%m%d",
            timeframe="1day",
            signature="Date,Open,High,Low,Close,Volume,OpenInt",
            symbol_pattern=r"^([a-z.\-]+?)\.us\.txt",
        ),
        BarFormat(
            name="cboe_vix_daily",
            description="CBOE VIX history: DATE (MM/DD/YYYY), OPEN, HIGH, LOW, CLOSE; no volume",
            columns={
                "date": "DATE",
                "open": "OPEN",
                "high": "HIGH",
                "low": "LOW",
                "close": "CLOSE",
            },
            timestamp_format="%m/%d/%Y",
            timeframe="1day",
            symbol="VIX",
            signature="DATE,OPEN,HIGH,LOW,CLOSE",
        ),
        BarFormat(
            name="generic_csv",
            description="CSV with timestamp,open,high,low,close,volume columns (pass --tz)",
            columns={"timestamp": "timestamp", **_OHLCV},
            tz=NEW_YORK,
        ),
    )
}


@dataclass
class ImportSummary:
    """What one file's import did."""

    path: Path
    format: str
    symbol: str
    timeframe: str
    bar_type: str
    rows_read: int = 0
    rows_written: int = 0
    first: pd.Timestamp | None = None  # first and last bar close, UTC
    last: pd.Timestamp | None = None
    sessions: int = 0
    volume_days_converted: list[str] = field(default_factory=list)
    volume_converted_runs: list[str] = field(default_factory=list)  # the same, as runs
    volume_days_ambiguous: list[str] = field(default_factory=list)
    volume_unit_ratio: float | None = None  # share-day level / lot-day level, as measured
    prices_rounded: int = 0
    volumes_rounded: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    existing_identical: int = 0  # catalog bars equal to the file's at the same timestamp
    existing_kept: int = 0  # catalog bars inside the file's range at other timestamps, merged
    existing_replaced: int = 0  # catalog bars deleted by replace=True
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Format detection and file reading


def _open_text(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _first_line(path: Path) -> str:
    try:
        with _open_text(path) as fh:
            return fh.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError, EOFError):
        return ""


def is_bar_file_name(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(suffix) for suffix in BAR_FILE_SUFFIXES)


def detect_format(path: Path | str) -> BarFormat:
    """The preset whose header (or first-line shape) and file-name pattern match ``path``."""
    path = Path(path)
    if path.name.lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            names = set(pq.read_schema(path).names)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise BarImportError(path, [f"not a readable Parquet file: {exc}"]) from None
        for fmt in PRESETS.values():
            if fmt.kind == "parquet" and set(fmt.columns.values()) <= names:
                return fmt
        raise BarImportError(
            path, [f"no preset matches the Parquet columns {sorted(names)}; pass --format"]
        )
    line = _first_line(path)
    for fmt in PRESETS.values():
        if fmt.kind != "csv":
            continue
        if fmt.name_pattern and not re.search(fmt.name_pattern, path.name):
            continue
        if fmt.signature is not None and line.strip() == fmt.signature:
            return fmt
        if fmt.first_line_pattern is not None and re.match(fmt.first_line_pattern, line):
            return fmt
    raise BarImportError(
        path, [f"no preset matches the first line {line[:80]!r}; pass --format NAME"]
    )


def symbol_from_path(path: Path, fmt: BarFormat) -> str:
    if fmt.symbol:
        return fmt.symbol
    match = re.search(fmt.symbol_pattern, path.name)
    if not match:
        raise BarImportError(path, ["cannot tell the symbol from the file name; pass --symbol"])
    return match.group(1).upper()


@dataclass
class _Raw:
    """Source columns as read, and each row's physical line (header counted)."""

    frame: pd.DataFrame
    lines: np.ndarray
    parquet: bool


def _read(path: Path, fmt: BarFormat) -> _Raw:
    wanted = list(dict.fromkeys(fmt.columns.values()))
    if fmt.kind == "parquet":
        try:
            frame = pd.read_parquet(path, columns=wanted)
        except (OSError, ValueError, KeyError) as exc:
            raise BarImportError(path, [f"cannot read the Parquet file: {exc}"]) from None
        return _Raw(frame.reset_index(drop=True), np.arange(1, len(frame) + 1), True)
    try:
        with warnings.catch_warnings():
            # pandas only warns (and drops fields) when a row is longer than the header.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path,
                sep=fmt.sep,
                header=0 if fmt.header else None,
                index_col=False,  # never turn a surplus first field into an index
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                # Keep blank lines as rows so that row i is physical line i (+ header); they
                # are dropped below as not being data.
                skip_blank_lines=False,
                encoding="utf-8-sig",
                compression="infer",
            )
    except pd.errors.ParserWarning:
        line = _first_long_line(path, fmt.sep)
        raise BarImportError(
            path, [f"{path}:{line}: the line has more fields than the header"]
        ) from None
    except pd.errors.ParserError as exc:
        raise BarImportError(path, [f"the file's structure is broken: {exc}"]) from None
    except (UnicodeDecodeError, EOFError, OSError) as exc:
        raise BarImportError(path, [f"cannot read the file: {exc}"]) from None
    if fmt.names:
        if len(frame.columns) != len(fmt.names):
            raise BarImportError(
                path,
                [
                    (
                        f"{path}:1: expected {len(fmt.names)} fields "
                        f"({fmt.sep.join(fmt.names)}), found {len(frame.columns)}"
                    )
                ],
            )
        frame.columns = list(fmt.names)
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise BarImportError(
            path, [f"missing column(s) {missing}; the header has {list(frame.columns)}"]
        )
    lines = np.arange(len(frame)) + (2 if fmt.header else 1)
    text = frame[wanted]
    blank = np.logical_and.reduce([text[c].str.strip().eq("").to_numpy() for c in wanted])
    if blank.any():
        text, lines = text[~blank], lines[~blank]
    return _Raw(text.reset_index(drop=True), lines, False)


def _first_long_line(path: Path, sep: str) -> int:
    """The first line with more fields than the first (header) line."""
    with _open_text(path) as fh:
        rows = csv.reader(fh, delimiter=sep)
        width = len(next(rows, []))
        for number, row in enumerate(rows, start=2):
            if len(row) > width:
                return number
    return 0


# ---------------------------------------------------------------------------------------------
# Parsing, stamping and validation


def _resolve_tz(tz: str) -> str:
    return TZ_ALIASES.get(tz, tz)


@cache
def _xnys():
    import exchange_calendars as xcals

    return xcals.get_calendar("XNYS", start="1950-01-03")


def session_closes(dates: pd.DatetimeIndex) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Each date's NYSE close (UTC), and a mask of the dates that are XNYS sessions.

    Dates that are not sessions (or lie outside the calendar) get 16:00 America/New_York.
    """
    dates = pd.DatetimeIndex(dates).normalize()
    closes = pd.DatetimeIndex(_xnys().schedule["close"].reindex(dates))
    is_session = np.asarray(~closes.isna())
    default = (dates + pd.Timedelta(hours=16)).tz_localize(NEW_YORK).tz_convert("UTC")
    return closes.where(is_session, default).as_unit("ns"), is_session


def _parse_numbers(raw: _Raw, fmt: BarFormat, problems: dict[str, np.ndarray]) -> pd.DataFrame:
    values = {}
    for target in TARGETS:
        source = fmt.columns.get(target)
        if source is None:  # e.g. the VIX has no volume
            values[target] = np.zeros(len(raw.frame))
            continue
        column = raw.frame[source]
        number = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(number)
        if bad.any():
            problems[f"{target} is missing or not a number"] = bad
        values[target] = number
    return pd.DataFrame(values)


def _parse_times(raw: _Raw, fmt: BarFormat, path: Path) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Timestamps as written (naive, or tz-aware when ``fmt.tz`` is aware) and a parse mask."""
    if "timestamp" in fmt.columns:
        column = raw.frame[fmt.columns["timestamp"]]
        time_format = fmt.timestamp_format
    else:
        column = raw.frame[fmt.columns["date"]]
        time_format = fmt.timestamp_format
        if "time" in fmt.columns:
            column = column.str.strip() + " " + raw.frame[fmt.columns["time"]].str.strip()
    if pd.api.types.is_datetime64_any_dtype(column):
        index = pd.DatetimeIndex(column)
        return _check_zone(index, fmt, path)
    try:
        index = _parse_text_times(column, fmt, time_format, path)
    except (ValueError, TypeError) as exc:  # e.g. naive and offset strings mixed
        raise BarImportError(path, [f"the timestamps cannot be read consistently: {exc}"]) from None
    return _check_zone(index, fmt, path)


def _parse_text_times(
    column: pd.Series, fmt: BarFormat, time_format: str | None, path: Path
) -> pd.DatetimeIndex:
    text = column.astype(str).str.strip()
    time_format = time_format or "ISO8601"
    if fmt.tz != AWARE:
        return pd.DatetimeIndex(pd.to_datetime(text, format=time_format, errors="coerce"))
    # utc=True would read a naive string as UTC: require an explicit offset instead.
    has_offset = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True)
    if not has_offset.any():
        raise BarImportError(
            path, ["the timestamps have no zone: pass --tz (e.g. America/New_York)"]
        )
    parsed = pd.to_datetime(text.where(has_offset), format=time_format, errors="coerce", utc=True)
    return pd.DatetimeIndex(parsed)


def _check_zone(
    index: pd.DatetimeIndex, fmt: BarFormat, path: Path
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    if fmt.tz == AWARE and index.tz is None:
        raise BarImportError(
            path, ["the timestamps have no zone: pass --tz (e.g. America/New_York)"]
        )
    if fmt.tz != AWARE and index.tz is not None:
        raise BarImportError(
            path,
            [f"the timestamps carry a zone ({index.tz}) but --tz says {fmt.tz}: use --tz aware"],
        )
    return index, np.asarray(~index.isna())


def _localize(naive: pd.DatetimeIndex, tz: str) -> pd.DatetimeIndex:
    """Naive wall-clock times in ``tz`` to UTC; impossible or ambiguous times become NaT."""
    if tz == "UTC":
        return naive.tz_localize("UTC")
    try:
        # 'infer' resolves a complete fall-back hour from the order of the rows.
        local = naive.tz_localize(tz, ambiguous="infer", nonexistent="NaT")
    except (ValueError, pytz.exceptions.InvalidTimeError):  # 'infer' could not decide
        local = naive.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    return local.tz_convert("UTC")


def _infer_timeframe(times: pd.DatetimeIndex, path: Path) -> str:
    valid = times[~times.isna()]
    steps = np.diff(np.unique(valid.as_unit("ns").asi8))
    if len(steps) == 0:
        raise BarImportError(path, ["cannot infer the timeframe from one bar; pass --timeframe"])
    mode = pd.Series(steps).mode().iloc[0]
    for name, interval in BAR_INTERVALS.items():
        if mode == interval.value:
            return name
    if pd.Timedelta(days=1).value <= mode <= pd.Timedelta(days=4).value:  # weekends, holidays
        return "1day"
    raise BarImportError(
        path,
        [
            (
                f"the most common bar spacing is {pd.Timedelta(int(mode))}; pass --timeframe "
                f"({', '.join(BAR_SPECS)})"
            )
        ],
    )


@dataclass
class _Parsed:
    frame: pd.DataFrame  # open high low close volume, indexed by bar close (UTC)
    opens_et: pd.DatetimeIndex  # bar open, New York time (intraday); session date (daily)
    lines: np.ndarray  # physical line of each row of ``frame``
    bad: list[BadRow]
    warnings: list[str]
    timeframe: str


def _parse(raw: _Raw, fmt: BarFormat, path: Path, timeframe: str | None) -> _Parsed:
    problems: dict[str, np.ndarray] = {}
    numbers = _parse_numbers(raw, fmt, problems)
    written, parsed = _parse_times(raw, fmt, path)
    n = len(numbers)
    if not parsed.all():
        problems["timestamp cannot be parsed"] = ~parsed
    timeframe = timeframe or fmt.timeframe or _infer_timeframe(written, path)
    if timeframe not in BAR_SPECS:
        raise BarImportError(path, [f"timeframe must be one of {', '.join(BAR_SPECS)}"])
    warnings: list[str] = []

    if timeframe == "1day":
        # The date as written (a tz-aware source is read in New York time first).
        local = (
            written.tz_convert(NEW_YORK).tz_localize(None) if written.tz is not None else written
        )
        dates = local.normalize()
        stamps = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)  # the NaT value
        if parsed.any():
            valid_dates = dates[parsed]
            valid_closes, is_session = session_closes(valid_dates)
            stamps[parsed] = valid_closes.asi8
            weekend = np.zeros(n, dtype=bool)
            weekend[parsed] = np.asarray(valid_dates.dayofweek >= 5)
            if weekend.any():
                problems["the date is a Saturday or Sunday"] = weekend
            off = ~is_session & ~weekend[parsed]
            if off.any():
                days = [d.strftime("%Y-%m-%d") for d in valid_dates[off]]
                listed = ", ".join(days[:10])
                if len(days) > 10:
                    listed += f" and {len(days) - 10} more"
                warnings.append(
                    f"{len(days)} weekday date(s) are not NYSE sessions, stamped 16:00 "
                    f"New York: {listed}"
                )
        closes = pd.DatetimeIndex(stamps.view("datetime64[ns]")).tz_localize("UTC")
        opens_et = dates
    else:
        if written.tz is None:
            utc = _localize(written, _resolve_tz(fmt.tz))
            impossible = parsed & np.asarray(utc.isna())
            if impossible.any():
                problems[f"local time does not exist or is ambiguous in {fmt.tz} (DST change)"] = (
                    impossible
                )
        else:
            utc = written.tz_convert("UTC")
        interval = BAR_INTERVALS[timeframe]
        closes = utc + interval if fmt.stamp == "open" else utc
        opens_et = (closes - interval).tz_convert(NEW_YORK)

    # Price and volume rules, on the values as written.
    o, h, lo, c, v = (numbers[k].to_numpy() for k in TARGETS)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c)
        rules = {
            "a price is <= 0": finite & ((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0)),
            "volume is negative": np.isfinite(v) & (v < 0),
            "high is below max(open, close)": finite & (h < np.maximum(o, c)),
            "low is above min(open, close)": finite & (lo > np.minimum(o, c)),
        }
    problems.update({k: m for k, m in rules.items() if m.any()})

    # Nautilus timestamps are unsigned nanoseconds since the epoch (GE and IBM go back to 1962).
    stamps = closes.as_unit("ns").asi8
    has_stamp = np.asarray(~closes.isna())
    pre_epoch = has_stamp & (stamps < 0)
    if pre_epoch.any():
        problems["the bar closes before 1970-01-01, which Nautilus timestamps cannot hold"] = (
            pre_epoch
        )

    # Order: each stamped bar must come after every earlier one (duplicates included).
    positions = np.flatnonzero(has_stamp)
    order_bad = np.zeros(n, dtype=bool)
    clash_line = np.zeros(n, dtype=np.int64)  # line holding the latest earlier stamp
    clash_same = np.zeros(n, dtype=bool)
    if len(positions) > 1:
        ts = stamps[positions]
        running = np.maximum.accumulate(ts)
        prior = np.concatenate([[np.iinfo(np.int64).min], running[:-1]])
        holder = np.maximum.accumulate(np.where(ts == running, np.arange(len(ts)), 0))
        prior_holder = np.concatenate([[0], holder[:-1]])
        order_bad[positions] = ts <= prior
        clash_line[positions] = raw.lines[positions[prior_holder]]
        clash_same[positions] = ts == prior

    bad_rows: list[BadRow] = []
    for reason, mask in problems.items():
        for i in np.flatnonzero(mask):
            if reason.endswith("not a number") or reason.startswith("timestamp"):
                text = reason + _quote_source(raw, fmt, reason, i)
            elif reason.startswith("local time"):
                text = reason + _quote_source(raw, fmt, "timestamp", i)
            else:
                text = reason + f" (o={o[i]} h={h[i]} l={lo[i]} c={c[i]} v={v[i]})"
            bad_rows.append(BadRow(path, int(raw.lines[i]), text, raw.parquet))
    for i in np.flatnonzero(order_bad):
        verb = "repeats" if clash_same[i] else "is before"
        text = (
            f"bar close {pd.Timestamp(stamps[i], tz='UTC')} {verb} the bar on "
            f"{'row' if raw.parquet else 'line'} {clash_line[i]}: timestamps must be strictly "
            "increasing"
        )
        bad_rows.append(BadRow(path, int(raw.lines[i]), text, raw.parquet))
    problems["order"] = order_bad
    bad_rows.sort(key=lambda b: b.line)

    keep = np.ones(n, dtype=bool)
    for mask in problems.values():
        keep &= ~mask
    frame = numbers[keep]
    frame.index = closes[keep]
    return _Parsed(frame, opens_et[keep], raw.lines[keep], bad_rows, warnings, timeframe)


def _quote_source(raw: _Raw, fmt: BarFormat, reason: str, i: int) -> str:
    if reason.startswith("timestamp"):
        sources = [fmt.columns[k] for k in ("timestamp", "date", "time") if k in fmt.columns]
    else:
        sources = [fmt.columns[reason.split()[0]]]
    shown = " ".join(
        repr(raw.frame[s].iloc[i]) if not raw.parquet else str(raw.frame[s].iloc[i])
        for s in sources
    )
    return f": {shown}"


def _round_to_tick(
    frame: pd.DataFrame, lines: np.ndarray, path: Path, parquet: bool
) -> tuple[pd.DataFrame, int, int, list[BadRow], np.ndarray]:
    """Prices to the 0.01 tick and volume to whole shares, with counts and re-checks.

    Returns the rounded frame, the number of prices and volumes that needed rounding, the rows
    that break a rule after rounding, and a mask of the rows that do not.
    """
    prices = frame[["open", "high", "low", "close"]].to_numpy()
    cents = prices * 100
    # A value needs rounding when it is not a whole number of cents (float noise aside).
    prices_rounded = int((np.abs(cents - np.round(cents)) > 1e-6).sum())
    rounded = np.round(prices, 2)
    volume = frame["volume"].to_numpy()
    whole = np.rint(volume)
    volumes_rounded = int((np.abs(volume - whole) > 1e-9).sum())
    o, h, lo, c = rounded.T
    checks = {
        "a price rounds to 0.00 at the 0.01 tick": (rounded <= 0).any(axis=1),
        "after rounding to the tick, high is below max(open, close)": h < np.maximum(o, c),
        "after rounding to the tick, low is above min(open, close)": lo > np.minimum(o, c),
    }
    bad: list[BadRow] = []
    keep = np.ones(len(frame), dtype=bool)
    for reason, mask in checks.items():
        for i in np.flatnonzero(mask):
            text = f"{reason} (o={prices[i, 0]} h={prices[i, 1]} l={prices[i, 2]} c={prices[i, 3]})"
            bad.append(BadRow(path, int(lines[i]), text, parquet))
        keep &= ~mask
    out = pd.DataFrame(
        {"open": o, "high": h, "low": lo, "close": c, "volume": whole}, index=frame.index
    )
    return out, prices_rounded, volumes_rounded, bad, keep


# ---------------------------------------------------------------------------------------------
# Volume units


@dataclass(frozen=True)
class LotDetection:
    lots: np.ndarray  # per block: True when its volume is in lots
    ambiguous: np.ndarray  # per block: level between the two groups, label from its neighbours
    ratio: float | None  # high-group level / low-group level, when two units were found


def detect_lot_blocks(levels: Sequence[float], min_ratio: float = LOT_MIN_RATIO) -> LotDetection:
    """Which blocks (sessions, or parts of one) report volume in a unit ~100x too small.

    ``levels`` is each block's typical volume per bar, in time order. The rule, on
    ``x = log10(level)``:

    1. Sort the levels and cut them into a low and a high group where the gap between the
       group medians is largest relative to the pooled within-group standard deviation. The
       high group must hold at least max(3, 10%) of the blocks: a few busy days (earnings, an
       index event) must never make the rest of a file look like lots.
    2. If the group medians are less than ``min_ratio`` apart, there is one unit: no lots.
    3. Otherwise label each block by the nearer group median, smoothed in time by a two-state
       Viterbi pass in which a change of unit costs a fifth of the gap: a block halfway between
       the groups takes its neighbours' label (reported as ambiguous); a block clearly in one
       group keeps it, even alone.

    The low group is in lots. ``min_ratio`` is 8, not ~100, because the shared IB exports'
    "lot" days are not exactly lots: measured against same-day 5-minute files in shares they
    are 10x to 150x low, varying per bar (see the importer's report).
    """
    x = np.log10(np.maximum(np.asarray(levels, dtype=np.float64), 1e-9))
    n = len(x)
    none = LotDetection(np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), None)
    min_high = max(3, int(np.ceil(0.1 * n)))
    if n < min_high + 1:
        return none
    s = np.sort(x)
    cuts = np.arange(1, n - min_high + 1)  # low = s[:i], high = s[i:]
    csum, csq = np.cumsum(s), np.cumsum(s * s)
    n_lo, n_hi = cuts, n - cuts
    sum_lo, sq_lo = csum[cuts - 1], csq[cuts - 1]
    sum_hi, sq_hi = csum[-1] - sum_lo, csq[-1] - sq_lo
    within = (sq_lo - sum_lo**2 / n_lo) + (sq_hi - sum_hi**2 / n_hi)
    spread = np.sqrt(np.maximum(within, 0) / n) + 0.05  # floor: levels are noisy anyway
    med_lo = (s[(n_lo - 1) // 2] + s[n_lo // 2]) / 2
    med_hi = (s[cuts + (n_hi - 1) // 2] + s[cuts + n_hi // 2]) / 2
    best = int(np.argmax((med_hi - med_lo) / spread))
    low, high = med_lo[best], med_hi[best]
    gap = high - low
    if gap < np.log10(min_ratio):
        return none

    emission = np.stack([np.abs(x - high), np.abs(x - low)], axis=1)  # state 0 shares, 1 lots
    switch = 0.2 * gap
    cost = emission[0].copy()
    back = np.zeros((n, 2), dtype=np.int8)
    for i in range(1, n):  # per block, not per row: a few hundred steps at most
        stay, flip = cost, cost[::-1] + switch
        back[i] = np.where(stay <= flip, [0, 1], [1, 0])
        cost = np.minimum(stay, flip) + emission[i]
    state = np.zeros(n, dtype=np.int8)
    state[-1] = int(np.argmin(cost))
    for i in range(n - 1, 0, -1):
        state[i - 1] = back[i, state[i]]
    middle = (low + high) / 2
    ambiguous = np.abs(x - middle) < gap / 6
    return LotDetection(state.astype(bool), ambiguous, float(10**gap))


def find_unit_break(volume: np.ndarray, min_bars: int = 30, min_ratio: float = 10.0) -> int | None:
    """Position where a session's volume level jumps by ``min_ratio`` or more, if any.

    Compares the geometric mean of the bars with volume before and after each candidate cut
    (at least ``min_bars`` on each side, so the opening and closing auctions cannot pass for a
    change of unit) and returns the index into ``volume`` of the first bar after the best cut.
    """
    volume = np.asarray(volume, dtype=np.float64)
    positive = np.flatnonzero(volume > 0)
    m = len(positive)
    if m < 2 * min_bars:
        return None
    logs = np.log10(volume[positive])
    csum = np.concatenate([[0.0], np.cumsum(logs)])
    k = np.arange(min_bars, m - min_bars + 1)
    diff = (csum[m] - csum[k]) / (m - k) - csum[k] / k
    best = int(np.argmax(np.abs(diff)))
    if abs(diff[best]) < np.log10(min_ratio):
        return None
    return int(positive[k[best]])


@dataclass
class _LotResult:
    factor: np.ndarray  # per bar: 1 or LOT_SIZE
    converted: list[str]
    ambiguous: list[str]
    ratio: float | None
    runs: list[str] = field(default_factory=list)  # ``converted`` as runs of adjacent blocks


def normalise_lot_volume(
    opens_et: pd.DatetimeIndex, volume: np.ndarray, interval: pd.Timedelta
) -> _LotResult:
    """Find lot blocks in intraday bars (New York open times) and the per-bar volume factor."""
    n = len(volume)
    result = _LotResult(np.ones(n), [], [], None)
    if n == 0:
        return result
    minutes = np.asarray(opens_et.hour * 60 + opens_et.minute)
    rth = (minutes >= RTH_START_MIN) & (minutes < RTH_END_MIN)
    day_codes, _ = pd.factorize(opens_et.normalize(), sort=True)
    block = day_codes.astype(np.int64) * 2  # even: a session; odd: its part after a break
    bounds = np.flatnonzero(np.diff(day_codes)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [n]])
    for a, b in zip(starts, ends):  # per session
        inside = np.flatnonzero(rth[a:b]) + a
        cut = find_unit_break(volume[inside]) if len(inside) else None
        if cut is not None:
            block[inside[cut] : b] += 1
    codes, blocks = pd.factorize(block, sort=True)
    # Level: volume per bar interval spanned by the block's regular-hours bars. A per-interval
    # mean rather than a median, because a sparse feed prints only the minutes it traded.
    use = rth.copy()
    no_rth = np.bincount(codes, weights=rth, minlength=len(blocks)) == 0
    use |= no_rth[codes]
    step = interval.value
    t = opens_et.as_unit("ns").asi8
    total = np.bincount(codes[use], weights=volume[use], minlength=len(blocks))
    first = pd.Series(t[use]).groupby(codes[use]).min().reindex(range(len(blocks))).to_numpy()
    last = pd.Series(t[use]).groupby(codes[use]).max().reindex(range(len(blocks))).to_numpy()
    spans = (last - first) // step + 1
    levels = np.maximum(total, 1.0) / spans
    found = detect_lot_blocks(levels)
    result.ratio = found.ratio
    if not found.lots.any() and not found.ambiguous.any():
        return result
    result.factor = np.where(found.lots[codes], float(LOT_SIZE), 1.0)
    run: list[str] = []
    for j in range(len(blocks)):
        if not found.lots[j] and run:
            result.runs.append(_run_label(run))
            run = []
        if not (found.lots[j] or found.ambiguous[j]):
            continue
        members = np.flatnonzero(codes == j)
        day = opens_et[members[0]].strftime("%Y-%m-%d")
        whole = len(members) == np.count_nonzero(day_codes == day_codes[members[0]])
        label = day
        if not whole:
            first, last = opens_et[members[0]], opens_et[members[-1]]
            label = f"{day} {first:%H:%M}-{last:%H:%M}"
        if found.lots[j]:
            result.converted.append(label)
            run.append(label)
        if found.ambiguous[j]:
            result.ambiguous.append(label + (" (converted)" if found.lots[j] else " (left as is)"))
    if run:
        result.runs.append(_run_label(run))
    return result


def _run_label(labels: list[str]) -> str:
    if len(labels) == 1:
        return labels[0]
    return f"{labels[0]} .. {labels[-1]} ({len(labels)} blocks)"


# ---------------------------------------------------------------------------------------------
# Catalog writing


def _bars_frame(bars: list[Bar]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "open": [b.open.as_double() for b in bars],
            "high": [b.high.as_double() for b in bars],
            "low": [b.low.as_double() for b in bars],
            "close": [b.close.as_double() for b in bars],
            "volume": [b.volume.as_double() for b in bars],
        },
        index=pd.DatetimeIndex([b.ts_event for b in bars]).tz_localize("UTC"),
    )


def _write_bars(
    catalog: ParquetDataCatalog,
    instrument: Instrument,
    bar_type: BarType,
    frame: pd.DataFrame,
    replace: bool,
    path: Path,
    summary: ImportSummary,
) -> None:
    """Write ``frame`` under ``bar_type`` applying the re-import policy in the module docstring."""
    identifier = str(bar_type)
    first, last = frame.index[0], frame.index[-1]
    overlaps = [
        (a, b)
        for a, b in catalog.get_intervals(Bar, identifier)
        if a <= last.value and b >= first.value
    ]
    if not overlaps:
        catalog.write_data(bars_from_frame(instrument, bar_type, frame))
        return
    existing_bars = catalog.bars(bar_types=[identifier], start=first, end=last)
    existing = _bars_frame(existing_bars) if existing_bars else frame.iloc[:0]
    common = existing.index.intersection(frame.index)
    if replace:
        merged = frame
        summary.existing_replaced = len(existing)
    else:
        a, b = frame.loc[common], existing.loc[common]
        differs = (
            np.round(a[["open", "high", "low", "close"]].to_numpy(), 2)
            != np.round(b[["open", "high", "low", "close"]].to_numpy(), 2)
        ).any(axis=1)
        differs |= np.rint(a["volume"].to_numpy()) != np.rint(b["volume"].to_numpy())
        if differs.any():
            problems = [
                f"{ts}: catalog o={e.open} h={e.high} l={e.low} c={e.close} v={e.volume:.0f}, "
                f"file o={f.open} h={f.high} l={f.low} c={f.close} v={f.volume:.0f}"
                for ts, e, f in zip(
                    common[differs][:MAX_LISTED_PROBLEMS],
                    b[differs].head(MAX_LISTED_PROBLEMS).itertuples(),
                    a[differs].head(MAX_LISTED_PROBLEMS).itertuples(),
                )
            ]
            head = (
                f"the catalog already holds different {identifier} bars at {int(differs.sum())} of "
                f"the {len(common)} timestamps this file shares with it ({first} .. {last}); "
                "nothing was written. Pass replace=True (--replace) to replace the catalog's bars "
                "in that range with this file's."
            )
            raise BarImportError(path, [head, *problems], total=int(differs.sum()) + 1)
        extra = existing.loc[existing.index.difference(frame.index)]
        summary.existing_identical = len(common)
        summary.existing_kept = len(extra)
        merged = pd.concat([frame, extra]).sort_index()
    catalog.delete_data_range(Bar, identifier, first, last)
    try:
        catalog.write_data(bars_from_frame(instrument, bar_type, merged))
    except Exception:
        # Put back what was there rather than leave a hole in the catalog.
        if existing_bars:
            catalog.write_data(existing_bars)
        raise


# ---------------------------------------------------------------------------------------------
# Public entry points


def import_file(
    path: Path | str,
    catalog: ParquetDataCatalog,
    *,
    fmt: BarFormat | str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
    tz: str | None = None,
    stamp: str | None = None,
    columns: dict[str, str] | None = None,
    timestamp_format: str | None = None,
    skip_bad_rows: bool = False,
    replace: bool = False,
    convert_lots: bool = True,
) -> ImportSummary:
    """Import one bar file into ``catalog``; raises ``BarImportError`` with every problem.

    ``fmt`` is a preset name or a ``BarFormat`` (default: detected). ``columns`` (target ->
    source column, targets ``timestamp`` or ``date``/``time``, ``open high low close
    volume``) and ``timestamp_format`` adjust it, as do ``tz``, ``stamp`` and ``timeframe``.
    """
    path = Path(path)
    if not path.is_file():
        raise BarImportError(path, ["no such file"])
    if isinstance(fmt, str):
        if fmt not in PRESETS:
            raise BarImportError(path, [f"unknown format {fmt!r}; one of {', '.join(PRESETS)}"])
        fmt = PRESETS[fmt]
    fmt = fmt or detect_format(path)
    if tz is not None:
        fmt = fmt.with_options(tz=AWARE if tz == AWARE else _resolve_tz(tz))
    if columns:
        unknown = set(columns) - {"timestamp", "date", "time", *TARGETS}
        if unknown:
            raise BarImportError(path, [f"unknown column target(s) {sorted(unknown)}"])
        mapping = dict(fmt.columns)
        if {"date", "time"} & set(columns):
            mapping.pop("timestamp", None)
        if "timestamp" in columns:
            mapping.pop("date", None)
            mapping.pop("time", None)
        mapping.update(columns)
        if not mapping.get("volume"):  # "volume=" means the file has none
            mapping.pop("volume", None)
        fmt = dc_replace(fmt, columns=mapping)
    if timestamp_format is not None:
        fmt = dc_replace(fmt, timestamp_format=timestamp_format)
    if stamp is not None:
        if stamp not in ("open", "close"):
            raise BarImportError(path, [f"stamp must be 'open' or 'close', got {stamp!r}"])
        fmt = fmt.with_options(stamp=stamp)
    if timeframe is not None and timeframe not in BAR_SPECS:
        raise BarImportError(
            path, [f"timeframe must be one of {', '.join(BAR_SPECS)}, got {timeframe!r}"]
        )
    symbol = symbol or symbol_from_path(path, fmt)
    try:
        instrument = make_instrument(symbol)
    except ListingError as exc:
        raise BarImportError(path, [str(exc)]) from None

    raw = _read(path, fmt)
    parsed = _parse(raw, fmt, path, timeframe)
    bar_type = bar_type_for(instrument.id, parsed.timeframe)
    summary = ImportSummary(
        path=path,
        format=fmt.name,
        symbol=symbol,
        timeframe=parsed.timeframe,
        bar_type=str(bar_type),
        rows_read=len(raw.frame),
        warnings=list(parsed.warnings),
    )
    frame = parsed.frame
    opens_et = parsed.opens_et
    if fmt.detect_lots and parsed.timeframe != "1day" and len(frame):
        lots = normalise_lot_volume(
            opens_et, frame["volume"].to_numpy(), BAR_INTERVALS[parsed.timeframe]
        )
        summary.volume_unit_ratio = lots.ratio
        summary.volume_days_ambiguous = lots.ambiguous
        if convert_lots:
            summary.volume_days_converted = lots.converted
            summary.volume_converted_runs = lots.runs
            frame = frame.assign(volume=frame["volume"].to_numpy() * lots.factor)
        elif lots.converted:
            summary.warnings.append(
                f"volume looks {LOT_SIZE}x too small on {len(lots.converted)} block(s), left "
                "as is: " + ", ".join(lots.runs)
            )
    frame, summary.prices_rounded, summary.volumes_rounded, tick_bad, fine = _round_to_tick(
        frame, parsed.lines, path, raw.parquet
    )
    bad = sorted(parsed.bad + tick_bad, key=lambda b: b.line)
    if bad and not skip_bad_rows:
        raise BarImportError(path, [str(b) for b in bad])
    summary.bad_rows = bad
    frame, opens_et = frame[fine], opens_et[fine]
    if len(frame) == 0:
        raise BarImportError(path, ["no valid bars to write", *[str(b) for b in bad]])

    write_instrument(catalog, instrument)
    _write_bars(catalog, instrument, bar_type, frame, replace, path, summary)
    summary.rows_written = len(frame)
    summary.first, summary.last = frame.index[0], frame.index[-1]
    summary.sessions = (
        int(opens_et.normalize().nunique()) if parsed.timeframe != "1day" else len(frame)
    )
    return summary


def iter_bar_files(paths: Iterable[Path | str]) -> Iterator[tuple[Path, bool]]:
    """Files to import: each given file, and every bar-like file under a given directory.

    Yields ``(path, explicit)``; files found in a directory are not explicit, so the caller can
    skip those no preset recognises (a README, a licence) instead of failing.
    """
    for entry in paths:
        entry = Path(entry)
        if entry.is_dir():
            for found in sorted(p for p in entry.rglob("*") if p.is_file() and is_bar_file_name(p)):
                yield found, False
        else:
            yield entry, True


@dataclass(frozen=True)
class CatalogBarType:
    bar_type: str
    count: int
    first: pd.Timestamp
    last: pd.Timestamp
    files: int


def list_bar_types(catalog: ParquetDataCatalog) -> list[CatalogBarType]:
    """Every bar type in the catalog with its bar count and first/last bar close."""
    import pyarrow.parquet as pq

    root = Path(catalog.path) / "data" / "bar"
    rows = []
    if not root.is_dir():
        return rows
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(directory.glob("*.parquet"))
        if not files:
            continue
        stamps = np.concatenate(
            [pq.read_table(f, columns=["ts_event"]).column("ts_event").to_numpy() for f in files]
        )
        if len(stamps) == 0:
            continue
        rows.append(
            CatalogBarType(
                directory.name,
                len(stamps),
                pd.Timestamp(int(stamps.min()), tz="UTC"),
                pd.Timestamp(int(stamps.max()), tz="UTC"),
                len(files),
            )
        )
    return rows
