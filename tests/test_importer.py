"""Tests for the bar importer: validation, zones, stamping, volume units, re-import, CLI, real
data."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from catalog.__main__ import main
from catalog.importer import PRESETS
from catalog.importer import BarImportError
from catalog.importer import ImportSummary
from catalog.importer import detect_format
from catalog.importer import detect_lot_blocks
from catalog.importer import find_unit_break
from catalog.importer import import_file
from catalog.importer import iter_bar_files
from catalog.importer import list_bar_types
from catalog.importer import normalise_lot_volume
from catalog.store import open_catalog

REPO = Path(__file__).resolve().parents[1]
HEADER = "timestamp,open,high,low,close,volume"
GOOD_ROWS = [
    "2024-03-04 09:30:00,100.00,100.50,99.50,100.25,1000",
    "2024-03-04 09:31:00,100.25,100.75,100.00,100.50,1100",
    "2024-03-04 09:32:00,100.50,101.00,100.25,100.75,1200",
    "2024-03-04 09:33:00,100.75,101.25,100.50,101.00,1300",
]


def _write(path: Path, lines: list[str], header: str | None = HEADER) -> Path:
    text = "\n".join(([header] if header else []) + lines) + "\n"
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def _bars(catalog, bar_type: str) -> pd.DataFrame:
    """The catalog's bars as cents-rounded prices and whole-share volumes."""
    bars = catalog.bars(bar_types=[bar_type])
    return pd.DataFrame(
        {
            "open": np.round([b.open.as_double() for b in bars], 2),
            "high": np.round([b.high.as_double() for b in bars], 2),
            "low": np.round([b.low.as_double() for b in bars], 2),
            "close": np.round([b.close.as_double() for b in bars], 2),
            "volume": np.rint([b.volume.as_double() for b in bars]),
        },
        index=pd.DatetimeIndex([b.ts_event for b in bars]).tz_localize("UTC"),
    )


@pytest.fixture
def catalog(tmp_path):
    return open_catalog(tmp_path / "catalog")


def _import(path: Path, catalog, **kwargs) -> ImportSummary:
    kwargs.setdefault("fmt", "generic_csv")
    kwargs.setdefault("symbol", "SPY")
    kwargs.setdefault("timeframe", "1min")  # None: infer it from the spacing
    return import_file(path, catalog, **kwargs)


# --- validation: every rule, reported with file and physical line ----------------------------

BAD_ROW_CASES = [
    # (replacement for data row 3 = line 4, expected reason)
    ("2024-03-04 09:32:00,100.50,100.60,100.25,100.75,1200", "high is below max(open, close)"),
    ("2024-03-04 09:32:00,100.50,101.00,100.60,100.55,1200", "low is above min(open, close)"),
    ("2024-03-04 09:32:00,0,101.00,0,100.75,1200", "a price is <= 0"),
    ("2024-03-04 09:32:00,-1,101.00,-2,100.75,1200", "a price is <= 0"),
    ("2024-03-04 09:32:00,100.50,101.00,100.25,100.75,-5", "volume is negative"),
    ("2024-03-04 09:32:00,abc,101.00,100.25,100.75,1200", "open is missing or not a number: 'abc'"),
    ("2024-03-04 09:32:00,100.50,,100.25,100.75,1200", "high is missing or not a number"),
    (
        "2024-03-04 9h32,100.50,101.00,100.25,100.75,1200",
        "timestamp cannot be parsed: '2024-03-04 9h32'",
    ),
    ("2024-03-04 09:31:00,100.50,101.00,100.25,100.75,1200", "repeats the bar on line 3"),
    ("2024-03-04 09:30:30,100.50,101.00,100.25,100.75,1200", "is before the bar on line 3"),
]


@pytest.mark.parametrize("row,reason", BAD_ROW_CASES)
def test_each_rule_reports_file_and_line(tmp_path, catalog, row, reason):
    rows = list(GOOD_ROWS)
    rows[2] = row
    path = _write(tmp_path / "bars.csv", rows)
    with pytest.raises(BarImportError) as err:
        _import(path, catalog)
    (problem,) = err.value.problems
    assert problem.startswith(f"{path}:4: ") and reason in problem
    assert problem in str(err.value)
    assert not catalog.bars(), "a failed import must write nothing"


def test_nonexistent_local_time_at_dst_change_is_a_bad_row(tmp_path, catalog):
    rows = [
        "2024-03-10 01:59:00,100,101,99,100,10",
        "2024-03-10 02:30:00,100,101,99,100,10",  # clocks jump 02:00 -> 03:00 ET
        "2024-03-10 03:00:00,100,101,99,100,10",
    ]
    path = _write(tmp_path / "dst.csv", rows)
    with pytest.raises(BarImportError, match=r"dst.csv:3: local time does not exist"):
        _import(path, catalog)


