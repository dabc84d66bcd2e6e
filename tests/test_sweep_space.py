"""The sweep file, the parameter space, walk-forward windows and stitching (no engine runs)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import run_backtest
from catalog.instruments import make_instrument
from catalog.store import open_catalog
from catalog.store import write_instrument
from scripts.sweeping.record import run_backtest_argv
from scripts.sweeping.space import SweepFileError
from scripts.sweeping.space import load_sweep
from scripts.sweeping.trial import OK
from scripts.sweeping.trial import TrialResult
from scripts.sweeping.walk_forward import Span
from scripts.sweeping.walk_forward import WalkForwardError
from scripts.sweeping.walk_forward import make_windows
from scripts.sweeping.walk_forward import parse_spans
from scripts.sweeping.walk_forward import stitch

BASE = """
strategy = "ma_cross"
symbols = ["SPY"]
start = 2024-01-02
end = 2024-03-28
catalog = "cat"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_instrument(open_catalog(tmp_path / "cat"), make_instrument("SPY"))
    return tmp_path


def _file(folder: Path, body: str) -> Path:
    path = folder / "sweep.toml"
    path.write_text(BASE + body)
    return path


def test_grid_of_values_and_stepped_ranges(folder: Path) -> None:
    sweep = load_sweep(_file(folder, """
[fixed]
average = "SIMPLE"
[parameters]
fast_period = { values = [5, 10] }
slow_period = { low = 20, high = 45, step = 10 }
position_fraction = { low = 0.5, high = 0.7, step = 0.1 }
"""))
    grid = sweep.grid()
    assert len(grid) == 2 * 3 * 3
    assert grid[0] == {"fast_period": 5, "slow_period": 20, "position_fraction": 0.5}
    assert {g["slow_period"] for g in grid} == {20, 30, 40}
    assert {g["position_fraction"] for g in grid} == {0.5, 0.6, 0.7}  # exact steps, no 0.6000000001
    request = sweep.request(grid[-1])
    assert request.overrides == {"average": "SIMPLE", "fast_period": 10, "slow_period": 40,
                                 "position_fraction": 0.7}
    assert request.catalog == (folder / "cat").resolve() and request.progress is False


