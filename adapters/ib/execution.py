"""
The IB execution client of an extended-hours run: every order is sent with `outsideRth`, so
IB may fill it in the pre-market and after-hours sessions (EXTENDED_HOURS=true).

IB ignores the flag inside regular hours, so it is set on every order rather than guessed
from the clock; strategies never know which adapter carries their orders.
"""

from __future__ import annotations

from typing import Any

from nautilus_trader.adapters.interactive_brokers.execution import InteractiveBrokersExecutionClient
from nautilus_trader.adapters.interactive_brokers.factories import InteractiveBrokersLiveExecClientFactory


def mark_outside_rth(ib_order: Any) -> Any:
    ib_order.outsideRth = True
    return ib_order


class ExtendedHoursExecutionClient(InteractiveBrokersExecutionClient):
    def _transform_order_to_ib_order(self, order: Any, params: dict[str, Any] | None = None) -> Any:
        return mark_outside_rth(super()._transform_order_to_ib_order(order, params))


class ExtendedHoursExecClientFactory(InteractiveBrokersLiveExecClientFactory):
    @staticmethod
    def create(*args: Any, **kwargs: Any) -> ExtendedHoursExecutionClient:  # type: ignore[override]
        client = InteractiveBrokersLiveExecClientFactory.create(*args, **kwargs)
        # The stock factory wires the shared IB connection and instrument provider; the
        # subclass changes one method and adds no state, so re-classing the built client is safe.
        client.__class__ = ExtendedHoursExecutionClient
        return client
