"""
The soak check (scripts/soak.py) on a short window in CI: MA cross and core RSI through the
live node on the replay feed, records on, then its invariants (no error line, reconcile to the
cent, one daily summary per session, the backtest's fills). The session family's soak over the
weeks it needs to warm its volume filter is tests/test_replay_unattended.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from scripts.soak import soak


@pytest.mark.parametrize("family", ["ma_cross", "core_rsi"])
def test_a_week_of_unattended_replay_holds_every_invariant(family: str, sample_catalog: Path, tmp_path: Path) -> None:
    result = soak(family, dt.date(2024, 12, 16), dt.date(2024, 12, 20), sample_catalog, tmp_path)
    assert result.problems == []
    assert result.fills > 0 and result.sessions == 5
