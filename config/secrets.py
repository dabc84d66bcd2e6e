"""
Secrets: a value type that never prints itself, and the Fernet-encrypted secrets file.

The encrypted file holds `KEY=VALUE` lines (the same form as the env file) encrypted as one
Fernet token. Its key comes from the environment variable BOT_SECRETS_KEY (the key itself) or
from a key file named by BOT_SECRETS_KEY_FILE / --key-file; a key file inside the repository is
refused, so a key can never be committed next to the file it opens.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken

KEY_ENV = "BOT_SECRETS_KEY"
KEY_FILE_ENV = "BOT_SECRETS_KEY_FILE"
MASK = "********"
REPO_ROOT = Path(__file__).resolve().parent.parent


class SecretsError(ValueError):
    """The secrets file or its key cannot be used; the message never contains a secret."""


class Secret:
    """
    A secret string. str(), repr(), format() and JSON give the mask; only reveal() gives the
    value, at the one place it is handed to a client library.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:
        # Pickling would carry the value into another process's logs or files unseen.
        raise TypeError("Secret values are not picklable")


def json_default(value: object) -> object:
    """`json.dumps(..., default=json_default)`: secrets become the mask."""
    if isinstance(value, Secret):
        return MASK
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def generate_key() -> bytes:
    return Fernet.generate_key()


def _inside_repo(path: Path) -> bool:
    try:
        path.resolve().relative_to(REPO_ROOT)
    except ValueError:
        return False
    return True


def write_key_file(path: Path) -> None:
    """A new key in a file readable by its owner only, outside the repository."""
    if _inside_repo(path):
        raise SecretsError(f"key file {path}: must be outside the repository ({REPO_ROOT})")
    if path.exists():
        raise SecretsError(f"key file {path}: already exists; not overwriting a key")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(generate_key() + b"\n")


def load_key(key_file: Path | None = None, environ: dict[str, str] | None = None) -> tuple[bytes, str]:
    """The Fernet key and where it came from (for messages); raises SecretsError."""
    env = os.environ if environ is None else environ
    if key_file is None and env.get(KEY_ENV):
        key, source = env[KEY_ENV].strip().encode(), f"environment variable {KEY_ENV}"
    else:
        if key_file is None and env.get(KEY_FILE_ENV):
            key_file = Path(env[KEY_FILE_ENV])
        if key_file is None:
            raise SecretsError(
                f"no secrets key: set {KEY_ENV} to the key, or {KEY_FILE_ENV} (or --key-file) "
                "to a key file outside the repository (python -m config genkey PATH makes one)",
            )
        if _inside_repo(key_file):
            raise SecretsError(f"key file {key_file}: must be outside the repository ({REPO_ROOT})")
        try:
            key = key_file.read_bytes().strip()
        except OSError as exc:
            raise SecretsError(f"key file {key_file}: cannot be read ({exc.strerror})") from None
        source = f"key file {key_file}"
    try:
        Fernet(key)
    except (ValueError, TypeError):
        raise SecretsError(
            f"the secrets key from {source} is not a Fernet key (32 url-safe base64-encoded bytes)",
        ) from None
    return key, source


def encrypt_text(plain: str, key: bytes) -> bytes:
    return Fernet(key).encrypt(plain.encode())


def decrypt_file(path: Path, key: bytes, key_source: str) -> str:
    try:
        token = path.read_bytes()
    except OSError as exc:
        raise SecretsError(f"secrets file {path}: cannot be read ({exc.strerror})") from None
    try:
        return Fernet(key).decrypt(token.strip()).decode()
    except InvalidToken:
        raise SecretsError(
            f"secrets file {path}: cannot be decrypted with the key from {key_source} "
            "(wrong key, or the file is not an encrypted secrets file or was altered)",
        ) from None
