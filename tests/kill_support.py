"""SIGKILL a child process once it has reached a point: the crash tests' kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable


def kill_when(proc: subprocess.Popen, reached: Callable[[], bool], what: str, limit_s: float = 120) -> None:
    """Wait until `reached()` (failing if `proc` ends first or `limit_s` passes), then kill -9."""
    try:
        deadline = time.monotonic() + limit_s
        while not reached():
            assert proc.poll() is None, f"the process ended before {what}"
            assert time.monotonic() < deadline, f"the process made no progress towards {what}"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
