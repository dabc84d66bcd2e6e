"""A few raw Redis commands over a socket (the project does not depend on a Redis client)."""

from __future__ import annotations

import os
import socket

import pytest

REDIS = ("127.0.0.1", 6379)


def _encode(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        data = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _read_reply(handle) -> object:
    line = handle.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind in (b"+", b"-"):
        return rest.decode()
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = handle.read(size + 2)[:-2]
        return data.decode(errors="replace")
    if kind == b"*":
        return [_read_reply(handle) for _ in range(int(rest))]
    raise ValueError(f"unexpected Redis reply {line!r}")


def redis_command(*parts: str) -> object:
    with socket.create_connection(REDIS, timeout=2) as sock:
        sock.sendall(_encode(*parts))
        return _read_reply(sock.makefile("rb"))


def require_redis() -> None:
    """Skip without Redis at 127.0.0.1:6379, except on CI where it must be there."""
    try:
        reachable = redis_command("PING") == "PONG"
    except OSError:
        reachable = False
    if not reachable:
        reason = "Redis not reachable at 127.0.0.1:6379"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def delete_keys(pattern: str) -> None:
    keys = redis_command("KEYS", pattern)
    if keys:
        redis_command("DEL", *keys)
