"""
Before a TradingNode is built against IB: does the gateway answer, and is the account visible?

Nautilus's IB clients retry a missing gateway for minutes inside `node.build()` / start; the
preflight connects once with ib_insync, as the node's client id, and a short timeout and turns
"nothing listening", "client id in use", "a different account" or "a symbol IB does not know"
into one clear error within seconds.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass


CLIENT_ID_IN_USE = 326  # IB: "Unable to connect as the client id is already in use"


NO_SECURITY_DEFINITION = 200  # IB: "No security definition has been found for the request"


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


def ib_preflight(host: str, port: int, client_id: int, account: str | None, timeout: float,
                 symbols: tuple[str, ...] = ()) -> PreflightResult:
    """Raises PreflightError unless the gateway answers the API handshake, lists `account` and
    resolves every symbol as a US stock (an unknown one would otherwise end the start as
    "clients did not connect", exit 3, which systemd restarts forever)."""
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
    # ib_insync logs each error to stderr as well; the PreflightError below is the one line
    # an operator needs (the codes it saw are kept and named there).
    logging.getLogger("ib_insync").setLevel(logging.CRITICAL)
    ib = IB()
    codes: list[int] = []
    texts: dict[int, str] = {}

    def on_error(_req: int, code: int, text: str, _contract: object) -> None:
        codes.append(code)
        texts[code] = text

    ib.errorEvent += on_error
    try:
        try:
            # The node's own client id: a gateway that already serves it answers 326, which
            # Nautilus's client would retry inside node.build(), deaf to SIGTERM. The preflight
            # disconnects before the node connects, so it never holds the id.
            ib.connect(host, port, clientId=client_id, timeout=timeout, readonly=True)
        except (TimeoutError, asyncio.TimeoutError, ConnectionError, OSError) as exc:
            if CLIENT_ID_IN_USE in codes:
                raise PreflightError(
                    f"IB preflight: IB_CLIENT_ID {client_id} is already in use on {host}:{port} "
                    f"(IB error {CLIENT_ID_IN_USE}); stop the other API client or choose another id",
                ) from None
            raise PreflightError(
                f"IB preflight: {host}:{port} accepted a connection but did not complete the API "
                f"handshake within {timeout:g} s ({type(exc).__name__}); is it an IB Gateway/TWS "
                "with the API enabled and this host in its trusted IPs?",
            ) from None
        accounts = tuple(ib.managedAccounts())
        version = ib.client.serverVersion()
        from ib_insync import Stock

        for symbol in symbols:
            ib.RequestTimeout = timeout
            if not ib.reqContractDetails(Stock(symbol, "SMART", "USD")):
                error = (f"IB error {NO_SECURITY_DEFINITION}: {texts[NO_SECURITY_DEFINITION]}"
                         if NO_SECURITY_DEFINITION in texts else "no contract details")
                raise PreflightError(
                    f"IB preflight: SYMBOLS {symbol} does not resolve to a US stock on "
                    f"{host}:{port} ({error}); correct or remove the symbol",
                )
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
