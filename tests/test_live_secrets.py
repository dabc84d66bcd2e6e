"""A live run at DEBUG level with an SMTP password: the password appears in no output or file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from config.secrets import KEY_ENV
from config.secrets import encrypt_text
from config.secrets import generate_key

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Sup3r-S3cret-PW"


def test_the_password_reaches_no_log_report_or_snapshot(sample_catalog: Path, tmp_path: Path) -> None:
    key = generate_key()
    encrypted = tmp_path / "bot.secrets.enc"
    encrypted.write_bytes(encrypt_text(f"SMTP_PASSWORD={PASSWORD}\n", key))
    state = tmp_path / "state"
    env = tmp_path / "bot.env"
    env.write_text(
        f"BROKER=replay\nSYMBOLS=SPY\nREPLAY_CATALOG={sample_catalog}\nREPLAY_START=2024-12-16\n"
        f"REPLAY_SPEED=max\nSTATE_DIR={state}\nLOG_LEVEL=DEBUG\nSECRETS_FILE={encrypted}\n"
        # Alerts go to a loopback port where nothing listens: they fail and are logged.
        "NOTIFY_EMAIL=true\nSMTP_HOST=127.0.0.1\nSMTP_PORT=1\nSMTP_SENDER=bot@example.org\n"
        "SMTP_RECIPIENTS=me@example.org\nSMTP_USERNAME=bot\n",
    )
    result = subprocess.run(
        [sys.executable, "run_live.py", "--config", str(env)], cwd=ROOT, capture_output=True,
        text=True, timeout=300, check=False, env={"PATH": "/usr/bin:/bin", KEY_ENV: key.decode()},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    written = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name == "node.log" for p in written)
    for path in written:
        assert PASSWORD.encode() not in path.read_bytes(), path
