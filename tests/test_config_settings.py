"""Settings validation (every message class), secrets masking, the Fernet round trip, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from config.__main__ import main as config_main
from config.risk import RiskConfig
from config.secrets import KEY_ENV
from config.secrets import MASK
from config.secrets import Secret
from config.secrets import SecretsError
from config.secrets import generate_key
from config.secrets import json_default
from config.secrets import load_key
from config.settings import SCHEMA
from config.settings import SettingsError
from config.settings import load_settings
from config.settings import render_template

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct-horse-battery-staple"


def write(tmp_path: Path, text: str, name: str = "bot.env") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(path: Path, **kwargs) -> list[str]:
    with pytest.raises(SettingsError) as info:
        load_settings(path, **kwargs)
    return [str(p) for p in info.value.problems]


def test_defaults_are_valid_and_map_onto_risk_config() -> None:
    settings = load_settings(None)
    assert settings.mode == "paper" and settings.broker == "replay"
    # Live applies the entry window by default; RiskConfig's own default (backtests) has none.
    assert settings.risk_config() == RiskConfig(trading_start=dt.time(9, 30), trading_end=dt.time(16, 0))


def test_the_entry_window_keys_map_onto_risk_config_or_are_both_empty(tmp_path: Path) -> None:
    risk = load_settings(write(tmp_path, "TRADING_START=09:45\nTRADING_END=15:50\n")).risk_config()
    assert (risk.trading_start, risk.trading_end) == (dt.time(9, 45), dt.time(15, 50))
    risk = load_settings(write(tmp_path, "TRADING_START=\nTRADING_END=\n")).risk_config()
    assert (risk.trading_start, risk.trading_end) == (None, None)
    path = write(tmp_path, "TRADING_START=09:45\nTRADING_END=\n")
    assert problems_of(path) == [
        f"{path}:2: TRADING_END: expected a time like TRADING_START (09:45), or both empty for no "
        "entry window, got nothing",
    ]


def test_risk_keys_map_onto_risk_config_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "MAX_RISK_PER_TRADE=1.5\nDAILY_LOSS_LIMIT=3\nMAX_OPEN_POSITIONS=4\n")
    risk = load_settings(path).risk_config()
    assert risk.max_risk_per_trade_pct == Decimal("1.5")
    assert risk.daily_loss_limit_pct == Decimal("3")
    assert risk.max_open_positions == 4


def test_weights_that_do_not_sum_to_one(tmp_path: Path) -> None:
    path = write(tmp_path, "STRATEGIES=a,b,c,d\nWEIGHTS=0.4,0.2,0.2,0.1\n")
    assert problems_of(path) == [
        f"{path}:2: WEIGHTS: 4 weights must sum to 1.0, got 0.4,0.2,0.2,0.1",
    ]


def test_weights_count_must_match_strategies(tmp_path: Path) -> None:
    path = write(tmp_path, "STRATEGIES=a,b\nWEIGHTS=0.5,0.25,0.25\n")
    assert problems_of(path) == [
        f"{path}:2: WEIGHTS: expected one weight per strategy (2: a,b), got 3 weights 0.5,0.25,0.25",
    ]


def test_every_problem_is_reported_at_once_with_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# a comment\n"
        "MODE=paper\n"
        "MAX_RISK_PER_TRADE=lots\n"      # 3: bad form
        "FOO_BAR=1\n"                    # 4: unknown key
        "this is not a setting\n"        # 5: syntax
        "MODE=live\n"                    # 6: duplicate
        "IB_PORT=99999\n"                # 7: out of range
        "BROKER=ib\n"
        "TRADING_START=16:30\n",         # 9: cross-field with the default end
    )
    found = problems_of(path)
    assert f"{path}:5: (syntax): expected KEY=VALUE with KEY in capitals, got 'this is not a setting'" in found
    assert f"{path}:6: MODE: set twice (first at {path}:2); expected once" in found
    assert any(p.startswith(f"{path}:4: FOO_BAR: unknown key") and "got FOO_BAR='1'" in p for p in found)
    assert f"{path}:3: MAX_RISK_PER_TRADE: expected a number in (0, 100], got 'lots'" in found
    assert f"{path}:7: IB_PORT: expected an integer from 1 to 65535, got '99999'" in found
    assert f"{path}:9: TRADING_START: expected before TRADING_END (16:00), got 16:30" in found
    # paper with ib needs the account: missing required key names the file.
    assert any(p.startswith(f"{path}: IB_ACCOUNT: required in paper mode with the ib broker") for p in found)
    assert len(found) == 7


def test_missing_required_keys_for_live(tmp_path: Path) -> None:
    path = write(tmp_path, "MODE=live\nBROKER=ib\nIB_ACCOUNT=U123\n")
    found = problems_of(path)
    assert sorted(p.split(": ")[1] for p in found) == ["DAILY_LOSS_LIMIT", "MAX_RISK_PER_TRADE"]
    assert all("required in live mode with the ib broker; expected percent in (0, 100]" in p for p in found)
    # The same file is valid once they are set explicitly.
    write(tmp_path, "MODE=live\nBROKER=ib\nIB_ACCOUNT=U123\nMAX_RISK_PER_TRADE=1\nDAILY_LOSS_LIMIT=2\n")
    assert load_settings(path).mode == "live"


def test_command_line_override_is_validated_as_such(tmp_path: Path) -> None:
    path = write(tmp_path, "BROKER=ib\nIB_ACCOUNT=DU1\n")
    assert problems_of(path, overrides={"MODE": "yolo"}) == [
        "command line: MODE: expected one of dry-run, paper, live, got 'yolo'",
    ]


def test_unknown_strategy_name(tmp_path: Path) -> None:
    path = write(tmp_path, "STRATEGIES=ma_cross,rsi_magic\n")
    assert problems_of(path, known_strategies=["ma_cross", "noop"]) == [
        f"{path}:1: STRATEGIES: expected names from ma_cross, noop, got unknown rsi_magic",
    ]


def test_email_notifications_need_smtp(tmp_path: Path) -> None:
    path = write(tmp_path, "NOTIFY_EMAIL=true\nSMTP_HOST=127.0.0.1\n")
    found = problems_of(path)
    assert found == [
        f"{path}:1: SMTP_SENDER: required when NOTIFY_EMAIL=true; expected text, got nothing",
        f"{path}:1: SMTP_RECIPIENTS: required when NOTIFY_EMAIL=true; expected comma-separated "
        "e-mail addresses, got nothing",
    ]


def test_secret_in_plain_settings_is_refused_without_showing_it(tmp_path: Path) -> None:
    path = write(tmp_path, f"SMTP_PASSWORD={PASSWORD}\n")
    found = problems_of(path)
    assert found == [
        f"{path}:1: SMTP_PASSWORD: a secret; expected it in the secrets file (python -m config "
        "encrypt), got it in the plain settings (value not shown)",
    ]
    assert PASSWORD not in "\n".join(found)


def test_risk_config_refusal_is_reported(tmp_path: Path) -> None:
    # Each key is in range but RiskConfig refuses the combination: still a named problem.
    path = write(tmp_path, "MIN_PRICE=50\nMAX_PRICE=20\n")
    assert problems_of(path) == [f"{path}:1: MIN_PRICE: expected below MAX_PRICE (20), got 50"]


def test_template_lists_every_key_and_is_current() -> None:
    template = (ROOT / "config" / "env_bot.template").read_text()
    assert template == render_template(), "regenerate: python -m config template > config/env_bot.template"
    for key in SCHEMA:
        assert f"# {key.name}=" in template or f"secrets file only) {key.name}=" in template


def test_template_values_are_the_defaults(tmp_path: Path) -> None:
    # Uncommenting every key with a default gives the same settings as an empty file.
    keys = {key.name for key in SCHEMA}
    lines = [
        line[2:] for line in render_template().splitlines()
        if line.startswith("# ") and line[2:].partition("=")[0] in keys
        and not line.rstrip().endswith("=")
    ]
    path = write(tmp_path, "\n".join(lines) + "\n")
    assert load_settings(path).values == load_settings(None).values


# -- secrets -------------------------------------------------------------------------------------


def test_secret_is_masked_everywhere() -> None:
    secret = Secret(PASSWORD)
    logger = logging.getLogger("test.secret")
    rendered = [
        str(secret), repr(secret), f"{secret}", f"{secret!r}", "%s" % secret,
        json.dumps({"p": secret}, default=json_default), repr({"p": secret}),
        logger.makeRecord("x", logging.INFO, "f", 1, "password=%s", (secret,), None).getMessage(),
    ]
    assert all(PASSWORD not in text for text in rendered)
    assert MASK in rendered[0]
    assert secret.reveal() == PASSWORD
    with pytest.raises(TypeError):
        import pickle
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        json.dumps({"p": secret})  # no silent leak through the default encoder either


def _encrypted_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, bytes]:
    key = generate_key()
    monkeypatch.setenv(KEY_ENV, key.decode())
    plain = write(tmp_path, f"SMTP_PASSWORD={PASSWORD}\nWEB_PASSWORD=w3b\n", "plain.secrets")
    encrypted = tmp_path / "bot.secrets.enc"
    assert config_main(["encrypt", str(plain), str(encrypted)]) == 0
    assert PASSWORD.encode() not in encrypted.read_bytes()
    return encrypted, key


def test_encryption_round_trip_through_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    encrypted, _ = _encrypted_setup(tmp_path, monkeypatch)
    path = write(
        tmp_path,
        f"SECRETS_FILE={encrypted}\nNOTIFY_EMAIL=true\nSMTP_HOST=127.0.0.1\nSMTP_SENDER=bot@example.org\n"
        "SMTP_RECIPIENTS=me@example.org\nSMTP_USERNAME=bot\n",
    )
    settings = load_settings(path)
    assert settings["SMTP_PASSWORD"].reveal() == PASSWORD
    assert settings.public()["SMTP_PASSWORD"] == MASK
    assert PASSWORD not in json.dumps(settings.public()) and PASSWORD not in repr(settings)
    assert config_main(["decrypt", str(encrypted)]) == 0
    assert f"SMTP_PASSWORD={PASSWORD}" in capsys.readouterr().out
    assert config_main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "SMTP_PASSWORD=********" in out and PASSWORD not in out


def test_wrong_key_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    encrypted, _ = _encrypted_setup(tmp_path, monkeypatch)
    monkeypatch.setenv(KEY_ENV, generate_key().decode())
    path = write(tmp_path, f"SECRETS_FILE={encrypted}\n")
    assert problems_of(path) == [
        f"{path}:1: SECRETS_FILE: secrets file {encrypted}: cannot be decrypted with the key from "
        f"environment variable {KEY_ENV} (wrong key, or the file is not an encrypted secrets file "
        "or was altered)",
    ]
    assert config_main(["decrypt", str(encrypted)]) == 2
    err = capsys.readouterr().err
    assert "cannot be decrypted with the key" in err and PASSWORD not in err


def test_key_sources(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="no secrets key: set BOT_SECRETS_KEY"):
        load_key(None, environ={})
    with pytest.raises(SecretsError, match="is not a Fernet key"):
        load_key(None, environ={KEY_ENV: "not-a-key"})
    with pytest.raises(SecretsError, match="must be outside the repository"):
        load_key(ROOT / "config" / "bot.key", environ={})
    key_file = tmp_path / "keys" / "bot.key"
    assert config_main(["genkey", str(key_file)]) == 0
    assert key_file.stat().st_mode & 0o077 == 0
    key, source = load_key(None, environ={"BOT_SECRETS_KEY_FILE": str(key_file)})
    assert source == f"key file {key_file}" and key == key_file.read_bytes().strip()


def test_secrets_file_with_a_non_secret_key(tmp_path: Path) -> None:
    secrets = write(tmp_path, "MODE=live\nWEB_PASSWORD=x\n", "secrets.env")
    path = write(tmp_path, f"SECRETS_FILE={secrets}\n")
    found = problems_of(path)
    assert found == [
        f"{secrets}:1: MODE: not a secret key; expected one of IB_PASSWORD, SMTP_PASSWORD, "
        "WEB_PASSWORD (value not shown)",
    ]


def test_plain_secret_files_are_git_ignored(tmp_path: Path) -> None:
    for name in ("bot.secrets", "secrets.env", "config/bot.key"):
        result = subprocess.run(
            ["git", "check-ignore", "-q", name], cwd=ROOT, check=False,
        )
        assert result.returncode == 0, f"{name} is not git-ignored"


def test_cli_check_reports_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "STRATEGIES=a,b\nWEIGHTS=0.5,0.6\n")
    result = subprocess.run(
        [sys.executable, "-m", "config", "check", "--config", str(path)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 2
    assert f"{path}:2: WEIGHTS: 2 weights must sum to 1.0, got 0.5,0.6" in result.stderr


def test_cross_field_rules(tmp_path: Path) -> None:
    path = write(tmp_path, "MODE=live\nBROKER=replay\nREPLAY_START=2024-12-16\nREPLAY_END=2024-12-13\n"
                           "MAX_RISK_PER_TRADE=1\nDAILY_LOSS_LIMIT=2\n")
    assert problems_of(path) == [
        f"{path}:4: REPLAY_END: expected on or after REPLAY_START (2024-12-16), got 2024-12-13",
        f"{path}:2: BROKER: expected ib in live mode (the replay feed has no real account), got 'replay'",
    ]


def test_smtp_login_needs_its_password(tmp_path: Path) -> None:
    path = write(tmp_path, "NOTIFY_EMAIL=true\nSMTP_HOST=127.0.0.1\nSMTP_SENDER=a@b.c\n"
                           "SMTP_RECIPIENTS=d@e.f\nSMTP_USERNAME=bot\n")
    assert problems_of(path) == [
        f"{path}:5: SMTP_PASSWORD: required with SMTP_USERNAME; expected it in the secrets file, got nothing",
    ]
