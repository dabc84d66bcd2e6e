"""
The sweep proof on the shared SPY year (the heaviest tests of the suite, measured in the
README): a 24-configuration grid of the core RSI strategy run on 2 local worker processes and
on a local Ray instance gives identical metrics per configuration, identical to run_backtest.py
running a configuration alone; a 3-window walk-forward over the year produces the stitched
report.

The grid runs over three months of the year (2024-04-01 .. 2024-06-28) to keep the suite's cost
reasonable on a shared 2-core machine (a year-long trial costs about 5 CPU seconds, so 48 of
them would take several minutes there); the walk-forward covers the whole year.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

import run_backtest
from catalog.importer import import_file
from catalog.store import open_catalog
from scripts import sweep as sweep_cli
from scripts.sweeping.record import load_results
from scripts.sweeping.record import run_backtest_argv
from scripts.sweeping.space import load_sweep
from tests.conftest import MARKET_DATA

SPY_FILE = Path("intraday_1min/dawsh2_ADMF-PC/SPY_1m_2024-03-26_2025-04-02.parquet")

GRID = """
strategy = "core_rsi"
symbols = ["SPY"]
start = 2024-04-01
end = 2024-06-28
catalog = "{catalog}"

[parameters]
rsi_period = {{ values = [5, 7, 14] }}
buy_rsi = {{ values = [25.0, 30.0, 35.0, 40.0] }}
profit_target = {{ values = [0.005, 0.01] }}

[objective]
metric = "sharpe"
constraints = ["max_drawdown_pct >= -20"]
"""

WALK_FORWARD = """
strategy = "core_rsi"
symbols = ["SPY"]
catalog = "{catalog}"

[parameters]
rsi_period = {{ values = [7, 14] }}

