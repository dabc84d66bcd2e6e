"""Each strategy's self-check, reported before a run trades."""

from __future__ import annotations

from typing import Any


def self_check_report(strategy: Any) -> tuple[bool, str]:
    """
    (passed, text) for one strategy. `self_check()` may return a bool, a (passed, text) pair,
    or a report object with `ready` (strategies/readiness.py), `passed` or `ok`, and optionally
    `problems()` and `windows`; a strategy without one passes with "no self-check".
    """
    check = getattr(strategy, "self_check", None)
    if check is None:
        return True, "no self-check"
    try:
        result = check()
    except Exception as exc:  # a failing self-check is reported, and blocks a live start
        return False, f"self-check raised {type(exc).__name__}: {exc}"
    if isinstance(result, bool):
        return result, "passed" if result else "failed"
    if isinstance(result, tuple) and len(result) == 2:
        return bool(result[0]), str(result[1])
    attribute = next((a for a in ("ready", "passed", "ok") if hasattr(result, a)), None)
    if attribute is None:
        return False, f"self-check returned {type(result).__name__}, expected a bool or a report"
    passed = bool(getattr(result, attribute))
    text = "ready" if passed else "not ready"
    problems = result.problems() if callable(getattr(result, "problems", None)) else []
    if problems:
        text += ": " + "; ".join(problems)
    windows = getattr(result, "windows", None)
    if windows:
        text += " | windows (ET) " + ", ".join(f"{name} {start}-{end}" for name, (start, end) in windows.items())
    notes = getattr(result, "notes", None)
    if notes:
        text += " | " + "; ".join(notes)
    return passed, text
