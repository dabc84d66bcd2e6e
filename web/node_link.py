"""
The dashboard's side of the node's control interface (livenode/control.py): the latest state
snapshot (re-read only when the node has rewritten it) and commands sent with who sent them.

Nothing here touches the node's process: the snapshot is a file the node renames into place
about once a second, commands are files it picks up on its own loop. A slow or broken dashboard
therefore cannot slow trading.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livenode.control import command_outcome
from livenode.control import control_dir
from livenode.control import send_command

OUTCOME_WAIT_S = 5.0


@dataclass(frozen=True)
class Outcome:
    status: str  # done | rejected | pending
    reason: str
    command_id: str


class NodeLink:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = control_dir(state_dir) / "state.json"
        self._stamp: tuple[int, int] | None = None
        self._snapshot: dict[str, Any] | None = None
        self.version = 0  # bumps whenever a new snapshot is read

    def snapshot(self) -> dict[str, Any] | None:
        """The node's latest snapshot, or None when no node has written one."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                self._snapshot = json.loads(self.path.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                return self._snapshot  # replaced between stat and read: the next call sees it
            self._stamp = stamp
            self.version += 1
        return self._snapshot

    def strategy(self, strategy_id: str) -> dict[str, Any] | None:
        snapshot = self.snapshot() or {}
        return next((s for s in snapshot.get("strategies", []) if s["id"] == strategy_id), None)

    async def send(self, name: str, actor: str, reason: str, strategy: str = "",
                   parameters: dict[str, Any] | None = None, wait_s: float = OUTCOME_WAIT_S) -> Outcome:
        """Send a command and wait (without blocking the server) for the node's verdict."""
        path = send_command(self.state_dir, name, reason, actor, strategy, parameters)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            status, why = command_outcome(self.state_dir, path)
            if status != "pending" or loop.time() >= deadline:
                return Outcome(status, why, path.stem)
            await asyncio.sleep(0.05)
