"""Settings that mean what they say: an operator's limit holds over a strategy's own value,
percents are never misread, inline comments, and `run_live.py check` plans as a start does."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from config.settings import SettingsError
from config.settings import load_settings
from livenode.builder import LivePlanError
from livenode.builder import make_plan

ROOT = Path(__file__).resolve().parents[1]


def ib_env(tmp_path: Path, *lines: str) -> Path:
    """An IB paper env file (planning an IB run reads no catalog and connects nowhere)."""
    path = tmp_path / "bot.env"
    path.write_text("\n".join(["MODE=paper", "BROKER=ib", "IB_ACCOUNT=DU1234567",
                               f"STATE_DIR={tmp_path / 'state'}", *lines]) + "\n")
    return path


def limit(plan, key: str) -> dict[str, str]:
    return next(item for item in plan.risk_limits() if item["key"] == key)


def test_a_strategys_own_limit_applies_only_where_the_operator_left_the_default(tmp_path: Path) -> None:
    plan = make_plan(load_settings(ib_env(tmp_path, "STRATEGIES=ma_cross")))
    assert plan.risk_config().symbol_cap_pct == Decimal(100)
    assert limit(plan, "SYMBOL_CAP") == {"key": "SYMBOL_CAP", "value": "100%", "from": "ma_cross's own value"}
    assert limit(plan, "DAILY_LOSS_LIMIT") == {"key": "DAILY_LOSS_LIMIT", "value": "5%", "from": "default"}
    assert plan.notes[0] == ("SYMBOL_CAP is 100% for ma_cross (the strategy's own value; the default "
                             "is 10%); set SYMBOL_CAP to hold another limit")


def test_an_explicit_limit_holds_over_the_strategys_own_value(tmp_path: Path) -> None:
    env = ib_env(tmp_path, "STRATEGIES=ma_cross", "SYMBOLS=SPY,QQQ", "SYMBOL_CAP=50")
    plan = make_plan(load_settings(env))
    # the old plan replaced the operator's 50 with ma_cross's 100, silently
    assert plan.risk_config().symbol_cap_pct == Decimal(50)
    assert limit(plan, "SYMBOL_CAP") == {"key": "SYMBOL_CAP", "value": "50%", "from": f"{env}:7"}
    assert plan.notes[0] == f"SYMBOL_CAP=50 ({env}:7) holds; ma_cross's own value 100% is not applied"


def test_an_explicit_limit_the_strategy_cannot_work_with_is_refused_naming_both(tmp_path: Path) -> None:
    env = ib_env(tmp_path, "STRATEGIES=ma_cross", "SYMBOL_CAP=10")
    with pytest.raises(LivePlanError) as info:
        make_plan(load_settings(env))
    assert str(info.value) == (
        f"SYMBOL_CAP=10 ({env}:6): ma_cross (ma_cross) puts 95% of equity into one position, so the "
        "pre-trade gate would refuse every entry it makes; set SYMBOL_CAP to at least 95, or remove "
        "it to take ma_cross's own value"
    )


def test_a_composite_member_that_needs_more_than_the_cap_is_named(tmp_path: Path) -> None:
    env = ib_env(tmp_path, "STRATEGIES=session", "SYMBOLS=SPY,QQQ", "SYMBOL_CAP=20")
    with pytest.raises(LivePlanError, match=r"^SYMBOL_CAP=20 \(.*\): session \(opening_range\) puts 30% "):
        make_plan(load_settings(env))


@pytest.mark.parametrize(("written", "percent"), [("5", "5"), ("5%", "5"), ("0.5%", "0.5"), ("2.5 %", "2.5")])
def test_percents_with_or_without_the_sign(tmp_path: Path, written: str, percent: str) -> None:
    settings = load_settings(ib_env(tmp_path, f"DAILY_LOSS_LIMIT={written}"))
    assert settings.risk_config().daily_loss_limit_pct == Decimal(percent)


def test_a_bare_fraction_is_refused_showing_both_readings(tmp_path: Path) -> None:
    env = ib_env(tmp_path, "DAILY_LOSS_LIMIT=0.05", "MAX_RISK_PER_TRADE=0.025")
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert sorted(str(p) for p in info.value.problems) == [
        f"{env}:5: DAILY_LOSS_LIMIT: '0.05' is ambiguous: as a percent it is 0.05%, as a fraction 5%; "
        "write 0.05% or 5% (values below 1 need the % sign)",
        f"{env}:6: MAX_RISK_PER_TRADE: '0.025' is ambiguous: as a percent it is 0.025%, as a fraction "
        "2.5%; write 0.025% or 2.5% (values below 1 need the % sign)",
    ]


def test_inline_comments_are_not_part_of_the_value(tmp_path: Path) -> None:
    env = ib_env(tmp_path, "LOG_FORMAT=csv  # or json", "SYMBOLS=SPY#x")
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    # a '#' with no space before it is part of the value (and so refused here)
    [problem] = info.value.problems
    assert (problem.key, problem.source) == ("SYMBOLS", f"{env}:6")
    assert "'SPY#x'" in problem.message
    settings = load_settings(ib_env(tmp_path, "LOG_FORMAT=csv  # or json", 'WEB_USER="ops # desk"  # quoted'))
    assert settings["LOG_FORMAT"] == "csv"
    assert settings["WEB_USER"] == "ops # desk"


def test_text_after_a_quoted_value_is_refused(tmp_path: Path) -> None:
    env = ib_env(tmp_path, 'WEB_USER="ops" desk')
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert [str(p) for p in info.value.problems] == [
        f"{env}:5: WEB_USER: unexpected text 'desk' after the quoted value; a comment starts with #",
    ]


def test_check_plans_the_run_as_a_start_does(tmp_path: Path) -> None:
    env = ib_env(tmp_path, "STRATEGIES=eod_momentum", "VIX_MIN=15")
    # the schema alone accepts the file ...
    schema = subprocess.run([sys.executable, "-m", "config", "check", "--config", str(env)],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert schema.returncode == 0
    assert "settings valid by the schema; `run_live.py check --config FILE` also plans" in schema.stdout
    # ... the start's check refuses it in the settings' words, connecting nowhere
    check = subprocess.run([sys.executable, "run_live.py", "check", "--config", str(env)],
                           cwd=ROOT, capture_output=True, text=True, check=False)
    assert check.returncode == 2
    assert check.stderr.strip() == ("run_live.py: STRATEGIES (eod_momentum): VIX_MIN -> min_vix 15: "
                                    "min_vix: the VIX gate needs vix_bar_type (the VIX index bars)")
    ok = subprocess.run([sys.executable, "run_live.py", "check", "--config", str(ib_env(tmp_path, "SYMBOLS=SPY,QQQ"))],
                        cwd=ROOT, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "limit SYMBOL_CAP=100%  (ma_cross's own value)" in ok.stdout
    assert ok.stdout.rstrip().endswith("settings OK: 2 strategy instance(s) planned on 2 instrument(s); "
                                       "nothing was started")


def test_core_rsi_trades_every_session_unless_the_operator_says_otherwise(tmp_path: Path) -> None:
    plan = make_plan(load_settings(ib_env(tmp_path, "STRATEGIES=core_rsi")))
    # the old defaults refused every pre-market and after-hours buy of the plan
    assert plan.settings["EXTENDED_HOURS"] is True
    assert (plan.settings["TRADING_START"], plan.settings["TRADING_END"]) == (None, None)
    assert plan.risk_config().trading_start is None
    assert limit(plan, "TRADING_START") == {"key": "TRADING_START", "value": "", "from": "core_rsi's own value"}
    assert plan.notes[:3] == (
        "EXTENDED_HOURS is true for core_rsi (the strategy's own value; the default is false); set "
        "EXTENDED_HOURS to hold another value",
        "TRADING_START is (empty) for core_rsi (the strategy's own value; the default is 09:30); set "
        "TRADING_START to hold another value",
        "TRADING_END is (empty) for core_rsi (the strategy's own value; the default is 16:00); set "
        "TRADING_END to hold another value",
    )
    env = ib_env(tmp_path, "STRATEGIES=core_rsi", "EXTENDED_HOURS=false", "TRADING_START=09:30",
                 "TRADING_END=16:00")
    plan = make_plan(load_settings(env))
    assert plan.settings["EXTENDED_HOURS"] is False
    assert plan.notes[0] == f"EXTENDED_HOURS=false ({env}:6) holds; core_rsi's own value true is not applied"


def test_a_backtest_takes_the_env_files_limits_as_a_live_start_would(tmp_path: Path) -> None:
    from run_backtest import parse_args
    from run_backtest import request_from_args

    env = tmp_path / "bot.env"
    env.write_text("STRATEGIES=core_rsi\nSYMBOL_CAP=50\nDAILY_LOSS_LIMIT=4%\nSTARTING_CAPITAL=50000\n"
                   "ALLOCATION=60\n")
    request = request_from_args(parse_args(["--strategy", "ma_cross", "--config", str(env)]))
    risk = request.risk_config()
    # the file's explicit cap holds over ma_cross's own 100; the window is the live default
    assert (risk.symbol_cap_pct, risk.daily_loss_limit_pct) == (Decimal(50), Decimal(4))
    assert (str(risk.trading_start), str(risk.trading_end)) == ("09:30:00", "16:00:00")
    assert request.capital == Decimal(50000)
    # without the file a backtest keeps its own defaults: no window, ma_cross's cap
    plain = request_from_args(parse_args(["--strategy", "ma_cross"])).risk_config()
    assert (plain.symbol_cap_pct, plain.trading_start) == (Decimal(100), None)
    # core RSI's own live settings (every session) and ALLOCATION reach it as they would live
    core = request_from_args(parse_args(["--strategy", "core_rsi", "--config", str(env), "--capital", "70000"]))
    assert core.risk_config().trading_start is None
    assert core.capital == Decimal(70000)
    session = request_from_args(parse_args(["--strategy", "opening_range", "--config", str(env)]))
    assert session.overrides["capital_fraction"] == "0.6"


def test_allocation_gives_core_rsi_its_bankroll(tmp_path: Path) -> None:
    plan = make_plan(load_settings(ib_env(tmp_path, "STRATEGIES=core_rsi", "ALLOCATION=40")))
    # ALLOCATION did not reach core RSI: it sized from the whole account
    [core] = plan.strategies
    assert core.config["capital_fraction"] == "0.4"
