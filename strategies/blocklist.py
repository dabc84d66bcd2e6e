"""
The same-session ticker blocklist shared by every strategy of one trader: a ticker traded by
any strategy today is not traded again today.

It lives in the Nautilus Cache's general key-value store (one key per session date), which
every strategy of a trader shares and which a Redis-backed cache persists across restarts,
so no module-level state is involved.
"""

from __future__ import annotations

import datetime as dt

from nautilus_trader.cache.cache import Cache

KEY_PREFIX = "session-blocklist:"


def _key(session_date: dt.date) -> str:
    return f"{KEY_PREFIX}{session_date.isoformat()}"


def blocked_symbols(cache: Cache, session_date: dt.date) -> frozenset[str]:
    raw = cache.get(_key(session_date))
    if not raw:
        return frozenset()
    return frozenset(raw.decode("ascii").split(","))


def is_blocked(cache: Cache, session_date: dt.date, symbol: str) -> bool:
    return symbol in blocked_symbols(cache, session_date)


def block(cache: Cache, session_date: dt.date, *symbols: str) -> None:
    merged = blocked_symbols(cache, session_date) | set(symbols)
    cache.add(_key(session_date), ",".join(sorted(merged)).encode("ascii"))
