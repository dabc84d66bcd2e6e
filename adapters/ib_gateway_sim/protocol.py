"""
The TWS API socket framing, as IB Gateway speaks it before protobuf (server versions < 201).

Every message is a 4-byte big-endian length followed by NUL-terminated ASCII fields; the first
field of a message is its numeric id. The client opens with ``API\\0`` and one framed field
``v<min>..<max>[ <options>]``; the server answers with one frame of two fields, its version and
the connection time, and from then on both sides exchange framed messages.

Pure functions only: the server and the tests share them, and nothing here touches a socket.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

HANDSHAKE_PREFIX = b"API\0"
# 176 keeps both clients on the plain-text encoding: ib_insync 0.9.86 tops out at 176 and
# nautilus-ibapi switches to protobuf at 201. Field layouts below are those of version 176.
SERVER_VERSION = 176
MAX_MESSAGE_BYTES = 0xFFFFFF  # ibapi's MAX_MSG_LEN: larger frames are a protocol error

UNSET_INTEGER = 2**31 - 1
UNSET_DOUBLE = 1.7976931348623157e308
# How the gateway writes an unset double (Java's Double.MAX_VALUE), e.g. an LMT order's auxPrice;
# an unset integer goes out as 2147483647. Clients write unset values as empty fields instead.
UNSET_DOUBLE_TEXT = "1.7976931348623157E308"

Field = str | int | float | Decimal | bool | None


class ProtocolError(ValueError):
    """Bytes that do not follow the TWS API framing or handshake."""


def encode_field(value: Field) -> str:
    """One field as the gateway writes it: None empty, 1/0 for booleans, plain decimals,
    unset doubles as Double.MAX_VALUE and unset integers as Integer.MAX_VALUE."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == UNSET_DOUBLE:
            return UNSET_DOUBLE_TEXT
        if value == float("inf"):
            return "Infinity"
        return format(Decimal(repr(value)).normalize(), "f")
    if isinstance(value, Decimal):
        return (
            format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
        )
    if "\0" in value:
        raise ProtocolError(f"a field cannot contain NUL: {value!r}")
    return value


def frame(payload: bytes) -> bytes:
    if len(payload) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(payload)} bytes exceeds {MAX_MESSAGE_BYTES}")
    return struct.pack("!I", len(payload)) + payload


def encode_message(fields: Iterable[Field]) -> bytes:
    """A framed message from its fields (the message id first)."""
    return frame("".join(encode_field(f) + "\0" for f in fields).encode("ascii", "replace"))


def split_fields(payload: bytes) -> list[str]:
    """Fields of one message payload; every field is NUL-terminated, so the tail is dropped."""
    if not payload.endswith(b"\0"):
        raise ProtocolError(f"payload is not NUL-terminated: {payload[:60]!r}")
    return payload.decode("utf-8", "backslashreplace").split("\0")[:-1]


class FrameBuffer:
    """Accumulates socket bytes and yields complete payloads as they arrive."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._data += data
        while len(self._data) >= 4:
            (size,) = struct.unpack("!I", self._data[:4])
            if size > MAX_MESSAGE_BYTES:
                raise ProtocolError(f"frame length {size} exceeds {MAX_MESSAGE_BYTES}")
            if len(self._data) < 4 + size:
                return
            payload = bytes(self._data[4 : 4 + size])
            del self._data[: 4 + size]
            yield payload


@dataclass(frozen=True)
class Hello:
    """The client's opening: the range of server versions it accepts and connect options."""

    min_version: int
    max_version: int
    options: str


def parse_hello(payload: bytes) -> Hello:
    """Parse ``v<min>..<max>[ <options>]`` (the frame after ``API\\0``)."""
    text = payload.decode("ascii", "replace")
    head, _, options = text.partition(" ")
    if not head.startswith("v") or ".." not in head:
        raise ProtocolError(f"handshake must be 'v<min>..<max>', got {text!r}")
    low, _, high = head[1:].partition("..")
    try:
        return Hello(int(low), int(high), options.strip())
    except ValueError:
        raise ProtocolError(f"handshake versions are not integers: {text!r}") from None


def negotiate(hello: Hello, server_version: int = SERVER_VERSION) -> int:
    """The server version both sides accept, or a ProtocolError naming the ranges."""
    if not hello.min_version <= server_version <= hello.max_version:
        raise ProtocolError(
            f"client accepts server versions {hello.min_version}..{hello.max_version}, "
            f"this gateway speaks {server_version}",
        )
    return server_version


class FieldReader:
    """Reads an incoming message's fields in order, with errors naming the message and field."""

    def __init__(self, fields: list[str], message: str) -> None:
        self._fields = fields
        self._pos = 0
        self.message = message

    def skip(self, count: int = 1) -> None:
        self._pos += count

    def _next(self, name: str) -> str:
        if self._pos >= len(self._fields):
            raise ProtocolError(f"{self.message}: missing field {name!r} at {self._pos}")
        value = self._fields[self._pos]
        self._pos += 1
        return value

    def str(self, name: str) -> str:
        return self._next(name)

    def int(self, name: str, default: int = 0) -> int:
        raw = self._next(name)
        if raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise ProtocolError(
                f"{self.message}: field {name!r} must be an integer, got {raw!r}"
            ) from None

    def decimal(self, name: str) -> Decimal | None:
        raw = self._next(name)
        if raw in ("", str(UNSET_INTEGER), "1.7976931348623157E308", "1.7976931348623157e+308"):
            return None
        try:
            return Decimal(raw)
        except ArithmeticError:
            raise ProtocolError(
                f"{self.message}: field {name!r} must be a number, got {raw!r}"
            ) from None

    def bool(self, name: str) -> bool:
        return self.int(name) != 0
