"""
Dashboard login: the password hash, sessions and their CSRF tokens.

The password comes from the encrypted secrets (WEB_PASSWORD). It is kept only as a scrypt hash:
either the secret already is one (`scrypt$N$r$p$salt$hash`, made by `python -m web
hash-password`), or the plain secret is hashed once at start and dropped. Sessions are random
tokens held in this process's memory (a restart logs everyone out); each carries its own CSRF
token, which every state-changing request made with the session cookie must echo in the
X-CSRF-Token header. API clients may send the session token as a bearer token instead (no
cookie, so no CSRF exposure).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
PREFIX = "scrypt"


class PasswordHashError(ValueError):
    """A WEB_PASSWORD that looks like a hash but is not a valid one."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"{PREFIX}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def password_hash_from_secret(secret: str) -> str:
    """The stored form of WEB_PASSWORD: kept if it is a hash already, else hashed now."""
    if not secret.startswith(PREFIX + "$"):
        return hash_password(secret)
    parts = secret.split("$")
    if len(parts) != 6 or not all(p.isdigit() for p in parts[1:4]):
        raise PasswordHashError(
            "WEB_PASSWORD: expected scrypt$N$r$p$salt$hash (python -m web hash-password) or a "
            "plain password, got a malformed scrypt hash (value not shown)",
        )
    return secret


def verify_password(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                               dklen=len(_unb64(digest)))
    return hmac.compare_digest(candidate, _unb64(digest))


@dataclass
class Session:
    user: str
    expires: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))


class SessionStore:
    """Live sessions by token; expired ones are dropped as they are met."""

    def __init__(self, lifetime_s: float, clock: Callable[[], float] = time.time) -> None:
        self.lifetime_s = lifetime_s
        self.clock = clock
        self._sessions: dict[str, Session] = {}

    def create(self, user: str) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(user, self.clock() + self.lifetime_s)
        self._sessions[token] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        if session.expires < self.clock():
            self._sessions.pop(token, None)
            return None
        return session

    def drop(self, token: str | None) -> None:
        if token:
            self._sessions.pop(token, None)