def test_the_repeated_fall_back_hour_is_resolved_and_a_lone_one_reported(tmp_path, catalog):
    rows = ["2024-11-03 01:30:00,100,101,99,100,10", "2024-11-03 01:30:00,100,101,99,100,10"]
    summary = _import(_write(tmp_path / "fall.csv", rows), catalog)
    assert list(_bars(catalog, summary.bar_type).index) == [
        pd.Timestamp("2024-11-03 05:31", tz="UTC"),  # EDT
        pd.Timestamp("2024-11-03 06:31", tz="UTC"),  # EST, an hour later
    ]
    lone = _write(tmp_path / "lone.csv", [rows[0]])
    with pytest.raises(BarImportError, match=r"lone.csv:2: local time does not exist or is ambig"):
        _import(lone, catalog)


def test_blank_lines_keep_physical_line_numbers(tmp_path, catalog):
    rows = [GOOD_ROWS[0], "", GOOD_ROWS[1], "   ", "2024-03-04 09:32:00,1,0.5,1,1,1"]
    path = _write(tmp_path / "blank.csv", rows)
    with pytest.raises(BarImportError) as err:
        _import(path, catalog)
    assert f"{path}:6: high is below max(open, close)" in str(err.value)


def test_a_broken_line_structure_names_the_line(tmp_path, catalog):
    path = _write(tmp_path / "extra.csv", [*GOOD_ROWS[:2], GOOD_ROWS[2] + ",7"])
    with pytest.raises(BarImportError, match=r"line 4, saw 7"):
        _import(path, catalog)


def test_all_problems_are_listed_up_to_fifty_then_counted(tmp_path, catalog):
    rows = [f"2024-03-04 10:{m:02d}:00,10,9,8,10,1" for m in range(60)]  # every high < open
    path = _write(tmp_path / "many.csv", rows)
    with pytest.raises(BarImportError) as err:
        _import(path, catalog)
    assert len(err.value.problems) == 60
    message = str(err.value)
    assert "import failed (60 problems)" in message
    assert f"{path}:51:" in message and f"{path}:52:" not in message
    assert "... and 10 more" in message


def test_skip_bad_rows_writes_the_rest_and_reports_each_skipped_row(tmp_path, catalog):
    rows = list(GOOD_ROWS)
    rows[1] = "2024-03-04 09:31:00,100.25,100.00,100.00,100.50,1100"  # high < close
    rows[3] = "2024-03-04 09:33:00,100.75,101.25,100.50,101.00,-1"
    path = _write(tmp_path / "skip.csv", rows)
    summary = _import(path, catalog, skip_bad_rows=True)
    assert (summary.rows_read, summary.rows_written) == (4, 2)
    assert [(b.line, b.reason.split(" (")[0]) for b in summary.bad_rows] == [
        (3, "high is below max(open, close)"),
        (5, "volume is negative"),
    ]
    assert str(summary.bad_rows[0]).startswith(f"{path}:3: ")
    assert len(catalog.bars()) == 2


def test_gzipped_csv_imports_like_the_plain_file(tmp_path):
    plain = _write(tmp_path / "a.csv", GOOD_ROWS)
    packed = _write(tmp_path / "b.csv.gz", GOOD_ROWS)
    cat_a, cat_b = open_catalog(tmp_path / "ca"), open_catalog(tmp_path / "cb")
    _import(plain, cat_a)
    summary = _import(packed, cat_b)
    assert summary.rows_written == 4
    bar_type = "SPY.SIM-1-MINUTE-LAST-EXTERNAL"
    pd.testing.assert_frame_equal(_bars(cat_a, bar_type), _bars(cat_b, bar_type))


def test_gzipped_bad_row_still_names_the_line(tmp_path, catalog):
    rows = list(GOOD_ROWS)
    rows[0] = "2024-03-04 09:30:00,100.00,99.00,99.50,100.25,1000"
    path = _write(tmp_path / "bad.csv.gz", rows)
    with pytest.raises(BarImportError, match=r"bad.csv.gz:2: high is below"):
        _import(path, catalog)


# --- zones and stamping ---------------------------------------------------------------------


def test_naive_eastern_across_the_dst_change(tmp_path, catalog):
    rows = [
        "2024-03-08 09:30:00,100,101,99,100,10",  # EST, UTC-5
        "2024-03-11 09:30:00,100,101,99,100,10",  # EDT, UTC-4
    ]
    summary = _import(_write(tmp_path / "et.csv", rows), catalog, tz="America/New_York")
    stamps = _bars(catalog, summary.bar_type).index
    assert list(stamps) == [
        pd.Timestamp("2024-03-08 14:31", tz="UTC"),
        pd.Timestamp("2024-03-11 13:31", tz="UTC"),
    ]


def test_naive_utc_and_tz_aware_sources(tmp_path):
    naive_utc = _write(tmp_path / "utc.csv", ["2024-03-11 13:30:00,100,101,99,100,10"])
    aware = _write(tmp_path / "aware.csv", ["2024-03-11T09:30:00-04:00,100,101,99,100,10"])
    cat_a, cat_b = open_catalog(tmp_path / "ca"), open_catalog(tmp_path / "cb")
    a = _import(naive_utc, cat_a, tz="UTC", timeframe="1min")
    b = _import(aware, cat_b, tz="aware", timeframe="1min")
    assert a.first == b.first == pd.Timestamp("2024-03-11 13:31", tz="UTC")


