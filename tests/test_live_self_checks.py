"""Self-check reports before trading: their forms, and a live start refused when one fails."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from livenode.selfcheck import self_check_report
from strategies.readiness import ReadinessReport

ROOT = Path(__file__).resolve().parents[1]


class Plain:
    pass


@dataclass
class WithCheck:
    result: object

    def self_check(self) -> object:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_report_forms() -> None:
    assert self_check_report(Plain()) == (True, "no self-check")
    assert self_check_report(WithCheck(True)) == (True, "passed")
    assert self_check_report(WithCheck((False, "no quotes yet"))) == (False, "no quotes yet")
    assert self_check_report(WithCheck(RuntimeError("boom"))) == (
        False, "self-check raised RuntimeError: boom")
    assert self_check_report(WithCheck(42)) == (
        False, "self-check returned int, expected a bool or a report")
    report = ReadinessReport(
        strategy="ORB", instruments_loaded={"SPY.ARCX": True},
        data_subscribed={"SPY.ARCX-1-MINUTE-LAST-EXTERNAL": False},
        parameter_problems=(), session_date="2024-12-16", windows={"entry": ("09:30", "10:20")},
    )
    assert self_check_report(WithCheck(report)) == (
        False, "not ready: bars SPY.ARCX-1-MINUTE-LAST-EXTERNAL not subscribed | windows (ET) entry 09:30-10:20",
    )


# Live mode cannot be reached with the replay broker through the settings (it needs IB); the
# runner's gate on self-checks is driven directly with live settings over the replay feed.
LIVE_WITH_A_FAILING_CHECK = """
import json, sys
from pathlib import Path
from config.settings import Settings, load_settings
from livenode.builder import make_plan
from livenode.runner import LiveRunner
import strategies.ma_cross as ma

ma.MACross.self_check = lambda self: (False, "feed not verified")
base = load_settings(Path(sys.argv[1]))
settings = Settings(base.values | {"MODE": "live"}, base.sources)
runner = LiveRunner(make_plan(settings))
runner.build()
code = runner.run()
print(json.dumps({"code": code, "error": runner.error}))
"""


def test_live_start_is_refused_when_a_self_check_fails(sample_catalog: Path, tmp_path: Path) -> None:
    env = tmp_path / "bot.env"
    env.write_text(
        f"BROKER=replay\nREPLAY_CATALOG={sample_catalog}\nREPLAY_START=2024-12-16\nREPLAY_SPEED=max\n"
        f"STATE_DIR={tmp_path / 'state'}\nLOG_LEVEL=ERROR\nJOURNAL=false\nGNC_EXPORT_MODE=off\n",
    )
    result = subprocess.run([sys.executable, "-c", LIVE_WITH_A_FAILING_CHECK, str(env)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "MACross-SPY: FAIL - feed not verified" in result.stdout
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"code": 2, "error": "live mode needs every strategy's self-check to pass; not trading"}
    summary = json.loads((tmp_path / "state" / "session_summary.json").read_text())
    assert summary["orders"] == 0 and summary["stop_reason"] == "self-checks failed in live mode"
    assert summary["gate"]["trading_state"] == "HALTED"  # the startup hold was never lifted
