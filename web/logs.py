"""
The node's engine log as the logs page shows it: the last lines of its files and a live tail,
filtered by level and strategy.

Nautilus writes the level as `[DEBUG]`, `[INFO]`, `[WARN]`, `[ERROR]` in plain files (`*.log`)
and as `"level":"WARN"` in JSON ones (`*.json`). A filter keeps that level and the more severe
ones; a line without a level of its own (a traceback's continuation) belongs to the line before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")
ALIASES = {"WARNING": "WARN"}  # Python's name for it, which the node's settings also accept
_LEVEL = re.compile(r'\[(DEBUG|INFO|WARN|ERROR)\]|"level":\s*"(DEBUG|INFO|WARN|ERROR)"')


def log_files(state_dir: Path) -> list[Path]:
    """The node's log files, oldest first (by modification time)."""
    folder = state_dir / "logs"
    files = [*folder.glob("*.log"), *folder.glob("*.json")]
    return sorted(files, key=lambda p: p.stat().st_mtime)


@dataclass(frozen=True)
class LogFilter:
    level: str  # "" (every line) or one of LEVELS: that level and the more severe
    strategy: str  # "" or text the line must contain

    @classmethod
    def of(cls, level: str, strategy: str) -> LogFilter:
        name = ALIASES.get(level.upper(), level.upper())
        if name and name not in LEVELS:
            raise ValueError(f"expected one of {', '.join(LEVELS)} (or WARNING), got {level!r}")
        return cls(name, strategy)

    def select(self, lines: list[str], previous_level: str = "INFO") -> tuple[list[str], str]:
        """The lines that pass, and the level the last line carried (for continuations)."""
        least = LEVELS.index(self.level) if self.level else 0
        kept: list[str] = []
        level = previous_level
        for line in lines:
            found = _LEVEL.search(line)
            if found:
                level = found.group(1) or found.group(2)
            if LEVELS.index(level) >= least and (not self.strategy or self.strategy in line):
                kept.append(line)
        return kept, level


def read_logs(state_dir: Path, chosen: LogFilter, limit: int) -> list[str]:
    """The last `limit` matching lines of the newest three log files."""
    lines: list[str] = []
    for path in log_files(state_dir)[-3:]:
        with path.open(errors="replace") as handle:
            lines += handle.read().splitlines()
    return chosen.select(lines)[0][-limit:]


class LogTail:
    """
    New lines of the newest log file as they are written (polled by the caller). Follows the
    node to a new file (a restart or a rotation) and starts over when a file is truncated; a
    line still being written (no newline yet) waits for its end.
    """

    def __init__(self, state_dir: Path, chosen: LogFilter) -> None:
        self.state_dir = state_dir
        self.chosen = chosen
        files = log_files(state_dir)
        self.path: Path | None = files[-1] if files else None
        self.offset = self.path.stat().st_size if self.path else 0  # the backlog is read_logs'
        self.level = "INFO"

    def poll(self) -> list[str]:
        files = log_files(self.state_dir)
        if not files:
            return []
        if files[-1] != self.path:
            self.path, self.offset = files[-1], 0
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:
            self.offset = 0
        if size == self.offset:
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read(size - self.offset)
        complete = chunk.rpartition(b"\n")[0]
        if not complete and not chunk.endswith(b"\n"):
            return []
        self.offset += len(complete) + 1
        kept, self.level = self.chosen.select(complete.decode(errors="replace").split("\n"), self.level)
        return kept