def test_random_samples_are_reproducible_and_distinct(folder: Path) -> None:
    sweep = load_sweep(_file(folder, """
[parameters]
fast_period = { low = 2, high = 19, step = 1 }
position_fraction = { low = 0.1, high = 0.9 }
[search]
method = "random"
samples = 12
seed = 3
"""))
    a, b = sweep.random_samples(), load_sweep(sweep.path).random_samples()
    assert a == b and len(a) == 12
    assert len({tuple(s.items()) for s in a}) == 12
    assert all(2 <= s["fast_period"] <= 19 and 0.1 <= s["position_fraction"] <= 0.9 for s in a)
    with pytest.raises(SweepFileError, match="parameters.position_fraction: a grid needs `values` or a `step`"):
        sweep.grid()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[parameters]\nfast = { values = [1] }", "parameters.fast: ma_cross has no parameter 'fast'"),
        ("[parameters]\nfast_period = { values = [] }", "parameters.fast_period.values: expected a non-empty list"),
        ("[parameters]\nfast_period = { low = 9, high = 3, step = 1 }", "parameters.fast_period.high: 3 is below low 9"),
        ("[parameters]\nfast_period = { low = 1, high = 3, stride = 1 }", "parameters.fast_period.stride: unknown key"),
        ("[parameters]\nfast_period = 5", "parameters.fast_period: expected a table"),
        ("[parameters]\nfast_period = { values = [5] }\n[objective]\nmetric = 'luck'", "objective.metric: unknown metric 'luck'"),
        ("[parameters]\nfast_period = { values = [5] }\n[objective]\nconstraints = ['max_drawdown_pct => 3']",
         "objective.constraints[0]: expected 'metric >= number'"),
        ("[parameters]\nfast_period = { values = [5] }\n[search]\nmethod = 'genetic'", "search.method: expected one of grid"),
        ("[fixed]\naverage = 'MEDIAN'\n[parameters]\nfast_period = { values = [5] }", "fixed.average: --set ma_cross: average must be one of"),
        ("[fixed]\nfast_period = 5\n[parameters]\nfast_period = { values = [5] }", "fixed.fast_period: is also a swept parameter"),
        ("colour = 'red'\n[parameters]\nfast_period = { values = [5] }", "colour: unknown key"),
    ],
)
def test_bad_entries_name_the_file_and_key(folder: Path, body: str, message: str) -> None:
    path = _file(folder, body)
    with pytest.raises(SweepFileError) as err:
        load_sweep(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_bad_catalog_symbol_and_toml(folder: Path) -> None:
    path = folder / "s.toml"
    path.write_text(BASE.replace('"cat"', '"nowhere"') + "[parameters]\nfast_period = { values = [5] }")
    with pytest.raises(SweepFileError, match="catalog: .*nowhere is not a Parquet data catalog"):
        load_sweep(path)
    path.write_text(BASE.replace('["SPY"]', '["SPY", "NOTATICKER"]') + "[parameters]\nfast_period = { values = [5] }")
    with pytest.raises(SweepFileError, match=r"symbols\[1\]: .*NOTATICKER"):
        load_sweep(path)
    path.write_text("strategy = ")
    with pytest.raises(SweepFileError, match="TOML: "):
        load_sweep(path)


def test_run_backtest_argv_rebuilds_the_same_request(folder: Path) -> None:
    sweep = load_sweep(_file(folder, """
[fixed]
average = "WILDER"
[parameters]
fast_period = { values = [7] }
position_fraction = { values = [0.25] }
"""))
    params = {"fast_period": 7, "position_fraction": 0.25}
    argv = run_backtest_argv(sweep, params)
    request = run_backtest.request_from_args(run_backtest.parse_args([*argv, "--no-progress"]))
    assert request == sweep.request(params)


def test_spans_and_rolling_windows() -> None:
    train, test = parse_spans("6M/2M")
    assert (train, test) == (Span(6, "M"), Span(2, "M"))
    windows = make_windows(dt.date(2024, 3, 26), dt.date(2025, 4, 2), train, test, anchored=False)
    assert [(w.train_start, w.train_end, w.test_start, w.test_end) for w in windows] == [
        (dt.date(2024, 3, 26), dt.date(2024, 9, 25), dt.date(2024, 9, 26), dt.date(2024, 11, 25)),
        (dt.date(2024, 5, 26), dt.date(2024, 11, 25), dt.date(2024, 11, 26), dt.date(2025, 1, 25)),
        (dt.date(2024, 7, 26), dt.date(2025, 1, 25), dt.date(2025, 1, 26), dt.date(2025, 3, 25)),
    ]
    anchored = make_windows(dt.date(2024, 3, 26), dt.date(2025, 4, 2), train, test, anchored=True)
    assert {w.train_start for w in anchored} == {dt.date(2024, 3, 26)}
    assert [w.test_start for w in anchored] == [w.test_start for w in windows]
    weekly = make_windows(dt.date(2024, 1, 1), dt.date(2024, 1, 31), Span(2, "W"), Span(1, "W"), False)
    assert [w.test_start for w in weekly] == [dt.date(2024, 1, 15), dt.date(2024, 1, 22)]


@pytest.mark.parametrize("text", ["6M", "6M/0M", "six/1M", "6M/1Q"])
def test_bad_walk_forward_spans(text: str) -> None:
    with pytest.raises(WalkForwardError, match=f"--walk-forward: expected TRAIN/TEST such as 6M/1M.*{text!r}"):
        parse_spans(text)


def test_too_short_for_one_window() -> None:
    with pytest.raises(WalkForwardError, match="too short for one train and one test window"):
        make_windows(dt.date(2024, 1, 1), dt.date(2024, 5, 1), Span(6, "M"), Span(1, "M"), False)


def test_stitch_compounds_the_test_windows() -> None:
    def result(equity: dict[str, float]) -> TrialResult:
        return TrialResult(number=0, params={}, status=OK, equity=equity)

    curve = stitch([
        result({"2024-01-02": 101000.0, "2024-01-03": 110000.0}),   # +10%
        result({"2024-01-04": 95000.0, "2024-01-05": 90000.0}),     # -10% from a fresh 100000
    ], 100000.0)
    assert list(curve.index) == ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    assert list(curve.round(2)) == [101000.0, 110000.0, 104500.0, 99000.0]


def test_report_with_failures_and_trials_without_the_objective(folder: Path) -> None:
    from scripts.sweeping.report import write_sweep_report
    from scripts.sweeping.trial import FAILED

    sweep = load_sweep(_file(folder, "[parameters]\nfast_period = { values = [3, 5, 40] }"))
    results = [
        # No trades: no Sharpe, nothing to chart for this trial.
        TrialResult(number=0, params={"fast_period": 3}, status=OK, metrics={"sharpe": None, "trades": 0}),
        TrialResult(number=1, params={"fast_period": 5}, status=OK, metrics={"sharpe": 1.5, "trades": 4},
                    equity={"2024-01-02": 100000.0, "2024-01-03": 100100.0}),
        TrialResult(number=2, params={"fast_period": 40}, status=FAILED, error="StrategyParameterError: no"),
    ]
    page = write_sweep_report(folder / "report.html", sweep, results).read_text()
    assert "3 trials: 2 finished, 1 failed" in page and "1 trial(s) have a sharpe" in page
    assert "StrategyParameterError: no" in page
    assert "parcoords" in page and "Equity of the top 1 trials" in page
