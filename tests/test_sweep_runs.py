"""
Sweeps on a small hand-built catalog (a week of SPY minutes): a failed trial is recorded and
the sweep goes on, Ctrl-C stops cleanly keeping every finished result and --resume finishes
the rest, and an Optuna study persisted in SQLite resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from scripts import sweep as sweep_cli
from scripts.sweeping.record import load_results
from tests.spy_minutes import write_spy_minutes

ROOT = Path(__file__).resolve().parents[1]
SESSIONS = ("2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08")


@pytest.fixture(scope="module")
def week_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five regular sessions of SPY minutes swinging enough for the averages to cross."""
    return write_spy_minutes(
        tmp_path_factory.mktemp("catalog"),
        SESSIONS,
        lambda steps: 470 + 3 * np.sin(steps / 60.0) + np.sin(steps / 11.0),
        volume=100000.0,
    )


def _sweep_file(folder: Path, catalog: Path, parameters: str, extra: str = "") -> Path:
    path = folder / "sweep.toml"
    path.write_text(f"""
strategy = "ma_cross"
symbols = ["SPY"]
catalog = "{catalog}"
[parameters]
{parameters}
{extra}
""")
    return path


def test_a_failed_trial_is_recorded_and_the_sweep_goes_on(week_catalog: Path, tmp_path: Path) -> None:
    # fast_period 12 with slow_period 10 is refused by MACrossConfig inside the worker.
    file = _sweep_file(tmp_path, week_catalog, "fast_period = { values = [3, 12] }\nslow_period = { values = [10, 20] }")
    out = tmp_path / "out"
    assert sweep_cli.main([str(file), "--workers", "2", "--out", str(out), "--no-progress"]) == 0
    results = {r.number: r for r in load_results(out / "trials.jsonl")}
    assert sorted(results) == [0, 1, 2, 3]
    failed = results[2]
    assert (failed.params, failed.status) == ({"fast_period": 12, "slow_period": 10}, "failed")
    assert failed.error == ("StrategyParameterError: --set ma_cross: fast_period must be less than "
                            "slow_period, got 12 >= 10")
    assert "build_params" in failed.traceback
    assert [results[n].status for n in (0, 1, 3)] == ["ok", "ok", "ok"]
    assert all(results[n].metrics["trades"] > 0 for n in (0, 1, 3))
    table = pd.read_csv(out / "results.csv")
    row = table[table["trial"] == 2].iloc[0]
    assert row["status"] == "failed" and "fast_period must be less than slow_period" in row["error"]
    assert "Failed trials" in (out / "report.html").read_text()
    best = json.loads((out / "best.json").read_text())["best"]
    assert {b["trial"] for b in best} == {0, 1, 3}


def test_ctrl_c_keeps_finished_results_and_resume_finishes(week_catalog: Path, tmp_path: Path) -> None:
    file = _sweep_file(tmp_path, week_catalog,
                       "fast_period = { values = [2, 3, 4] }\nslow_period = { values = [15, 30] }")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "scripts.sweep", str(file), "--workers", "1", "--out", str(out), "--no-progress"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=os.environ | {"COLUMNS": "200"})
    log = out / "trials.jsonl"
    deadline = time.monotonic() + 240  # a guard against hanging, not a timing assertion
    while not (log.exists() and log.read_text().count("\n") >= 2) and process.poll() is None:
        assert time.monotonic() < deadline, "the sweep never finished two trials"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    assert "Stopped:" in output
    finished = load_results(log)
    assert 2 <= len(finished) < 6 and all(r.status == "ok" for r in finished)
    # Every finished trial is in the tables too; none is half-written.
    assert len(pd.read_parquet(out / "results.parquet")) == len(finished)

    before = {r.number: r.metrics for r in finished}
    assert sweep_cli.main([str(file), "--workers", "2", "--out", str(out), "--resume", "--no-progress"]) == 0
    after = {r.number: r for r in load_results(log)}
    assert sorted(after) == list(range(6))
    assert all(after[n].metrics == m for n, m in before.items())
    # The earlier trials were not run again: one line each in the log.
    assert log.read_text().count("\n") == 6


def test_an_existing_sweep_is_never_overwritten(week_catalog: Path, tmp_path: Path, capsys) -> None:
    file = _sweep_file(tmp_path, week_catalog, "fast_period = { values = [3] }")
    out = tmp_path / "out"
    out.mkdir()
    (out / "trials.jsonl").write_text("")
    assert sweep_cli.main([str(file), "--out", str(out), "--no-progress"]) == 2
    assert "already exists; pass --resume" in " ".join(capsys.readouterr().out.split())