[objective]
metric = "total_return_pct"
"""


@pytest.fixture(scope="module")
def spy_file() -> Path:
    """The shared SPY year: ../shared/data/market (as conftest), or $MARKET_DATA (worktrees)."""
    roots = [MARKET_DATA, *([Path(os.environ["MARKET_DATA"])] if os.environ.get("MARKET_DATA") else [])]
    for root in roots:
        if (root / SPY_FILE).is_file():
            return root / SPY_FILE
    reason = f"the shared SPY year {SPY_FILE} is not under {' or '.join(map(str, roots))}"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def spy_catalog(spy_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spy_catalog")
    import_file(spy_file, open_catalog(path))
    return path


@pytest.fixture(scope="module")
def grid_file(spy_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("grid") / "grid.toml"
    path.write_text(GRID.format(catalog=spy_catalog))
    return path


@pytest.fixture(scope="module")
def local_results(grid_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    assert sweep_cli.main([str(grid_file), "--workers", "2", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def ray_results(grid_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import ray
    except ImportError:
        reason = "Ray is an optional extra and is not installed (uv pip install 'ray==2.60.0')"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from scripts.sweeping.executors import ray_runtime_env

    out = tmp_path_factory.mktemp("ray") / "out"
    with pytest.MonkeyPatch.context() as patch:
        # Ray replaces 127.0.0.1 by the machine's routable address unless clustering is off:
        # this keeps the instance (and its child processes) on loopback.
        patch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        patch.setattr(ray._private.ray_constants, "ENABLE_RAY_CLUSTER", False)
        ray.init(num_cpus=2, include_dashboard=False, runtime_env=ray_runtime_env(), log_to_driver=False)
        try:
            assert ray.util.get_node_ip_address() == "127.0.0.1"
            assert sweep_cli.main([str(grid_file), "--ray", "auto", "--out", str(out), "--no-progress"]) == 0
        finally:
            ray.shutdown()
    return out


def _by_params(out: Path) -> dict[tuple, dict]:
    return {tuple(sorted(r.params.items())): r for r in load_results(out / "trials.jsonl")}


def test_grid_on_local_workers_and_ray_gives_identical_metrics(local_results: Path, ray_results: Path) -> None:
    local, ray = _by_params(local_results), _by_params(ray_results)
    assert len(local) == 24 and set(local) == set(ray)
    assert all(r.status == "ok" for r in local.values()), [r.error for r in local.values()]
    for key, result in local.items():
        assert result.metrics == ray[key].metrics, key
        assert result.equity == ray[key].equity, key
    # The configurations really differ, so identical metrics are not a constant.
    assert len({r.metrics["final_equity"] for r in local.values()}) > 12
    # Both worker pools were used: trials ran in more than one process.
    assert len({r.worker for r in local.values()}) >= 2


def test_a_trial_matches_run_backtest_alone(grid_file: Path, local_results: Path, tmp_path: Path) -> None:
    sweep = load_sweep(grid_file)
    local = _by_params(local_results)
    best = json.loads((local_results / "best.json").read_text())["best"]
    worst = min(local.values(), key=lambda r: r.metrics["sharpe"])
    for params in (best[0]["parameters"], worst.params):
        out = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
        argv = run_backtest_argv(sweep, {k: v for k, v in params.items() if k in sweep.parameter_names})
        assert run_backtest.main([*argv, "--out", str(out), "--no-progress"]) == 0
        alone = json.loads((out / "metrics.json").read_text())["metrics"]
        trial = local[tuple(sorted((k, params[k]) for k in sweep.parameter_names))]
        assert trial.metrics == alone


def test_results_tables_and_report(local_results: Path) -> None:
    frame = pd.read_parquet(local_results / "results.parquet")
    assert len(frame) == 24
    assert {"rsi_period", "buy_rsi", "profit_target", "sharpe", "final_equity", "max_drawdown_pct"} <= set(frame.columns)
    csv = pd.read_csv(local_results / "results.csv")
    assert list(csv["trial"]) == list(range(24))
    best = json.loads((local_results / "best.json").read_text())["best"]
    feasible = frame[frame["feasible"]].sort_values(["sharpe", "trial"], ascending=[False, True])
    assert best[0]["trial"] == int(feasible.iloc[0]["trial"])
    assert best[0]["metrics"]["sharpe"] == feasible.iloc[0]["sharpe"]
    page = (local_results / "report.html").read_text()
    for chart in ("heatmap", "histogram", "parcoords", "Equity of the top"):
        assert chart in page
    assert "<script src=\"https://cdn" not in page


def test_walk_forward_three_windows_over_the_year(spy_catalog: Path, tmp_path: Path) -> None:
    file = tmp_path / "wf.toml"
    file.write_text(WALK_FORWARD.format(catalog=spy_catalog))
    out = tmp_path / "out"
    argv = [str(file), "--walk-forward", "6M/2M", "--workers", "2", "--out", str(out), "--no-progress"]
    assert sweep_cli.main(argv) == 0
    summary = json.loads((out / "walk_forward.json").read_text())
    windows = summary["windows"]
    # 2024-03-26 + 6 months, then three whole 2-month test windows before 2025-04-02.
    assert [w["test"] for w in windows] == [
        ["2024-09-26", "2024-11-25"], ["2024-11-26", "2025-01-25"], ["2025-01-26", "2025-03-25"],
    ]
    assert [w["train"][0] for w in windows] == ["2024-03-26", "2024-05-26", "2024-07-26"]
    results = load_results(out / "trials.jsonl")
    for w in windows:
        train = [r for r in results if r.phase == f"w{w['window']}-train"]
        best = max(train, key=lambda r: r.metrics["total_return_pct"])
        assert w["parameters"]["rsi_period"] == best.params["rsi_period"]
        assert w["in_sample_total_return_pct"] == best.metrics["total_return_pct"]
        test = next(r for r in results if r.phase == f"w{w['window']}-test")
        assert test.params == best.params
        assert w["out_of_sample_total_return_pct"] == test.metrics["total_return_pct"]
    # The stitched curve compounds the three test windows' returns.
    growth = 1.0
    for w in windows:
        growth *= 1 + w["out_of_sample_total_return_pct"] / 100
    stitched = pd.read_csv(out / "oos_equity.csv", index_col=0)["equity"]
    assert stitched.iloc[-1] == pytest.approx(100000 * growth, abs=1.0)
    assert stitched.index[0] >= "2024-09-26" and stitched.index[-1] <= "2025-03-25"
    page = (out / "walk_forward.html").read_text()
    assert "Stitched out-of-sample equity" in page and "Parameters chosen per window" in page
