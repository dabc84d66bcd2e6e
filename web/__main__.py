"""
`python -m web --config bot.env [--key-file KEY]`: the dashboard of the node that writes
STATE_DIR (run it beside `run_live.py`, in its own process: trading never waits on it).

`python -m web hash-password`: read a password from the terminal and print its scrypt hash, to
put in the secrets file as WEB_PASSWORD instead of the plain password.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from config.settings import SettingsError
from config.settings import load_settings
from web.auth import PasswordHashError
from web.auth import hash_password
from web.auth import password_hash_from_secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m web", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=("serve", "hash-password"), default="serve")
    parser.add_argument("--config", type=Path, help="the bot's env file")
    parser.add_argument("--key-file", type=Path, help="Fernet key file for SECRETS_FILE")
    parser.add_argument("--state-dir", type=Path, help="overrides STATE_DIR")
    args = parser.parse_args(argv)
    if args.command == "hash-password":
        print(hash_password(getpass.getpass("dashboard password: ")))
        return 0
    overrides = {"STATE_DIR": str(args.state_dir)} if args.state_dir else {}
    try:
        settings = load_settings(args.config, overrides, key_file=args.key_file)
    except SettingsError as exc:
        print(f"python -m web: {len(exc.problems)} problem(s) in the settings:\n{exc}", file=sys.stderr)
        return 2
    secret = settings["WEB_PASSWORD"]
    if not secret:
        print("python -m web: WEB_PASSWORD: expected it in the secrets file (SECRETS_FILE); the "
              "dashboard never runs without a login", file=sys.stderr)
        return 2
    try:
        password_hash = password_hash_from_secret(secret.reveal())
    except PasswordHashError as exc:
        print(f"python -m web: {exc}", file=sys.stderr)
        return 2
    del secret

    import uvicorn

    from web.app import WebConfig
    from web.app import create_app

    app = create_app(WebConfig(
        state_dir=settings["STATE_DIR"], user=settings["WEB_USER"], password_hash=password_hash,
        session_hours=settings["WEB_SESSION_HOURS"], settings_public=settings.public(),
        backtest_results=settings["BACKTEST_RESULTS"], env_file=args.config, key_file=args.key_file,
        node_stale_s=settings["WEB_NODE_STALE_SECONDS"],
        command_expiry_s=settings["WEB_COMMAND_EXPIRY_SECONDS"],
        allowed_hosts=allowed_hosts(settings["WEB_ALLOWED_HOSTS"], settings["WEB_HOST"]),
        trusted_proxies=settings["WEB_TRUSTED_PROXIES"], max_body_bytes=settings["WEB_MAX_BODY_BYTES"],
    ))
    # Forwarded headers are handled (for WEB_TRUSTED_PROXIES only) inside the app; uvicorn's
    # own handling would believe them from any local process on 127.0.0.1.
    uvicorn.run(app, host=settings["WEB_HOST"], port=settings["WEB_PORT"], log_level="warning",
                proxy_headers=False)
    return 0


def allowed_hosts(configured: tuple[str, ...], bound: str) -> tuple[str, ...]:
    """WEB_ALLOWED_HOSTS, plus the address the dashboard listens on unless that is a wildcard."""
    return configured if bound in ("0.0.0.0", "::") or bound in configured else (*configured, bound)


if __name__ == "__main__":
    sys.exit(main())
