"""python -m adapters.ib_gateway_sim --catalog PATH --port 4002 --speed 60 [--start ...] [--as-now]

--as-now presents the replay as happening now (every timestamp sent shifted by a constant so
the replay starts at the current wall time, see market.as_now_offset): what a live node such
as run_live.py needs, since it stamps quotes and runs its strategies on its own wall clock."""

from __future__ import annotations

import argparse
import asyncio
import logging
from decimal import Decimal
from pathlib import Path

import pandas as pd

from adapters.ib_gateway_sim.faults import load_fault_script
from adapters.ib_gateway_sim.faults import run_fault_script
from adapters.ib_gateway_sim.market import Market
from adapters.ib_gateway_sim.market import ReplayClock
from adapters.ib_gateway_sim.market import as_now_offset
from adapters.ib_gateway_sim.server import Gateway
from adapters.ib_gateway_sim.server import GatewayConfig


def _timestamp(text: str) -> pd.Timestamp:
    ts = pd.Timestamp(text)
    return ts.tz_localize("America/New_York") if ts.tz is None else ts.tz_convert("UTC")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.ib_gateway_sim", description=__doc__)
    parser.add_argument("--catalog", type=Path, required=True, help="Parquet catalog to replay")
    parser.add_argument(
        "--port", type=int, default=4002, help="loopback port (IB Gateway paper: 4002)"
    )
    parser.add_argument(
        "--speed", type=float, default=1.0, help="replay speed (60 = a minute per second)"
    )
    parser.add_argument("--start", type=_timestamp, help="replay start (exchange time if no zone)")
    parser.add_argument(
        "--end",
        type=_timestamp,
        help="last instant of data to load (default: three days after --start)",
    )
    parser.add_argument("--symbols", nargs="*", help="load only these symbols")
    parser.add_argument("--account", default="DU1234567")
    parser.add_argument("--cash", type=Decimal, default=Decimal("100000"))
    parser.add_argument(
        "--as-now",
        action="store_true",
        help="shift every timestamp sent so the replay starts at the current wall time",
    )
    parser.add_argument("--faults", type=Path, help="JSON fault script (see faults.py)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not args.catalog.is_dir():
        parser.error(f"--catalog {args.catalog} is not a directory")
    steps = load_fault_script(args.faults) if args.faults else []
    # data is held in memory as Decimals: load a window around the replay, not a whole year,
    # with ten days before it for warm-up history
    history_start = args.start - pd.Timedelta(days=10) if args.start is not None else None
    end = args.end
    if end is None and args.start is not None:
        end = args.start + pd.Timedelta(days=3)
    market = Market.from_catalog(args.catalog, history_start, end, args.symbols)
    start_ns = args.start.value if args.start is not None else market.first_ts()
    offset = as_now_offset(start_ns) if args.as_now else 0
    gateway = Gateway(
        market,
        ReplayClock(start_ns, args.speed),
        GatewayConfig(args.account, args.cash, wire_offset_ns=offset),
    )

    async def serve() -> None:
        await gateway.start(args.port)
        if steps:
            await run_fault_script(gateway, steps)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
