"""
Whether an engine's clients can really reach the broker: the watchdog's probes and the node's
``connected`` snapshot.

Rule. A Nautilus client's ``is_connected`` is set once it has connected and cleared only when it
is stopped. The IB clients keep it set through every outage their own loop handles: IB's
connectivity lost (error 1100, the API socket still open but no data and no order routing) and
a gateway restart (the socket closed, the client reconnecting every few seconds). The shared
InteractiveBrokersClient under them holds the real state: its ``_is_ib_connected`` event is
cleared on 1100 (and the other connectivity-lost codes) and on a closed socket, and set again by
1101/1102 or by a new session's handshake. So an engine's link is up when the engine says every
client is connected *and* every IB client under it has its API session and socket.
"""

from __future__ import annotations

from typing import Any

from nautilus_trader.adapters.interactive_brokers.client import InteractiveBrokersClient


def ib_session_up(client: InteractiveBrokersClient) -> bool:
    """The IB client has an API session (handshake done, no connectivity loss since) on an
    open socket."""
    return client._is_ib_connected.is_set() and client._eclient.isConnected()


def engine_link_up(engine: Any) -> bool:
    """``engine.check_connected()`` and, for each IB data or execution client it holds, the
    IB session under it (``ib_session_up``)."""
    if not engine.check_connected():
        return False
    for client in engine._clients.values():
        ib = getattr(client, "_client", None)
        if isinstance(ib, InteractiveBrokersClient) and not ib_session_up(ib):
            return False
    return True
