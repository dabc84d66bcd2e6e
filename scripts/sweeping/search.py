"""
What to try next. A grid or a random sample is a fixed list of parameter sets; an Optuna study
proposes each set after learning from the finished ones (ask and tell, so trials still run in
parallel on any executor) and lives in a SQLite file so a stopped study resumes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from typing import Protocol

from scripts.sweeping.space import Sweep
from scripts.sweeping.trial import OK
from scripts.sweeping.trial import TrialResult


class Search(Protocol):
    total: int

    def propose(self) -> tuple[int, dict[str, Any]] | None:
        """The next (trial number, parameters), or None when nothing is left to start."""

    def record(self, result: TrialResult) -> None:
        """A finished trial (ok or failed)."""

    def abandon(self, number: int) -> None:
        """A started trial whose result will never come (the sweep was stopped)."""


class ListSearch:
    """A grid or a random sample: fixed parameter sets, skipping those already done."""

    def __init__(self, candidates: list[dict[str, Any]], done: set[int] = frozenset()) -> None:
        self._queue = [(i, p) for i, p in enumerate(candidates) if i not in done]
        self.total = len(candidates)

    def propose(self) -> tuple[int, dict[str, Any]] | None:
        return self._queue.pop(0) if self._queue else None

    def record(self, result: TrialResult) -> None:
        pass

    def abandon(self, number: int) -> None:
        pass


def optuna_storage(out_dir: Path) -> str:
    return f"sqlite:///{(out_dir / 'study.db').resolve()}"


class OptunaSearch:
    """
    An Optuna study (TPE sampler, seeded) over the sweep's parameters. `total` counts the
    study's trials, so resuming a study of 40 that stopped at 25 runs the 15 missing ones.
    Constraints go to the sampler (feasible trials are preferred) and decide the best trial.
    """

    def __init__(self, sweep: Sweep, storage: str, study_name: str | None = None) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self._sweep = sweep
        sampler = optuna.samplers.TPESampler(seed=sweep.seed)
        self.study = optuna.create_study(
            study_name=study_name or sweep.study_name,
            storage=storage,
            direction=sweep.objective.direction,
            sampler=sampler,
            load_if_exists=True,
        )
        TrialState = optuna.trial.TrialState
        # A trial left RUNNING by a sweep that was killed never reports: it is closed as
        # abandoned, and abandoned trials do not count, so the resumed study runs that many more.
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.study._storage.set_trial_user_attr(trial._trial_id, "abandoned", True)
            self.study.tell(trial.number, state=TrialState.FAIL)
        self.already_done = sum(
            1 for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
            if not t.user_attrs.get("abandoned")
        )
        self.total = sweep.samples
        self._started = self.already_done
        self._trials: dict[int, Any] = {}

    def propose(self) -> tuple[int, dict[str, Any]] | None:
        if self._started >= self.total:
            return None
        trial = self.study.ask()
        params = {p.name: self._suggest(trial, p) for p in self._sweep.parameters}
        self._trials[trial.number] = trial
        self._started += 1
        return trial.number, params

    def _suggest(self, trial: Any, p: Any) -> Any:
        if p.values is not None:
            return trial.suggest_categorical(p.name, list(p.values))
        if p.is_int:
            return trial.suggest_int(p.name, p.low, p.high, step=p.step or 1)
        return trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)

    def record(self, result: TrialResult) -> None:
        trial = self._trials.pop(result.number)
        TrialState = self._optuna.trial.TrialState
        objective = self._sweep.objective
        value = objective.value(result.metrics) if result.status == OK else None
        if value is None:
            trial.set_user_attr("error", result.error or f"no {objective.metric} (no trades?)")
            self.study.tell(trial, state=TrialState.FAIL)
            return
        for constraint in objective.constraints:
            # Optuna's convention: <= 0 is satisfied; a violation is its distance to the bound.
            trial.set_constraint(str(constraint), constraint.violation(result.metrics))
        trial.set_user_attr("metrics", result.metrics)
        self.study.tell(trial, value)

    def abandon(self, number: int) -> None:
        trial = self._trials.pop(number, None)
        if trial is not None:
            trial.set_user_attr("abandoned", True)
            self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
            self._started -= 1


def make_search(sweep: Sweep, method: str, out_dir: Path, done: set[int],
                study_name: str | None = None) -> Search:
    if method == "grid":
        return ListSearch(sweep.grid(), done)
    if method == "random":
        return ListSearch(sweep.random_samples(), done)
    return OptunaSearch(sweep, optuna_storage(out_dir), study_name)
