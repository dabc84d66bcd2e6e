"""
`python -m config COMMAND`: the secrets file and the settings check.

  genkey KEYFILE                  write a new Fernet key (mode 600, outside the repository)
  encrypt PLAIN OUT [--key-file]  encrypt a plain KEY=VALUE secrets file
  decrypt ENCRYPTED [--out FILE]  decrypt (to stdout, or to FILE with mode 600)
  check [--config ENV] [--mode M] [--broker B] [--key-file]
                                  validate settings and secrets by the schema; print them with
                                  secrets masked (run_live.py check also plans the run)
  template                        print config/env_bot.template as generated from the schema

The key comes from BOT_SECRETS_KEY (the key) or BOT_SECRETS_KEY_FILE / --key-file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from config.secrets import SecretsError
from config.secrets import decrypt_file
from config.secrets import encrypt_text
from config.secrets import load_key
from config.secrets import write_key_file
from config.settings import KEYS
from config.settings import SettingsError
from config.settings import load_settings
from config.settings import parse_env_text
from config.settings import render_template


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m config", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    genkey = sub.add_parser("genkey")
    genkey.add_argument("key_file", type=Path)
    encrypt = sub.add_parser("encrypt")
    encrypt.add_argument("plain", type=Path)
    encrypt.add_argument("out", type=Path)
    encrypt.add_argument("--key-file", type=Path)
    decrypt = sub.add_parser("decrypt")
    decrypt.add_argument("encrypted", type=Path)
    decrypt.add_argument("--out", type=Path)
    decrypt.add_argument("--key-file", type=Path)
    check = sub.add_parser("check")
    check.add_argument("--config", type=Path)
    check.add_argument("--mode")
    check.add_argument("--broker")
    check.add_argument("--key-file", type=Path)
    sub.add_parser("template")
    return parser


def _encrypt(plain: Path, out: Path, key_file: Path | None) -> int:
    text = plain.read_text()
    entries, problems = parse_env_text(text, str(plain))
    for name, entry in entries.items():
        if name not in KEYS or not KEYS[name].secret:
            secret_keys = ", ".join(k for k in KEYS if KEYS[k].secret)
            print(f"{entry.source}: {name}: not a secret key; expected one of {secret_keys}",
                  file=sys.stderr)
            return 2
    for problem in problems:
        print(f"{problem.source}: expected KEY=VALUE (line not shown)", file=sys.stderr)
    if problems:
        return 2
    key, _ = load_key(key_file)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(encrypt_text(text, key))
    print(f"encrypted {len(entries)} secret(s) ({', '.join(entries)}) into {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "genkey":
            write_key_file(args.key_file)
            print(f"wrote a new key to {args.key_file}; set BOT_SECRETS_KEY_FILE={args.key_file}")
            return 0
        if args.command == "encrypt":
            return _encrypt(args.plain, args.out, args.key_file)
        if args.command == "decrypt":
            key, source = load_key(args.key_file)
            text = decrypt_file(args.encrypted, key, source)
            if args.out is None:
                sys.stdout.write(text)
            else:
                fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(text)
                print(f"decrypted into {args.out}")
            return 0
        if args.command == "check":
            overrides = {k: v for k, v in (("MODE", args.mode), ("BROKER", args.broker)) if v}
            settings = load_settings(args.config, overrides, key_file=args.key_file)
            for name, value in settings.public().items():
                print(f"{name}={'' if value is None else value}  ({settings.source_of(name)})")
            print("settings valid by the schema; `run_live.py check --config FILE` also plans the "
                  "run (strategies, data, risk limits) as a start would")
            return 0
        if args.command == "template":
            sys.stdout.write(render_template())
            return 0
    except (SecretsError, SettingsError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
