"""
Before a TradingNode is built against IB: does the gateway answer, and is the account visible?

Nautilus's IB clients retry a missing gateway for minutes inside `node.build()` / start; the
preflight connects once with ib_insync and a short timeout and turns "nothing listening" or "a
different account" into one clear error within seconds.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass


class PreflightError(RuntimeError):
    """The gateway cannot be used; the message says what to check."""


@dataclass(frozen=True)
class PreflightResult:
    accounts: tuple[str, ...]
    server_version: int


def _port_open(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ib_preflight(host: str, port: int, client_id: int, account: str | None, timeout: float) -> PreflightResult:
    """Raises PreflightError unless the gateway answers the API handshake and lists `account`."""
    if not _port_open(host, port, timeout):
        raise PreflightError(
            f"IB preflight: nothing answers at {host}:{port} (IB_HOST/IB_PORT) within {timeout:g} s; "
            "start IB Gateway or TWS, enable the API on that port, and check the paper/live port "
            "(gateway 4002/4001, TWS 7497/7496)",
        )
    # ib_insync needs an event loop of its own; the node has not made one yet.
    from ib_insync import IB

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    ib = IB()
    try:
        try:
            # A client id one above the node's, so the preflight never holds the node's id.
            ib.connect(host, port, clientId=client_id + 1000, timeout=timeout, readonly=True)
        except (TimeoutError, asyncio.TimeoutError, ConnectionError, OSError) as exc:
            raise PreflightError(
                f"IB preflight: {host}:{port} accepted a connection but did not complete the API "
                f"handshake within {timeout:g} s ({type(exc).__name__}); is it an IB Gateway/TWS "
                "with the API enabled and this host in its trusted IPs?",
            ) from None
        accounts = tuple(ib.managedAccounts())
        version = ib.client.serverVersion()
    finally:
        ib.disconnect()
        loop.close()
        asyncio.set_event_loop(None)
    if account and account not in accounts:
        raise PreflightError(
            f"IB preflight: IB_ACCOUNT {account} is not visible on {host}:{port}; the gateway "
            f"is logged in to {', '.join(accounts) or 'no account'}",
        )
    return PreflightResult(accounts, version)
