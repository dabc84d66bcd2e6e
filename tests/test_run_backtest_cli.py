"""run_backtest.py's command line: every bad value is refused with a message naming the option."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import run_backtest
from backtesting.builder import BacktestRequest
from backtesting.builder import build_run_config
from backtesting.run import strict_json
from tests.spy_minutes import write_spy_minutes


@pytest.fixture(scope="module")
def tiny_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two regular sessions of SPY minutes: enough for the CLI to resolve ranges."""
    return write_spy_minutes(
        tmp_path_factory.mktemp("catalog"),
        ("2024-01-02", "2024-01-03"),
        lambda steps: 470 + np.cumsum(np.sin(steps / 7.0) * 0.05),
        volume=1000.0,
    )


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert run_backtest.main([*argv, "--no-progress"]) == 2
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--strategy", "nope"], "--strategy: unknown strategy 'nope'; choose one of"),
        (["--start", "2024-13-01"], "--start: expected a date YYYY-MM-DD, got '2024-13-01'"),
        (["--start", "2024-02-01", "--end", "2024-01-01"], "--start 2024-02-01 is after --end 2024-01-01"),
        (["--capital", "-5"], "--capital: must be a positive amount in USD, got '-5'"),
        (["--capital", "lots"], "--capital: expected an amount in USD, got 'lots'"),
        (["--slippage", "2"], "--slippage: expected a probability 0..1, got '2'"),
        (["--set", "fast_period"], "--set 'fast_period': expected key=value"),
        (["--symbols", " , "], "--symbols: give at least one symbol"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str], tiny_catalog: Path, argv: list[str], message: str,
) -> None:
    assert message in _error(capsys, ["--catalog", str(tiny_catalog), *argv])


def test_unknown_strategy_parameter_lists_the_real_ones(capsys, tiny_catalog: Path) -> None:
    out = _error(capsys, ["--catalog", str(tiny_catalog), "--set", "fast=5"])
    assert "--set fast: ma_cross has no parameter 'fast'; its parameters are instrument_id, bar_type, fast_period" in out


def test_parameter_of_the_wrong_type_names_the_key(capsys, tiny_catalog: Path) -> None:
    out = _error(capsys, ["--catalog", str(tiny_catalog), "--set", "fast_period=abc"])
    assert "--set fast_period='abc': Expected `int`, got `str`" in out


def test_parameters_that_contradict_each_other(capsys, tiny_catalog: Path) -> None:
    out = _error(capsys, ["--catalog", str(tiny_catalog), "--set", "fast_period=40"])
    assert "fast_period must be less than slow_period, got 40 >= 30" in out


def test_symbol_not_listed(capsys, tiny_catalog: Path) -> None:
    out = _error(capsys, ["--catalog", str(tiny_catalog), "--symbols", "ZZZZ"])
    assert "symbol 'ZZZZ' is not in" in out and "listings.csv" in out


def test_symbol_without_data_names_what_the_catalog_holds(capsys, tiny_catalog: Path) -> None:
    out = _error(capsys, ["--catalog", str(tiny_catalog), "--symbols", "QQQ"])
    assert "has no 1-minute bars for QQQ" in out
    assert "it holds: SPY.SIM-1-MINUTE-LAST-EXTERNAL" in out


def test_dates_outside_the_data(capsys, tiny_catalog: Path) -> None:
    out = _error(capsys, ["--catalog", str(tiny_catalog), "--start", "2025-01-01"])
    assert "--start/--end: no data between 2025-01-01 and the end" in out
    assert "catalog covers 2024-01-02 .. 2024-01-03" in out


def test_catalog_that_is_not_a_catalog(capsys, tmp_path: Path) -> None:
    out = _error(capsys, ["--catalog", str(tmp_path)])
    assert f"--catalog: {tmp_path} is not a Parquet data catalog" in out


def test_an_earlier_result_folder_is_never_overwritten(capsys, tiny_catalog: Path, tmp_path: Path) -> None:
    out = _error(capsys, ["--catalog", str(tiny_catalog), "--out", str(tmp_path)])
    assert f"--out: {tmp_path} already exists" in out


def test_a_refused_run_leaves_no_folder_and_its_retry_may_reuse_out(capsys, tiny_catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "result"
    argv = ["--catalog", str(tiny_catalog), "--out", str(out), "--no-journal"]
    assert "has no 1-minute bars for QQQ" in _error(capsys, [*argv, "--symbols", "QQQ"])
    assert "fast_period must be less than slow_period" in _error(capsys, [*argv, "--set", "fast_period=40"])
    assert not out.exists()
    assert run_backtest.main([*argv, "--strategy", "noop", "--no-progress"]) == 0
    assert (out / "metrics.json").is_file()


def _refuse_constant(name: str) -> None:
    raise ValueError(f"not strict JSON: {name}")


def test_metrics_json_is_strict_json_with_one_answer_per_figure(capsys, tiny_catalog: Path, tmp_path: Path) -> None:
    # A run without a trade: no round trip, one daily return, so no win rate and no Sharpe.
    out = tmp_path / "noop"
    argv = ["--catalog", str(tiny_catalog), "--out", str(out), "--no-journal", "--strategy", "noop"]
    assert run_backtest.main([*argv, "--no-progress"]) == 0
    for name in ("metrics.json", "trades.json", "risk_events.json"):
        json.loads((out / name).read_text(), parse_constant=_refuse_constant)  # no NaN, no Infinity
    result = json.loads((out / "metrics.json").read_text())
    metrics = result["metrics"]
    assert (metrics["win_rate_pct"], metrics["sharpe"], metrics["profit_factor"]) == (None, None, None)
    assert (metrics["net_profit"], metrics["max_drawdown_pct"], metrics["exits_by_reason"]) == ("0.00", 0.0, {})
    # Nautilus's analyzer (PnL (total) from cash alone, its own drawdown) is not a second answer.
    assert "engine_stats" not in result
    assert "PnL (total)" not in (out / "metrics.json").read_text()
    request = BacktestRequest(strategy="noop", symbols=("SPY",), catalog=tiny_catalog, progress=False)
    assert build_run_config(request).engine.run_analysis is False  # nor in the engine log
    assert "net profit is the final equity (cash plus shares held" in (out / "report.html").read_text()


def test_result_files_write_a_figure_over_no_data_as_null() -> None:
    assert strict_json({"sortino": float("nan"), "ratios": [float("inf"), 1.5], "n": 3}) == {
        "sortino": None, "ratios": [None, 1.5], "n": 3,
    }
