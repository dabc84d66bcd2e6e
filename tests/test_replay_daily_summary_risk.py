"""A replay's daily summary keeps the day's risk events, stamped in data time: the crash day
(tests/test_backtest_risk_layer.py) replayed through run_live.py halts on its 12:53 ET bar, and
daily_summary.json and session_summary.json list that halt under 2024-03-05 with its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.test_backtest_risk_layer import crash_catalog  # noqa: F401 (the fixture)
from tests.test_live_persistence import ROOT
from tests.test_live_persistence import env_file


def test_a_replay_halt_is_in_the_days_summary(crash_catalog: Path, tmp_path: Path) -> None:  # noqa: F811
    state = tmp_path / "state"
    state.mkdir()
    # The backtest's crash-day settings: MA cross 2/4 buys 203 shares on the climb.
    (state / "parameters.json").write_text(json.dumps({"MACross-SPY": {"fast_period": 2, "slow_period": 4}}))
    env = env_file(tmp_path, crash_catalog, SYMBOLS="SPY", STRATEGIES="ma_cross", REPLAY_START="2024-03-05")
    run = subprocess.run([sys.executable, "run_live.py", "--config", str(env)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    day = json.loads((state / "daily_summary.json").read_text())["2024-03-05"]
    # 12:53 ET is 17:53 UTC; the loss is 100,000.00 - (5,212.19 + 203 x 434.43) = 6,598.52.
    assert day["risk_events"] == [
        {"time": "2024-03-05T05:00:00+00:00", "kind": "resume", "source": "RiskEngine",
         "detail": "trading state ACTIVE"},
        {"time": "2024-03-05T17:53:00+00:00", "kind": "halt", "source": "kill_switch",
         "detail": "day loss 6598.52 reached the limit 5000.00 (DAILY_LOSS_LIMIT 5% of session start "
                   "equity 100000.00; equity 93401.48, loss 6.60%)"},
        {"time": "2024-03-05T17:53:00+00:00", "kind": "limit", "source": "RiskEngine",
         "detail": "trading state REDUCING"},
        {"time": "2024-03-05T17:53:00+00:00", "kind": "halt", "source": "RiskEngine",
         "detail": "trading state HALTED"},
    ]
    # Cash after the kill switch's sale: 5,212.19 + 203 x 434.42 - 1.02 = 93,398.43.
    assert (day["cash"], day["pnl"], day["trades"]) == ("93398.43", "-6601.57", 1)
    session = json.loads((state / "session_summary.json").read_text())
    assert session["daily_summaries"] == [day]
