"""
Fault scripts for the CLI: a JSON list of timed steps applied to a running Gateway.

    [{"after": 30, "fault": "connectivity_lost"},
     {"after": 40, "fault": "connectivity_restored"},
     {"after": 60, "fault": "restart", "seconds": 5},
     {"after": 90, "fault": "reject_next_order", "reason": "risk"},
     {"after": 90, "fault": "partial_fill_next", "parts": [40, 60], "interval": 1.0},
     {"after": 90, "fault": "delay_next_fill", "seconds": 3}]

``after`` is wall-clock seconds from the gateway's start. Tests call the Gateway methods
directly instead.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.ib_gateway_sim.broker import FillPlan
from adapters.ib_gateway_sim.server import Gateway

FAULTS = (
    "connectivity_lost",
    "connectivity_restored",
    "connectivity_restored_data_lost",
    "drop_connections",
    "restart",
    "market_farm_outage",
    "market_farm_restored",
    "hmds_outage",
    "hmds_restored",
    "reserve_client_id",
    "release_client_id",
    "unresolvable",
    "reject_next_order",
    "partial_fill_next",
    "delay_next_fill",
)


class FaultScriptError(ValueError):
    """A fault script entry that cannot be run; the message names the file and entry."""


@dataclass(frozen=True)
class FaultStep:
    after: float
    fault: str
    args: dict[str, Any]


def load_fault_script(path: Path) -> list[FaultStep]:
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise FaultScriptError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(entries, list):
        raise FaultScriptError(f"{path}: the script must be a JSON list of steps")
    steps = []
    for index, entry in enumerate(entries):
        where = f"{path} step {index}"
        if not isinstance(entry, dict):
            raise FaultScriptError(f"{where}: each step must be an object")
        fault = entry.get("fault")
        if fault not in FAULTS:
            raise FaultScriptError(
                f"{where}: fault must be one of {', '.join(FAULTS)}, got {fault!r}"
            )
        after = entry.get("after")
        if not isinstance(after, int | float) or after < 0:
            raise FaultScriptError(
                f"{where}: after must be a number of seconds >= 0, got {after!r}"
            )
        args = {k: v for k, v in entry.items() if k not in ("fault", "after")}
        steps.append(FaultStep(float(after), fault, args))
    return sorted(steps, key=lambda s: s.after)


async def apply_fault(gateway: Gateway, step: FaultStep) -> None:
    a = step.args
    match step.fault:
        case "connectivity_lost":
            gateway.lose_connectivity()
        case "connectivity_restored":
            gateway.restore_connectivity(data_lost=False)
        case "connectivity_restored_data_lost":
            gateway.restore_connectivity(data_lost=True)
        case "drop_connections":
            gateway.drop_connections()
        case "restart":
            await gateway.restart(float(a.get("seconds", 5)))
        case "market_farm_outage":
            gateway.market_farm_outage()
        case "market_farm_restored":
            gateway.market_farm_restored()
        case "hmds_outage":
            gateway.hmds_outage()
        case "hmds_restored":
            gateway.hmds_restored()
        case "reserve_client_id":
            gateway.reserve_client_id(int(a["client_id"]))
        case "release_client_id":
            gateway.release_client_id(int(a["client_id"]))
        case "unresolvable":
            gateway.make_unresolvable(str(a["symbol"]))
        case "reject_next_order":
            gateway.broker.reject_next_order(str(a.get("reason", "simulated rejection")))
        case "partial_fill_next":
            parts = [Decimal(str(p)) for p in a["parts"]]
            gateway.broker.plan_next_fill(
                FillPlan(parts=parts, part_interval_seconds=float(a.get("interval", 1.0)))
            )
        case "delay_next_fill":
            gateway.broker.plan_next_fill(FillPlan(delay_seconds=float(a["seconds"])))


async def run_fault_script(gateway: Gateway, steps: list[FaultStep]) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    for step in steps:
        await asyncio.sleep(max(0.0, started + step.after - loop.time()))
        await apply_fault(gateway, step)