def test_optuna_study_resumes_from_sqlite(week_catalog: Path, tmp_path: Path) -> None:
    def write(samples: int) -> Path:
        return _sweep_file(tmp_path, week_catalog,
                           "fast_period = { low = 2, high = 9, step = 1 }\nslow_period = { values = [15, 20, 30] }",
                           f"""
[objective]
metric = "total_return_pct"
constraints = ["max_drawdown_pct >= -50"]
[search]
method = "optuna"
samples = {samples}
seed = 11
""")

    out = tmp_path / "out"
    assert sweep_cli.main([str(write(3)), "--workers", "2", "--out", str(out), "--no-progress"]) == 0
    first = {r.number: r for r in load_results(out / "trials.jsonl")}
    assert sorted(first) == [0, 1, 2]
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 3

    # The study grows to 5 trials: only two more run, the first three are the stored ones.
    assert sweep_cli.main([str(write(5)), "--workers", "2", "--out", str(out), "--resume", "--no-progress"]) == 0
    results = {r.number: r for r in load_results(out / "trials.jsonl")}
    assert sorted(results) == [0, 1, 2, 3, 4]
    assert all(results[n].metrics == first[n].metrics and results[n].params == first[n].params for n in first)
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{out / 'study.db'}")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(study.trials) == 5 and len(complete) == 5
    # The study's values are the trials' metrics, and its best is best.json's.
    for t in complete:
        assert t.value == results[t.number].metrics["total_return_pct"]
        assert t.params == results[t.number].params
    best = json.loads((out / "best.json").read_text())["best"][0]
    assert best["metrics"]["total_return_pct"] == study.best_value


def test_a_killed_worker_fails_its_trial_and_the_sweep_goes_on(week_catalog: Path, tmp_path: Path) -> None:
    from concurrent.futures import wait as wait_for

    from scripts.sweeping.executors import LocalExecutor
    from scripts.sweeping.record import Recorder
    from scripts.sweeping.runner import run_trials
    from scripts.sweeping.search import ListSearch
    from scripts.sweeping.space import load_sweep

    killed: list[int] = []

    class KillsTheSecondTrialsWorker(LocalExecutor):
        def submit(self, task):
            future = super().submit(task)
            if task.number == 1:
                killed.extend(self.worker_pids())
                for pid in killed:
                    os.kill(pid, signal.SIGKILL)
                wait_for([future])  # the pool has noticed: the next submit finds it broken
            return future

    file = _sweep_file(tmp_path, week_catalog, "fast_period = { values = [2, 3, 4] }\nslow_period = { values = [15] }")
    sweep = load_sweep(file)
    recorder = Recorder(tmp_path / "out", sweep)
    executor = KillsTheSecondTrialsWorker(1)
    try:
        run = run_trials(sweep, ListSearch(sweep.grid()), executor, recorder, progress=False)
    finally:
        executor.close()
    results = {r.number: r for r in run.results}
    assert sorted(results) == [0, 1, 2] and killed
    assert results[0].status == "ok"
    assert results[1].status == "failed" and results[1].error.startswith("BrokenProcessPool")
    # The third trial ran on a fresh pool, in a new process.
    assert results[2].status == "ok" and int(results[2].worker.split(":")[1]) not in killed
    assert [r.number for r in load_results(tmp_path / "out" / "trials.jsonl")] == [0, 1, 2]


def test_ctrl_c_between_a_trials_log_line_and_its_tables_loses_nothing(week_catalog: Path, tmp_path: Path) -> None:
    """The interrupt lands inside the table writing that follows a logged trial."""
    from scripts.sweeping.record import Recorder
    from scripts.sweeping.space import load_sweep
    from scripts.sweeping.trial import TrialResult

    sweep = load_sweep(_sweep_file(tmp_path, week_catalog, "fast_period = { values = [2, 3] }"))
    recorder = Recorder(tmp_path / "out", sweep)
    trial = TrialResult(number=0, params={"fast_period": 2}, status="ok", phase="",
                        metrics={"total_return_pct": 1.5}, error=None, traceback=None,
                        seconds=0.1, cpu_seconds=0.1, worker="test:1")
    recorder.add(trial)

    def interrupted() -> None:
        raise KeyboardInterrupt

    recorder.write_tables, write = interrupted, recorder.write_tables
    with pytest.raises(KeyboardInterrupt):
        recorder.add(TrialResult(**{**trial.__dict__, "number": 1, "params": {"fast_period": 3}}))
    recorder.write_tables = write
    assert len(pd.read_parquet(tmp_path / "out" / "results.parquet")) == 1  # stale, as in the race
    recorder.resync()
    assert list(pd.read_parquet(tmp_path / "out" / "results.parquet")["trial"]) == [0, 1]
    assert not list((tmp_path / "out").glob(".*.tmp"))
