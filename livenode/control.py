"""
The narrow control interface of a running node: state snapshots out, validated commands in.

Files under `<state_dir>/control/`, so it works under systemd, over ssh and from the dashboard
process alike, with no port to secure:
- `state.json`: a snapshot the runner rewrites (atomically, by rename) about once a second:
  mode, broker, phase, trading state, positions, open orders, fills, the gate's holds.
- `inbox/*.json`: commands, one a file: {"command": "stop" | "halt" | "flatten" | "resume",
  "reason": "..."}. The runner validates each; accepted ones move to `done/`, refused ones to
  `rejected/` with the reason beside them. `stop` flattens, halts and shuts the node down.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMMANDS = ("stop", "halt", "flatten", "resume")


class ControlError(ValueError):
    """A command file that is not a valid command."""


@dataclass(frozen=True)
class Command:
    name: str
    reason: str
    path: Path


def control_dir(state_dir: Path) -> Path:
    return state_dir / "control"


def parse_command(path: Path) -> Command:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ControlError(f"{path.name}: expected a JSON object, got invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ControlError(f"{path.name}: expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - {"command", "reason"})
    if unknown:
        raise ControlError(f"{path.name}: unknown field(s) {', '.join(unknown)}; expected command, reason")
    name = data.get("command")
    if name not in COMMANDS:
        raise ControlError(f"{path.name}: command: expected one of {', '.join(COMMANDS)}, got {name!r}")
    reason = data.get("reason", "operator")
    if not isinstance(reason, str):
        raise ControlError(f"{path.name}: reason: expected text, got {reason!r}")
    return Command(name, reason, path)


def send_command(state_dir: Path, name: str, reason: str = "operator") -> Path:
    """Drop a command into a running node's inbox (what `run_live.py stop` and the dashboard do)."""
    if name not in COMMANDS:
        raise ControlError(f"command: expected one of {', '.join(COMMANDS)}, got {name!r}")
    inbox = control_dir(state_dir) / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    tmp = inbox / f".{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps({"command": name, "reason": reason}))
    final = inbox / f"{uuid.uuid4().hex}.json"
    os.replace(tmp, final)
    return final


def read_state(state_dir: Path) -> dict[str, Any]:
    return json.loads((control_dir(state_dir) / "state.json").read_text())


class ControlChannel:
    """The runner's side: takes commands from the inbox, writes snapshots."""

    def __init__(self, state_dir: Path) -> None:
        self.root = control_dir(state_dir)
        self.inbox = self.root / "inbox"
        for folder in (self.inbox, self.root / "done", self.root / "rejected"):
            folder.mkdir(parents=True, exist_ok=True)

    def take_commands(self) -> tuple[list[Command], list[str]]:
        """Valid commands (oldest first) and the problems of refused files."""
        commands, problems = [], []
        for path in sorted(self.inbox.glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
            try:
                command = parse_command(path)
            except ControlError as exc:
                problems.append(str(exc))
                target = self.root / "rejected" / path.name
                os.replace(path, target)
                target.with_suffix(".reason").write_text(str(exc) + "\n")
                continue
            os.replace(path, self.root / "done" / path.name)
            commands.append(command)
        return commands, problems

    def write_state(self, state: dict[str, Any]) -> None:
        tmp = self.root / ".state.json.tmp"
        tmp.write_text(json.dumps(state, indent=1, default=str))
        os.replace(tmp, self.root / "state.json")
