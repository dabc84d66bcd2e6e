"""
The narrow control interface of a running node: state snapshots out, validated commands in.

Files under `<state_dir>/control/`, so it works under systemd, over ssh and from the dashboard
process alike, with no port to secure:
- `state.json`: a snapshot the runner rewrites (atomically, by rename) about once a second:
  mode, broker, phase, trading state, positions, open orders, fills, the gate's holds.
- `inbox/*.json`: commands, one a file: {"command": ..., "reason": "...", "actor": "who",
  "sent_at": epoch seconds, "expires_s": seconds, plus the command's own fields}. The runner
  validates each; accepted ones move to `done/`, refused ones to `rejected/` with the reason
  beside them (`<id>.reason`), so a sender can wait for the verdict (`command_outcome`). A
  command taken later than `expires_s` after `sent_at` is never applied: it goes to `rejected/`
  with an "expired: ..." reason (a kill switch or a resume sent to a dead node must not run when
  the node comes back minutes later). Sender and node read the same clock (one host).
  - stop: flatten, halt and shut the node down;
  - halt / flatten: the kill switch (flatten also closes every position); resume: reset it;
  - pause_strategy / resume_strategy {"strategy": id}: the pre-trade gate refuses (or again
    passes) the strategy's new exposure; its exits, working orders and state are untouched;
  - set_parameters {"strategy": id, "parameters": {name: value}}: apply new parameters to the
    running strategy (the strategy's config class validates them) and persist them in
    `parameters.json`, applied again at the next start.
Every accepted command is recorded in the journal with its actor.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import os
import socket
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMMANDS = ("stop", "halt", "flatten", "resume", "pause_strategy", "resume_strategy", "set_parameters")
STRATEGY_COMMANDS = ("pause_strategy", "resume_strategy", "set_parameters")
FIELDS = {"command", "reason", "actor", "strategy", "parameters", "sent_at", "expires_s"}
DEFAULT_EXPIRY_S = 60.0  # `run_live.py stop`: long enough for a node still starting up
MAX_EXPIRY_S = 86_400.0
EXPIRED = "expired: "  # how a reason file marks a command discarded for its age


class ControlError(ValueError):
    """A command file that is not a valid command."""


@dataclass(frozen=True)
class Command:
    name: str
    reason: str
    path: Path
    sent_at: float  # epoch seconds, the sender's clock
    expires_s: float  # valid this long after sent_at
    actor: str = "operator"
    strategy: str = ""
    parameters: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return self.path.stem

    @property
    def expires_at(self) -> float:
        return self.sent_at + self.expires_s


def control_dir(state_dir: Path) -> Path:
    return state_dir / "control"


def parse_command(path: Path) -> Command:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ControlError(f"{path.name}: expected a JSON object, got invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ControlError(f"{path.name}: expected a JSON object, got {type(data).__name__}")
    try:
        return validate_command(data, path)
    except ControlError as exc:
        raise ControlError(f"{path.name}: {exc}") from None


def validate_command(data: dict[str, Any], path: Path = Path("command.json")) -> Command:
    """The fields of one command, checked; raises ControlError naming the field."""
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise ControlError(f"unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(FIELDS))}")
    name = data.get("command")
    if name not in COMMANDS:
        raise ControlError(f"command: expected one of {', '.join(COMMANDS)}, got {name!r}")
    reason = data.get("reason", "operator")
    if not isinstance(reason, str):
        raise ControlError(f"reason: expected text, got {reason!r}")
    actor = data.get("actor", "operator")
    if not isinstance(actor, str) or not actor:
        raise ControlError(f"actor: expected the name of who sent it, got {actor!r}")
    sent_at = _number(data, "sent_at", "the epoch seconds it was sent at", 0.0,
                      sys.float_info.max)
    expires_s = _number(data, "expires_s", f"seconds it stays valid, at most {MAX_EXPIRY_S:g}",
                        0.0, MAX_EXPIRY_S)
    strategy = data.get("strategy", "")
    parameters = data.get("parameters")
    if name in STRATEGY_COMMANDS:
        if not isinstance(strategy, str) or not strategy:
            raise ControlError(f"strategy: expected a strategy id for {name}, got {strategy!r}")
    elif strategy:
        raise ControlError(f"strategy: {name} applies to the whole node, got {strategy!r}")
    if name == "set_parameters":
        if not isinstance(parameters, dict) or not parameters:
            raise ControlError(f"parameters: expected an object of name: value, got {parameters!r}")
    elif parameters is not None:
        raise ControlError(f"parameters: only set_parameters takes parameters, got them with {name}")
    # The runner writes reason and actor into its log and journal: escaped, a newline in them
    # cannot forge a log line of its own.
    return Command(name, one_line(reason), path, sent_at, expires_s, one_line(actor),
                   one_line(strategy), parameters)


def _number(data: dict[str, Any], name: str, meaning: str, above: float, most: float) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not above < value <= most:
        raise ControlError(f"{name}: expected {meaning}, got {value!r}")
    return float(value)


def one_line(text: str) -> str:
    """`text` with control characters and line/paragraph separators escaped (\\n, \\u2028)."""
    return "".join(c.encode("unicode_escape").decode() if breaks_lines(c) else c for c in text)


def breaks_lines(char: str) -> bool:
    """A control character or a line or paragraph separator (what splits or hides a line)."""
    return unicodedata.category(char) in ("Cc", "Zl", "Zp")


def send_command(
    state_dir: Path,
    name: str,
    reason: str = "operator",
    actor: str = "operator",
    strategy: str = "",
    parameters: dict[str, Any] | None = None,
    expires_s: float = DEFAULT_EXPIRY_S,
    clock: Callable[[], float] = time.time,
) -> Path:
    """Drop a command into a running node's inbox (what `run_live.py stop` and the dashboard do);
    the node discards it unless it takes it within `expires_s`."""
    data: dict[str, Any] = {"command": name, "reason": reason, "actor": actor,
                            "sent_at": clock(), "expires_s": expires_s}
    if strategy:
        data["strategy"] = strategy
    if parameters is not None:
        data["parameters"] = parameters
    validate_command(data)
    inbox = control_dir(state_dir) / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    command_id = uuid.uuid4().hex
    tmp = inbox / f".{command_id}.tmp"
    tmp.write_text(json.dumps(data))
    final = inbox / f"{command_id}.json"
    os.replace(tmp, final)
    return final


def command_outcome(state_dir: Path, command_path: Path,
                    clock: Callable[[], float] = time.time) -> tuple[str, str]:
    """
    ("pending", "") while the node has not taken the command, ("done", "") once applied,
    ("rejected", reason) when refused (by the file check or by the strategy's validation),
    ("expired", reason) when discarded for its age or still in the inbox past its expiry (the
    node judges the age after taking a command, so it discards that one too).
    """
    root = control_dir(state_dir)
    name = command_path.name
    reason_file = (root / "rejected" / name).with_suffix(".reason")
    if reason_file.exists():
        reason = reason_file.read_text().strip()
        return ("expired" if reason.startswith(EXPIRED) else "rejected"), reason
    if (root / "done" / name).exists():
        return "done", ""
    try:
        waiting = parse_command(root / "inbox" / name)
    except (FileNotFoundError, ControlError):
        return "pending", ""  # taken meanwhile (or refused: its reason file comes next)
    if clock() > waiting.expires_at:
        return "expired", f"{EXPIRED}not taken by the node before it expired; it will never run"
    return "pending", ""


def read_state(state_dir: Path) -> dict[str, Any]:
    return json.loads((control_dir(state_dir) / "state.json").read_text())


class ControlChannel:
    """
    The runner's side: takes commands from the inbox, writes snapshots. A valid command waits
    in `taken/` until the runner has applied it (`accept`) or could not (`refuse`), so a sender
    never sees "done" for a command that is then refused.
    """

    def __init__(self, state_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.root = control_dir(state_dir)
        self.inbox = self.root / "inbox"
        self.clock = clock
        self.host = socket.gethostname()
        for folder in (self.inbox, self.root / "taken", self.root / "done", self.root / "rejected"):
            folder.mkdir(parents=True, exist_ok=True)

    def take_commands(self) -> tuple[list[Command], list[str]]:
        """Valid commands in force (oldest first) and the problems of refused or expired files."""
        commands, problems = [], []
        for path in sorted(self.inbox.glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
            try:
                command = parse_command(path)
            except ControlError as exc:
                problems.append(str(exc))
                self._reject(path, str(exc))
                continue
            taken = self.root / "taken" / path.name
            os.replace(path, taken)
            # Judged after the move, by the clock senders read: a sender that still saw the file
            # in the inbox past its expiry (and said "expired") is never contradicted.
            now = self.clock()
            if now > command.expires_at:
                late = (f"{EXPIRED}{command.name} by {command.actor} sent "
                        f"{now - command.sent_at:.1f} s ago, valid for {command.expires_s:g} s; "
                        "not applied")
                problems.append(f"{path.name}: {late}")
                self._reject(taken, late)
                continue
            commands.append(dataclasses.replace(command, path=taken))
        return commands, problems

    def accept(self, command: Command) -> None:
        if command.path.exists():
            os.replace(command.path, self.root / "done" / command.path.name)

    def refuse(self, command: Command, reason: str) -> None:
        """A command that parsed but could not be applied (unknown strategy, invalid value)."""
        self._reject(command.path, reason)

    def _reject(self, path: Path, reason: str) -> None:
        target = self.root / "rejected" / path.name
        # The reason is written first: a sender that sees the command in rejected/ finds it.
        target.with_suffix(".reason").write_text(reason + "\n")
        if path.exists():
            os.replace(path, target)

    def write_state(self, state: dict[str, Any]) -> None:
        """Publish a snapshot, stamped with this host's name: with it and the snapshot's pid a
        reader on the same host can tell a dead node from a slow one."""
        tmp = self.root / f".state.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(state | {"host": self.host}, separators=(",", ":"), default=str))
        os.replace(tmp, self.root / "state.json")