def test_zone_mismatches_are_explained(tmp_path, catalog):
    aware = _write(tmp_path / "aware.csv", ["2024-03-11T09:30:00-04:00,100,101,99,100,10"])
    with pytest.raises(BarImportError, match="use --tz aware"):
        _import(aware, catalog, tz="UTC", timeframe="1min")
    naive = _write(tmp_path / "naive.csv", ["2024-03-11 09:30:00,100,101,99,100,10"])
    with pytest.raises(BarImportError, match="have no zone"):
        _import(naive, catalog, tz="aware", timeframe="1min")


def test_open_stamped_bars_move_to_their_close_and_close_stamped_stay(tmp_path):
    rows = ["2024-03-04 09:30:00,100,101,99,100,10", "2024-03-04 09:35:00,100,101,99,100,10"]
    path = _write(tmp_path / "five.csv", rows)
    cat_open, cat_close = open_catalog(tmp_path / "o"), open_catalog(tmp_path / "c")
    opened = _import(path, cat_open, stamp="open", timeframe=None)
    closed = _import(path, cat_close, stamp="close", timeframe=None)
    assert opened.timeframe == closed.timeframe == "5min"  # inferred from the spacing
    assert opened.first == pd.Timestamp("2024-03-04 14:35", tz="UTC")
    assert closed.first == pd.Timestamp("2024-03-04 14:30", tz="UTC")


def test_daily_bars_are_stamped_at_the_nyse_close(tmp_path, catalog):
    rows = [
        "20240102,470,475,469,472,100",  # winter: 16:00 EST = 21:00 UTC
        "20240703,545,546,544,545.5,100",  # half-day: 13:00 EDT
        "20240705,546,547,545,546.5,100",  # summer: 16:00 EDT = 20:00 UTC
        "20240704,546,547,545,546.5,100",  # holiday, and out of order
    ]
    path = _write(tmp_path / "spy.us.txt", rows, header="Date,Open,High,Low,Close,Volume,OpenInt")
    assert detect_format(path).name == "stooq_daily"
    summary = import_file(path, catalog, skip_bad_rows=True)
    stamps = list(_bars(catalog, "SPY.SIM-1-DAY-LAST-EXTERNAL").index)
    assert stamps == [
        pd.Timestamp("2024-01-02 21:00", tz="UTC"),
        pd.Timestamp("2024-07-03 17:00", tz="UTC"),
        pd.Timestamp("2024-07-05 20:00", tz="UTC"),
    ]
    assert [b.line for b in summary.bad_rows] == [5]
    assert "is before the bar on line 4" in summary.bad_rows[0].reason
    assert summary.warnings == [
        "1 weekday date(s) are not NYSE sessions, stamped 16:00 New York: 2024-07-04"
    ]


def test_weekend_dates_are_bad_rows(tmp_path, catalog):
    path = _write(
        tmp_path / "spy.us.txt",
        ["20240106,1,1,1,1,1"],
        header="Date,Open,High,Low,Close,Volume,OpenInt",
    )
    with pytest.raises(BarImportError, match=r"spy.us.txt:2: the date is a Saturday or Sunday"):
        import_file(path, catalog)


# --- tick rounding --------------------------------------------------------------------------


def test_prices_are_rounded_to_the_tick_and_counted(tmp_path, catalog):
    rows = [
        "2024-03-04 09:30:00,100.004,100.506,99.50,100.25,1000.4",
        "2024-03-04 09:31:00,100.25,100.75,100.00,100.50,1100",
    ]
    summary = _import(_write(tmp_path / "r.csv", rows), catalog)
    assert (summary.prices_rounded, summary.volumes_rounded) == (2, 1)
    first = _bars(catalog, summary.bar_type).iloc[0]
    assert (first.open, first.high, first.volume) == (100.0, 100.51, 1000.0)


def test_a_price_that_rounds_to_zero_is_a_bad_row(tmp_path, catalog):
    rows = ["2024-03-04 09:30:00,0.004,0.004,0.004,0.004,1", GOOD_ROWS[1]]
    with pytest.raises(BarImportError, match=r"r.csv:2: a price rounds to 0.00"):
        _import(_write(tmp_path / "r.csv", rows), catalog)


# --- re-import and overlapping files --------------------------------------------------------


def test_importing_the_same_file_twice_changes_nothing(tmp_path, catalog):
    path = _write(tmp_path / "a.csv", GOOD_ROWS)
    _import(path, catalog)
    before = _bars(catalog, "SPY.SIM-1-MINUTE-LAST-EXTERNAL")
    again = _import(path, catalog)
    assert (again.existing_identical, again.existing_kept) == (4, 0)
    pd.testing.assert_frame_equal(_bars(catalog, "SPY.SIM-1-MINUTE-LAST-EXTERNAL"), before)


