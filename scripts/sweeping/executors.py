"""
Where trials run: local worker processes (the default) or a Ray cluster. Both hand back
concurrent.futures.Future objects, so the sweep loop is the same for either.

Local workers are started with the `spawn` context: Nautilus's Rust logger and other native
state do not survive a fork, so every worker is a fresh interpreter. Ray workers are fresh
processes too. Either way the catalog path in the sweep file is opened by the worker, so it
must be readable at the same path on every machine (see docs/sweeps.md: shared storage).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any
from typing import Protocol

from scripts.sweeping.trial import TrialResult
from scripts.sweeping.trial import TrialTask
from scripts.sweeping.trial import run_trial
from scripts.sweeping.trial import worker_init

ROOT = Path(__file__).resolve().parents[2]
RAY_PIN = "ray==2.60.0"


class ExecutorError(RuntimeError):
    """An executor that cannot start (Ray missing, no cluster at the address)."""


def ray_runtime_env() -> dict[str, Any]:
    """Ray workers import this project: PYTHONPATH points them at it (same path on every node)."""
    return {"env_vars": {"PYTHONPATH": str(ROOT)}}


class TrialExecutor(Protocol):
    slots: int
    description: str

    def submit(self, task: TrialTask) -> Future[TrialResult]: ...

    def abandon(self) -> None:
        """Stop now: cancel queued trials and end running ones (their results are lost)."""

    def close(self) -> None: ...


class LocalExecutor:
    """A pool of spawned worker processes on this machine."""

    def __init__(self, workers: int | None = None) -> None:
        self.slots = workers or os.cpu_count() or 1
        self.description = f"{self.slots} local worker process{'es' if self.slots != 1 else ''}"
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.slots,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker_init,
        )

    def worker_pids(self) -> list[int]:
        return [p.pid for p in getattr(self._pool, "_processes", {}).values()]

    def submit(self, task: TrialTask) -> Future[TrialResult]:
        try:
            return self._pool.submit(run_trial, task)
        except BrokenProcessPool:
            # A worker died (killed, out of memory, a crash in native code): the trials it
            # and its siblings were running come back failed with that error, and the sweep
            # goes on with a fresh pool.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(run_trial, task)

    def abandon(self) -> None:
        # The pool has no public way to end running work; the processes are ours to end.
        processes = list(getattr(self._pool, "_processes", {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class RayExecutor:
    """Trials as Ray tasks, one CPU each, on the cluster at `address` ("auto" or host:port)."""

    def __init__(self, address: str, *, init_kwargs: dict[str, Any] | None = None) -> None:
        import ray

        self._ray = ray
        self._started_here = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, runtime_env=ray_runtime_env(), log_to_driver=False,
                         **(init_kwargs or {}))
            except ConnectionError as exc:
                raise ExecutorError(f"--ray {address}: no Ray cluster there ({exc})") from None
            self._started_here = True
        self.slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.description = f"Ray cluster at {address} ({self.slots} CPUs)"
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_trial)
        self._refs: list[Any] = []

    def submit(self, task: TrialTask) -> Future[TrialResult]:
        ref = self._remote.remote(task)
        self._refs.append(ref)
        return ref.future()

    def abandon(self) -> None:
        for ref in self._refs:
            self._ray.cancel(ref, force=True)

    def close(self) -> None:
        self._refs.clear()
        if self._started_here:
            self._ray.shutdown()


def make_executor(workers: int | None, ray_address: str | None) -> TrialExecutor:
    if ray_address:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ExecutorError(
                f"--ray: Ray is an optional extra and is not installed; install it with "
                f"uv pip install '{RAY_PIN}'",
            ) from None
        return RayExecutor(ray_address)
    return LocalExecutor(workers)
