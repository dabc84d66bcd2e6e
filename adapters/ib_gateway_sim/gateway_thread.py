"""
Runs a Gateway on its own event loop in a background thread, so a test (or a script) can drive
a real client from the main thread and inject faults in between.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any
from typing import TypeVar

from adapters.ib_gateway_sim.server import Gateway

T = TypeVar("T")


class GatewayThread:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="ib-gateway-sim", daemon=True
        )
        self.port = 0

    def __enter__(self) -> GatewayThread:
        self._thread.start()
        self.port = self.run(self.gateway.start(0))
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(self.gateway.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()

    def run(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the gateway loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Call a gateway method on its loop (state is only touched from there)."""

        async def invoke() -> T:
            return fn(*args)

        return self.run(invoke())
