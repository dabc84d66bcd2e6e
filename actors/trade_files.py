"""
The journal's flat files: trade_history (CSV or JSON Lines), one log per strategy, and
daily_summary.json.

trade_history and the logs are opened in append mode and flushed per row (and fsynced in
paper and live): they grow, they are never rewritten. trade_history.json holds one JSON object per line (JSON
Lines), because a JSON array cannot be appended to without rewriting the file.
daily_summary.json maps session dates to summaries; it is replaced atomically (write a
temporary file, then rename) so a crash leaves the previous version intact.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

TRADE_HISTORY_COLUMNS = [
    "timestamp", "strategy_name", "ticker", "side", "size", "entry_price", "exit_price", "PnL",
    "charges", "commission", "broker", "mode", "error_code", "order_ref",
]
LOG_FORMATS = ("csv", "json")


class TradeFileError(ValueError):
    """A trade file that cannot be appended to as configured."""


def _append(path: Path, text: str, durable: bool) -> None:
    """One write per record; durable also syncs it to disk (paper and live)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        if durable:
            os.fsync(handle.fileno())


class TradeHistory:
    """Appends one row per fill or refused order to trade_history.csv or trade_history.json."""

    def __init__(self, directory: Path, log_format: str, durable: bool = True) -> None:
        self.durable = durable
        if log_format not in LOG_FORMATS:
            raise TradeFileError(f"LOG_FORMAT must be csv or json, got {log_format!r}")
        self.log_format = log_format
        self.path = directory / f"trade_history.{log_format}"
        if log_format == "csv" and self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(encoding="utf-8", newline="") as handle:
                header = next(csv.reader(handle), [])
            if header != TRADE_HISTORY_COLUMNS:
                raise TradeFileError(
                    f"{self.path} line 1: header {header} is not {TRADE_HISTORY_COLUMNS}; "
                    "move the old file aside, it is never rewritten",
                )

    def append(self, row: dict[str, str]) -> None:
        unknown = set(row) - set(TRADE_HISTORY_COLUMNS)
        if unknown:
            raise TradeFileError(f"trade_history row has unknown columns {sorted(unknown)}")
        full = {column: row.get(column, "") for column in TRADE_HISTORY_COLUMNS}
        if self.log_format == "json":
            _append(self.path, json.dumps(full) + "\n", self.durable)
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=TRADE_HISTORY_COLUMNS, lineterminator="\n")
        if not self.path.exists() or self.path.stat().st_size == 0:
            writer.writeheader()
        writer.writerow(full)
        _append(self.path, buffer.getvalue(), self.durable)


def read_trade_history(path: Path) -> list[dict[str, str]]:
    """Rows of a trade_history file; a malformed row is an error naming the file and line."""
    if not path.exists():
        raise TradeFileError(f"{path}: no such trade history")
    rows = []
    if path.suffix == ".json":
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise TradeFileError(f"{path} line {number}: not a JSON object ({exc.msg})") from None
        return rows
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != TRADE_HISTORY_COLUMNS:
            raise TradeFileError(f"{path} line 1: header {reader.fieldnames} is not {TRADE_HISTORY_COLUMNS}")
        for row in reader:
            if None in row or any(value is None for value in row.values()):
                raise TradeFileError(f"{path} line {reader.line_num}: wrong number of fields")
            rows.append(row)
    return rows


class StrategyLogs:
    """<directory>/<strategy>.log, one line per journal record of that strategy."""

    def __init__(self, directory: Path, durable: bool = True) -> None:
        self.directory = directory
        self.durable = durable

    def write(self, strategy: str, timestamp: str, line: str) -> None:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in strategy)
        _append(self.directory / f"{safe}.log", f"{timestamp} {line}\n", self.durable)


def write_daily_summary(path: Path, session_date: str, summary: dict[str, Any]) -> None:
    """Adds (or replaces) one session's entry; earlier sessions are kept."""
    existing: dict[str, Any] = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise TradeFileError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    existing[session_date] = summary
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(dict(sorted(existing.items())), handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
