"""
The dashboard's side of the node's control interface (livenode/control.py): the latest state
snapshot (re-read only when the node has rewritten it), whether the node behind it is alive, and
commands sent with who sent them.

Nothing here touches the node's process: the snapshot is a file the node renames into place
about once a second, commands are files it picks up on its own loop. A slow or broken dashboard
therefore cannot slow trading.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
from collections.abc import Callable
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livenode.control import command_outcome
from livenode.control import control_dir
from livenode.control import send_command

@dataclass(frozen=True)
class Outcome:
    status: str  # done | rejected | expired | pending
    reason: str
    command_id: str
    expires_at: float | None = None  # epoch seconds: a pending command not taken by then never runs


@dataclass(frozen=True)
class Liveness:
    """What the dashboard may say about the node: `live` only while its snapshots are fresh."""

    state: str  # live | not_responding | stopped | absent
    since: str | None  # the latest snapshot's time: the node's last sign of life
    age_s: int | None  # seconds since then, by the dashboard's clock
    message: str

    @property
    def alive(self) -> bool:
        return self.state == "live"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"alive": self.alive}


def process_gone(pid: object) -> bool:
    """True when no process `pid` exists on this host (signal 0 probes without signalling)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False  # no pid to judge by: the snapshot's age decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # exists, owned by another user
    return False


def judge(snapshot: dict[str, Any] | None, now: float, stale_after_s: float, host: str) -> Liveness:
    """
    The node's liveness from its latest snapshot: gone when the snapshot says it stopped or,
    written on this host, when its pid no longer exists; not responding when the snapshot is
    older than `stale_after_s` (a hung or killed node stops rewriting it).
    """
    if snapshot is None:
        return Liveness("absent", None, None, "no node has written a snapshot to this state folder")
    since = snapshot.get("ts")
    try:
        written = dt.datetime.fromisoformat(str(since)).timestamp()
    except ValueError:
        return Liveness("not_responding", None, None, f"node snapshot without a valid ts ({since!r})")
    age = max(0, int(now - written))
    if snapshot.get("phase") == "stopped":
        return Liveness("stopped", since, age, f"node stopped at {since}")
    if snapshot.get("host") == host and process_gone(snapshot.get("pid")):
        return Liveness("not_responding", since, age,
                        f"node not responding since {since}: its process {snapshot['pid']} is gone")
    if now - written > stale_after_s:
        # A node winding down (closing positions, saving state) writes no snapshot meanwhile.
        doing = "stopping, not responding" if snapshot.get("phase") == "stopping" else "not responding"
        return Liveness("not_responding", since, age,
                        f"node {doing} since {since} (no snapshot for {age} s)")
    return Liveness("live", since, age, f"node {snapshot.get('phase')}")


class NodeLink:
    def __init__(self, state_dir: Path, stale_after_s: float, command_expiry_s: float,
                 clock: Callable[[], float]) -> None:
        self.state_dir = state_dir
        self.path = control_dir(state_dir) / "state.json"
        self.stale_after_s = stale_after_s
        self.command_expiry_s = command_expiry_s
        self.clock = clock
        self.host = socket.gethostname()
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

    def liveness(self) -> Liveness:
        return judge(self.snapshot(), self.clock(), self.stale_after_s, self.host)

    def strategy(self, strategy_id: str) -> dict[str, Any] | None:
        snapshot = self.snapshot() or {}
        return next((s for s in snapshot.get("strategies", []) if s["id"] == strategy_id), None)

    async def send(self, name: str, actor: str, reason: str, strategy: str,
                   parameters: dict[str, Any] | None, wait_s: float) -> Outcome:
        """Send a command (valid for command_expiry_s) and wait, without blocking the server,
        for the node's verdict."""
        sent_at = self.clock()
        path = send_command(self.state_dir, name, reason, actor, strategy, parameters,
                            expires_s=self.command_expiry_s, clock=lambda: sent_at)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            outcome = self.outcome(path.stem)
            if outcome.status != "pending" or loop.time() >= deadline:
                return Outcome(outcome.status, outcome.reason, outcome.command_id,
                               sent_at + self.command_expiry_s)
            await asyncio.sleep(0.05)

    def command_name(self, command_id: str) -> str | None:
        """The name of the command `command_id` wherever it is now, None if there is none."""
        root = control_dir(self.state_dir)
        for folder in ("inbox", "taken", "done", "rejected"):
            try:
                return str(json.loads((root / folder / f"{command_id}.json").read_text())["command"])
            except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
                continue  # moved on meanwhile, or not there
        return None

    def outcome(self, command_id: str) -> Outcome:
        """The node's verdict on a command sent earlier (by its id)."""
        path = control_dir(self.state_dir) / "inbox" / f"{command_id}.json"
        return Outcome(*command_outcome(self.state_dir, path, self.clock), command_id)