def test_overlapping_files_merge_when_identical_and_refuse_when_conflicting(tmp_path, catalog):
    bar_type = "SPY.SIM-1-MINUTE-LAST-EXTERNAL"
    _import(_write(tmp_path / "a.csv", GOOD_ROWS[:3]), catalog)
    merged = _import(_write(tmp_path / "b.csv", GOOD_ROWS[1:]), catalog)  # shares two bars
    assert (merged.existing_identical, merged.existing_kept) == (2, 0)
    assert len(_bars(catalog, bar_type)) == 4

    conflicting = [GOOD_ROWS[1].replace(",1100", ",999"), GOOD_ROWS[2]]
    with pytest.raises(BarImportError) as err:
        _import(_write(tmp_path / "c.csv", conflicting), catalog)
    message = str(err.value)
    assert "already holds different" in message and "--replace" in message
    assert "catalog o=100.25" in message and "v=1100" in message and "v=999" in message
    assert _bars(catalog, bar_type)["volume"].tolist() == [1000, 1100, 1200, 1300]

    replaced = _import(_write(tmp_path / "c.csv", conflicting), catalog, replace=True)
    assert replaced.existing_replaced == 2
    assert _bars(catalog, bar_type)["volume"].tolist() == [1000, 999, 1200, 1300]


def test_interleaved_files_merge(tmp_path, catalog):
    _import(_write(tmp_path / "a.csv", GOOD_ROWS[0::2]), catalog, timeframe="1min")
    summary = _import(_write(tmp_path / "b.csv", GOOD_ROWS[1::2]), catalog, timeframe="1min")
    assert (summary.existing_identical, summary.existing_kept) == (0, 1)
    bars = _bars(catalog, "SPY.SIM-1-MINUTE-LAST-EXTERNAL")
    assert bars["volume"].tolist() == [1000, 1100, 1200, 1300]


def test_unknown_symbol_is_refused_with_the_listing_hint(tmp_path, catalog):
    with pytest.raises(BarImportError, match="not in .*listings.csv"):
        _import(_write(tmp_path / "a.csv", GOOD_ROWS), catalog, symbol="NOPE")


# --- format detection -----------------------------------------------------------------------

FIRST_LINES = {
    "ib_alert_overlay": ("SPY_1min.csv", "datetime,open,high,low,close,volume"),
    "pixie26_et_ext": ("SPY_1min_x.csv", "\ufeffDateTime,Symbol,Open,High,Low,Close,Volume,Trades"),
    "ninjatrader_utc": (
        "nt-spy-minute-2011.csv",
        "20110103 090100;126.35;126.39;126.35;126.39;1579",
    ),
    "stooq_etf_daily": (
        "spy.us.txt",
        "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>",
    ),
    "stooq_daily": ("aapl.us.txt", "Date,Open,High,Low,Close,Volume,OpenInt"),
    "cboe_vix_daily": ("VIX_History.csv", "DATE,OPEN,HIGH,LOW,CLOSE"),
}


@pytest.mark.parametrize("name", sorted(FIRST_LINES))
def test_presets_are_detected_from_the_first_line(tmp_path, name):
    file_name, line = FIRST_LINES[name]
    path = tmp_path / file_name
    path.write_text(line + "\r\n", encoding="utf-8")
    assert detect_format(path).name == name


def test_undetectable_file_asks_for_a_format(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n")
    with pytest.raises(BarImportError, match="pass --format"):
        detect_format(path)


# --- volume units ---------------------------------------------------------------------------


def _levels(rng: np.random.Generator, n: int, base: float = 5000.0) -> np.ndarray:
    return base * np.exp(rng.normal(0, 0.35, n))  # day-to-day spread of a liquid name


def test_detector_leaves_a_single_unit_alone():
    rng = np.random.default_rng(1)
    found = detect_lot_blocks(_levels(rng, 150) * np.linspace(1, 3, 150))  # with a trend
    assert not found.lots.any() and found.ratio is None


@pytest.mark.parametrize("start,stop", [(0, 90), (60, 63), (120, 150), (75, 76)])
def test_detector_finds_lot_runs_anywhere(start, stop):
    rng = np.random.default_rng(start)
    levels = _levels(rng, 150)
    levels[start:stop] /= 100
    found = detect_lot_blocks(levels)
    assert np.flatnonzero(found.lots).tolist() == list(range(start, stop))
    assert 40 < found.ratio < 250


def test_detector_never_converts_a_file_because_of_a_few_busy_days():
    rng = np.random.default_rng(7)
    levels = _levels(rng, 200)
    levels[[50, 51, 120]] *= 30  # earnings, an index rebalance
    assert not detect_lot_blocks(levels).lots.any()


def test_unit_break_inside_a_session():
    rng = np.random.default_rng(3)
    volume = np.r_[rng.integers(10, 60, 62), rng.integers(2000, 6000, 328)].astype(float)
    assert find_unit_break(volume) == 62
    assert find_unit_break(rng.integers(1000, 5000, 390).astype(float)) is None
    # The closing auction alone is not a change of unit.
    busy_close = np.r_[rng.integers(1000, 2000, 380), rng.integers(50_000, 90_000, 10)]
    assert find_unit_break(busy_close.astype(float)) is None


def test_normalise_lot_volume_on_synthetic_minutes():
    rng = np.random.default_rng(11)
    sessions = pd.bdate_range("2025-01-06", periods=40)
    opens, volume = [], []
    for i, day in enumerate(sessions):
        minutes = pd.date_range(day + pd.Timedelta("09:30:00"), periods=390, freq="1min")
        v = rng.integers(2000, 8000, 390).astype(float)
        if i < 20:
            v = np.rint(v / 100)  # in lots
        if i == 30:
            v[:60] = np.rint(v[:60] / 100)  # the first hour in lots
        opens.append(minutes)
        volume.append(v)
    opens_et = pd.DatetimeIndex(np.concatenate(opens)).tz_localize("America/New_York")
    found = normalise_lot_volume(opens_et, np.concatenate(volume), pd.Timedelta(minutes=1))
    expected = [d.strftime("%Y-%m-%d") for d in sessions[:20]]
    expected.append(f"{sessions[30]:%Y-%m-%d} 09:30-10:29")
    assert found.converted == expected
    assert found.factor.reshape(40, 390)[:20].min() == 100
    assert found.factor.reshape(40, 390)[30, :60].min() == 100
    assert found.factor.reshape(40, 390)[30, 60:].max() == 1


# --- CLI ------------------------------------------------------------------------------------


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, console=Console(file=out, width=250, color_system=None))
    return code, out.getvalue()


def test_cli_reports_a_bad_row_with_file_and_line_and_fails(tmp_path):
    rows = list(GOOD_ROWS)
    rows[1] = "2024-03-04 09:31:00,100.25,100.00,100.00,100.50,1100"
    path = _write(tmp_path / "bad.csv", rows)
    code, out = _run(
        [
            "import",
            str(path),
            "--catalog",
            str(tmp_path / "c"),
            "--format",
            "generic_csv",
            "--symbol",
            "SPY",
        ]
    )
    assert code == 1
    assert f"error: {path}: import failed (1 problem)" in out
    assert f"{path}:3: high is below max(open, close)" in out
    assert "1 file(s) failed" in out


def test_cli_skip_bad_rows_lists_every_skipped_row(tmp_path):
    rows = list(GOOD_ROWS)
    rows[1] = "2024-03-04 09:31:00,100.25,100.00,100.00,100.50,1100"
    path = _write(tmp_path / "bad.csv", rows)
    argv = [
        "import",
        str(path),
        "--catalog",
        str(tmp_path / "c"),
        "--format",
        "generic_csv",
        "--symbol",
        "SPY",
        "--skip-bad-rows",
    ]
    code, out = _run(argv)
    assert code == 0
    assert "skipped 1 bad row(s)" in out and f"{path}:3: high is below" in out
    code, out = _run(["list", "--catalog", str(tmp_path / "c")])
    assert code == 0 and "SPY.SIM-1-MINUTE-LAST-EXTERNAL" in out and "2024-03-04 14:31" in out


def test_cli_missing_path_and_missing_catalog(tmp_path):
    code, out = _run(["import", str(tmp_path / "nope.csv"), "--catalog", str(tmp_path / "c")])
    assert code == 1 and "no such file or directory" in out
    code, out = _run(["list", "--catalog", str(tmp_path / "absent")])
    assert code == 1 and "no such catalog folder" in out


def test_cli_undetectable_explicit_file_fails_clearly(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    code, out = _run(["import", str(path), "--catalog", str(tmp_path / "c")])
    assert code == 1 and "no preset matches the first line 'a,b'; pass --format NAME" in out


def test_cli_usage_errors_exit_2(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "catalog",
            "import",
            "x.csv",
            "--catalog",
            str(tmp_path),
            "--timeframe",
            "2min",
        ],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "invalid choice: '2min'" in proc.stderr


def test_cli_formats_lists_every_preset():
    code, out = _run(["formats"])
    assert code == 0 and all(name in out for name in PRESETS)


# --- real data ------------------------------------------------------------------------------

FAMILIES = ("intraday_1min", "intraday_5min", "daily", "vix")
CONFLICTS_WITH_ADMF = "SPY_1min_2024-05-31_2024-07-16_ET_ext.csv.gz"  # pixie26: same minutes
NEEDS_SKIP = {"ge.us.txt.gz", "ibm.us.txt.gz", "CBOE_VIX_History_1990-01-02_2026-07-07.csv"}


def _data_lines(path: Path) -> int:
    """Non-empty lines after the header (rows of a Parquet file), counted from the raw file."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig") as fh:
        lines = [line for line in fh if line.strip()]
    headerless = path.name.startswith("nt-")
    return len(lines) - (0 if headerless else 1)


@pytest.fixture(scope="module")
def real(market_data, tmp_path_factory):
    """Every bar file imported once into one catalog (pixie26 into its own: it conflicts)."""
    catalog = open_catalog(tmp_path_factory.mktemp("real") / "catalog")
    summaries: dict[str, ImportSummary] = {}
    errors: dict[str, BarImportError] = {}
    files = []
    for path, _ in iter_bar_files(market_data / family for family in FAMILIES):
        try:
            detect_format(path)
        except BarImportError:
            continue  # licences and readmes
        files.append(path)
        try:
            summaries[path.name] = import_file(path, catalog, skip_bad_rows=path.name in NEEDS_SKIP)
        except BarImportError as exc:
            errors[path.name] = exc
    pixie_catalog = open_catalog(tmp_path_factory.mktemp("pixie") / "catalog")
    pixie = next(p for p in files if p.name == CONFLICTS_WITH_ADMF)
    summaries[pixie.name] = import_file(pixie, pixie_catalog)
    return {
        "catalog": catalog,
        "pixie": pixie_catalog,
        "files": files,
        "summaries": summaries,
        "errors": errors,
    }


def test_every_real_bar_file_imports(real, market_data):
    files = real["files"]
    counts = {f: sum(1 for p in files if f in p.parts) for f in FAMILIES}
    assert counts == {"intraday_1min": 35, "intraday_5min": 19, "daily": 103, "vix": 1}
    assert set(real["errors"]) == {CONFLICTS_WITH_ADMF}
    for path in files:
        summary = real["summaries"][path.name]
        assert summary.rows_read == _data_lines(path), path.name
        if path.name not in NEEDS_SKIP:
            assert summary.rows_written == summary.rows_read, path.name
            assert not summary.bad_rows, path.name


def test_real_row_counts_and_first_bars(real):
    s = real["summaries"]
    cat = real["catalog"]
    expected = {
        "SPY_1m_2024-03-26_2025-04-02.parquet": (102236, "2024-03-26 13:31", 256),
        "SPY_1min.csv.gz": (49885, "2025-09-15 13:31", 129),
        "SPY_5min.csv.gz": (17463, "2025-05-12 13:35", 210),
        "nt-spy-minute-2011.csv.gz": (14180, "2011-01-03 09:01", 20),
        "nt-spy-minute-2011-03.csv.gz": (17577, "2011-03-01 09:01", 23),
        "spy.us.txt.gz": (4862, "2005-02-25 21:00", 4862),
        "aapl.us.txt.gz": (8915, "1984-09-07 20:00", 8915),
        CONFLICTS_WITH_ADMF: (22332, "2024-05-31 08:01", 31),
    }
    for name, (rows, first, sessions) in expected.items():
        assert (s[name].rows_written, s[name].first, s[name].sessions) == (
            rows,
            pd.Timestamp(first, tz="UTC"),
            sessions,
        ), name

    def bar_at(bar_type: str, ts: str, catalog=cat) -> tuple:
        frame = _bars(catalog, bar_type)
        row = frame.loc[pd.Timestamp(ts, tz="UTC")]
        return (row.open, row.high, row.low, row.close, row.volume)

    # ADMF-PC parquet row 1: 13:30 UTC open-stamped, 521.23/521.26/520.92/521.01, 342898.
    assert bar_at("SPY.SIM-1-MINUTE-LAST-EXTERNAL", "2024-03-26 13:31") == (
        521.23,
        521.26,
        520.92,
        521.01,
        342898,
    )
    # IB SPY line 2: 659.58,660.01,659.4750,659.96, 10377 lots -> 1,037,700 shares.
    assert bar_at("SPY.SIM-1-MINUTE-LAST-EXTERNAL", "2025-09-15 13:31") == (
        659.58,
        660.01,
        659.48,
        659.96,
        1037700,
    )
    # IB SPY line 34290, 2026-01-22 09:30 ET, already in shares: 823588.
    assert bar_at("SPY.SIM-1-MINUTE-LAST-EXTERNAL", "2026-01-22 14:31")[4] == 823588
    # NinjaTrader line 1: 20110103 090100;126.35;126.39;126.35;126.39;1579 (UTC, close-stamped).
    assert bar_at("SPY.SIM-1-MINUTE-LAST-EXTERNAL", "2011-01-03 09:01") == (
        126.35,
        126.39,
        126.35,
        126.39,
        1579,
    )
    # IB SPY 5-min line 17267, 2026-03-10 09:30 ET: 19085 lots -> 1,908,500.
    assert bar_at("SPY.SIM-5-MINUTE-LAST-EXTERNAL", "2026-03-10 13:35")[4] == 1908500
    # Stooq SPY: 96.1403,97.2558,96.052,97.0723, 76530081.487282 -> the tick and whole shares.
    assert bar_at("SPY.SIM-1-DAY-LAST-EXTERNAL", "2005-02-25 21:00") == (
        96.14,
        97.26,
        96.05,
        97.07,
        76530081,
    )
    # Stooq AAPL 1984-09-07: 0.41142,0.41642,0.40644,0.41142 (adjusted, below a cent of precision).
    assert bar_at("AAPL.SIM-1-DAY-LAST-EXTERNAL", "1984-09-07 20:00")[:4] == (
        0.41,
        0.42,
        0.41,
        0.41,
    )
    # CBOE VIX 01/02/1990: 17.24 all four, no volume.
    assert bar_at("VIX.SIM-1-DAY-LAST-EXTERNAL", "1990-01-02 21:00") == (
        17.24,
        17.24,
        17.24,
        17.24,
        0,
    )
    # pixie26 line 2: 5/31/2024 4:01 ET close-stamped, 521.98 x4, 150.
    assert bar_at("SPY.SIM-1-MINUTE-LAST-EXTERNAL", "2024-05-31 08:01", real["pixie"]) == (
        521.98,
    ) * 4 + (150,)


def test_spy_lot_days_match_the_known_ranges(real):
    s = real["summaries"]["SPY_1min.csv.gz"]
    sessions = xcals.get_calendar("XNYS").sessions_in_range("2025-09-15", "2026-01-21")
    expected = [d.strftime("%Y-%m-%d") for d in sessions]
    expected += ["2026-03-09", "2026-03-10", "2026-03-11", "2026-03-12 09:30-10:30"]
    assert s.volume_days_converted == expected
    assert s.volume_days_ambiguous == []
    assert 30 < s.volume_unit_ratio < 70  # not 100: see test_lot_days_are_not_exact_lots
    five = real["summaries"]["SPY_5min.csv.gz"]
    assert five.volume_days_converted == ["2026-03-10", "2026-03-11", "2026-03-12"]


def test_ib_files_without_mixed_units_are_untouched(real):
    s = real["summaries"]
    for name in (
        "GS_1min.csv.gz",
        "META_1min.csv.gz",
        "SMH_1min.csv.gz",
        "AVGO_1min.csv.gz",
        "TQQQ_5min.csv.gz",
        "META_5min.csv.gz",
        "SQQQ_5min.csv.gz",
    ):
        assert s[name].volume_days_converted == [], name
    for name in ("SPY_1m_2024-03-26_2025-04-02.parquet", "spy.us.txt.gz", CONFLICTS_WITH_ADMF):
        assert s[name].volume_unit_ratio is None and not s[name].volume_days_converted


def test_every_ib_file_with_early_sessions_converts_them(real):
    """Files from 2025-09-15 have their low sessions before 2026-01-22; 5-min ones from 03-10."""
    for name, s in real["summaries"].items():
        if s.format != "ib_alert_overlay" or not s.volume_days_converted:
            continue
        days = [d[:10] for d in s.volume_days_converted]
        if s.timeframe == "1min":
            assert all(d < "2026-01-22" or "2026-03-09" <= d <= "2026-03-12" for d in days), name
            assert sum(d < "2026-01-22" for d in days) >= 88, name
        else:
            assert days[0] >= "2026-03-10", name


def test_lot_days_are_not_exact_lots(real):
    """What the shared IB files call lots: same-day 5-min bars in shares are 15-90x the 1-min sum.

    A unit of 100 shares would make every 5-minute ratio ~100. The low sessions have sub-cent
    prices and a volume that is a varying fraction of the consolidated one (a single-venue
    feed, by the look of it), so x100 only restores the order of magnitude.
    """
    cat = real["catalog"]
    one = _bars(cat, "SPY.SIM-1-MINUTE-LAST-EXTERNAL").loc["2025-09-15 13:31":"2025-09-15 20:00"]
    five = _bars(cat, "SPY.SIM-5-MINUTE-LAST-EXTERNAL").loc["2025-09-15 13:35":"2025-09-15 20:00"]
    one_raw = one["volume"] / 100
    per_five = one_raw.groupby(one_raw.index.ceil("5min")).sum()
    ratio = (five["volume"] / per_five).dropna()
    assert 25 < ratio.median() < 60
    assert ratio.quantile(0.9) / ratio.quantile(0.1) > 2  # no single factor


def test_pixie_and_admf_agree_on_prices_which_fixes_their_stamping(real):
    """pixie26 (close-stamped, ET) and ADMF-PC (open-stamped, UTC) line up minute for minute."""
    err = real["errors"][CONFLICTS_WITH_ADMF]
    assert "already holds different SPY.SIM-1-MINUTE-LAST-EXTERNAL bars" in str(err)
    admf = _bars(real["catalog"], "SPY.SIM-1-MINUTE-LAST-EXTERNAL").loc["2024-05-31":"2024-07-17"]
    pixie = _bars(real["pixie"], "SPY.SIM-1-MINUTE-LAST-EXTERNAL")
    common = admf.index.intersection(pixie.index)
    assert len(common) > 11_000
    prices = ["open", "high", "low", "close"]
    same = (admf.loc[common, prices] == pixie.loc[common, prices]).all(axis=1)
    assert same.mean() > 0.99
    assert (
        admf.loc[common, "volume"] != pixie.loc[common, "volume"]
    ).mean() > 0.9  # vendors differ


def test_ninjatrader_times_are_utc_and_close_stamped(real):
    """The opening auction lands on 09:31 New York both before and after the 2011-03-13 DST
    change: the times are UTC (not ET, which would move it by an hour) and mark the bar close."""
    bars = _bars(real["catalog"], "SPY.SIM-1-MINUTE-LAST-EXTERNAL").loc["2011-01-01":"2011-04-01"]
    local = bars.index.tz_convert("America/New_York")
    morning = (local.hour == 9) | ((local.hour == 10) & (local.minute == 0))
    for part in (local < "2011-03-13", local >= "2011-03-14"):
        sel = bars[morning & part]
        peak = sel["volume"].groupby(local[morning & part].strftime("%H:%M")).median().idxmax()
        assert peak == "09:31"


def test_real_data_problems_are_reported(real, market_data, tmp_path):
    vix = real["summaries"]["CBOE_VIX_History_1990-01-02_2026-07-07.csv"]
    assert len(vix.bad_rows) == 47
    lines = [b.line for b in vix.bad_rows]
    assert lines[:3] == [535, 540, 670] and lines[-2:] == [3745, 4060]
    assert all(
        "above min(open, close)" in b.reason or "below max(open, close)" in b.reason
        for b in vix.bad_rows
    )
    assert vix.warnings[0].startswith("33 weekday date(s) are not NYSE sessions")
    with pytest.raises(BarImportError, match=r"import failed \(47 problems\)"):
        import_file(
            market_data / "vix" / "CBOE_VIX_History_1990-01-02_2026-07-07.csv",
            open_catalog(tmp_path),
        )
    ge = real["summaries"]["ge.us.txt.gz"]
    assert len(ge.bad_rows) == 1986 and all("before 1970-01-01" in b.reason for b in ge.bad_rows)
    assert real["summaries"]["aapl.us.txt.gz"].warnings == [
        "1 weekday date(s) are not NYSE sessions, stamped 16:00 New York: 1985-09-27"
    ]


def test_catalog_listing_counts_every_bar(real):
    rows = {r.bar_type: r for r in list_bar_types(real["catalog"])}
    spy = rows["SPY.SIM-1-MINUTE-LAST-EXTERNAL"]
    assert spy.count == 102236 + 49885 + 14180 + 17577
    assert spy.first == pd.Timestamp("2011-01-03 09:01", tz="UTC")
    assert rows["VIX.SIM-1-DAY-LAST-EXTERNAL"].count == 9223 - 47


# --- column mappings ------------------------------------------------------------------------


def test_separate_date_and_time_columns_with_a_mapping(tmp_path, catalog):
    path = _write(
        tmp_path / "dt.csv",
        ["03/04/2024,0930,100,101,99,100.5,10", "03/04/2024,0931,100.5,101,100,100.75,12"],
        header="Day,Time,O,H,L,C,Vol",
    )
    summary = import_file(
        path,
        catalog,
        fmt="generic_csv",
        symbol="SPY",
        columns={
            "date": "Day",
            "time": "Time",
            "open": "O",
            "high": "H",
            "low": "L",
            "close": "C",
            "volume": "Vol",
        },
        timestamp_format="%m/%d/%Y %H%M",
    )
    assert summary.first == pd.Timestamp("2024-03-04 14:31", tz="UTC")
    assert summary.rows_written == 2


def test_cli_column_mapping_without_volume(tmp_path):
    path = _write(
        tmp_path / "idx.csv", ["2024-03-04 09:30:00,100,101,99,100"], header="when,o,h,l,c"
    )
    argv = [
        "import",
        str(path),
        "--catalog",
        str(tmp_path / "c"),
        "--format",
        "generic_csv",
        "--symbol",
        "VIX",
        "--timeframe",
        "1min",
        "--columns",
        "timestamp=when,open=o,high=h,low=l,close=c,volume=",
    ]
    code, out = _run(argv)
    assert code == 0, out
    bars = _bars(open_catalog(tmp_path / "c"), "VIX.SIM-1-MINUTE-LAST-EXTERNAL")
    assert bars["volume"].tolist() == [0]


def test_a_surplus_field_in_the_first_row_is_not_taken_for_an_index(tmp_path, catalog):
    path = _write(tmp_path / "shift.csv", [GOOD_ROWS[0] + ",999", GOOD_ROWS[1]])
    with pytest.raises(
        BarImportError, match=r"shift.csv:2: the line has more fields than the header"
    ):
        _import(path, catalog)


def test_run_backtest_over_an_imported_real_catalog(real, tmp_path):
    """The shared SPY year, imported, backtests end to end and reconciles with the engine."""
    import json

    import run_backtest

    out = tmp_path / "spy"
    code = run_backtest.main(
        ["--catalog", real["catalog"].path, "--symbols", "SPY", "--start", "2024-04-01",
         "--end", "2024-06-28", "--out", str(out), "--no-progress", "--no-journal"],
    )
    assert code == 0
    summary = json.loads((out / "metrics.json").read_text())
    metrics = summary["metrics"]
    assert summary["start"].startswith("2024-04-01") and summary["end"].startswith("2024-06-29")
    assert metrics["trades"] > 10
    fills = (out / "fills.csv").read_text().splitlines()[1:]
    first, last = fills[0].split(",")[0], fills[-1].split(",")[0]
    # Regular hours only, inside the requested sessions (EDT: 13:30-20:00 UTC).
    assert "2024-04-01 13:30" < first and last <= "2024-06-28 20:00"
