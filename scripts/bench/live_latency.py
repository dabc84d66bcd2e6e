"""
Live-node latency: the time from a replayed bar being handed to the TradingNode to the
strategy's order submission, inside the live node (run_live's code path, replay broker, paper
mode, the risk actors on).

    .venv/bin/python -m scripts.bench.live_latency [--start 2024-10-01] [--end 2024-12-31]
        [--symbols SPY,QQQ] [--catalog PATH]

Start: the replay client's `_handle_data` call for the bar (the moment a live adapter would
hand a bar over). End: the SubmitOrder command reaching the `RiskEngine.execute` endpoint (the
pre-trade gate), i.e. the strategy's submission after the data queue hop, the data engine, the
5-minute aggregation, the indicators and the strategy's own logic. The replay runs as fast as
the node takes the data, one timestamp at a time, so each order's triggering bar is the last
bar handed over for its instrument. Both ends use time.perf_counter_ns.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from scripts.bench.machine import describe_machine
from scripts.bench.machine import peak_rss_mib


def measure(catalog: Path, start: str, end: str, symbols: str, records: bool = True) -> dict[str, Any]:
    from nautilus_trader.execution.messages import SubmitOrder
    from nautilus_trader.model.data import Bar
    from nautilus_trader.model.identifiers import ClientId

    from actors.pre_trade_gate import RISK_ENGINE_ENDPOINT
    from adapters.replay.config import REPLAY_CLIENT_ID
    from config.settings import build_settings
    from config.settings import Entry
    from livenode.builder import make_plan
    from livenode.runner import LiveRunner

    state = Path(tempfile.mkdtemp(prefix="live-latency-"))
    values = {
        "BROKER": "replay", "MODE": "paper", "STRATEGIES": "ma_cross", "SYMBOLS": symbols,
        "REPLAY_CATALOG": str(catalog), "REPLAY_START": start, "REPLAY_END": end,
        "REPLAY_SPEED": "max", "STATE_DIR": str(state), "LOG_LEVEL": "ERROR",
        "JOURNAL": "true" if records else "false", "GNC_EXPORT_MODE": "auto" if records else "off",
    }
    settings = build_settings({k: Entry(v, "benchmark") for k, v in values.items()})
    runner = LiveRunner(make_plan(settings), out=lambda _: None)
    node = runner.build()
    client = node.kernel.data_engine._clients[ClientId(REPLAY_CLIENT_ID)]
    handed: dict[str, int] = {}
    latencies_ns: list[int] = []
    bars = 0

    original_handle = client._handle_data

    def handle_data(data: Any) -> None:
        nonlocal bars
        if isinstance(data, Bar):
            handed[str(data.bar_type.instrument_id)] = time.perf_counter_ns()
            bars += 1
        original_handle(data)

    client._handle_data = handle_data
    msgbus = node.kernel.msgbus
    gate_execute = runner.gate.execute

    def execute(command: Any) -> None:
        if isinstance(command, SubmitOrder):
            latencies_ns.append(time.perf_counter_ns() - handed[str(command.instrument_id)])
        gate_execute(command)

    msgbus.deregister(RISK_ENGINE_ENDPOINT, gate_execute)
    msgbus.register(RISK_ENGINE_ENDPOINT, execute)
    wall = time.perf_counter()
    runner.run()
    wall = time.perf_counter() - wall
    if not latencies_ns:
        raise SystemExit("no order was submitted in the range: choose a longer range")
    micros = sorted(ns / 1000 for ns in latencies_ns)
    p99_index = max(0, int(round(0.99 * len(micros))) - 1)
    return {
        "orders": len(micros),
        "bars": bars,
        "median_us": statistics.median(micros),
        "p99_us": micros[p99_index],
        "max_us": micros[-1],
        "wall_s": wall,
        "bars_per_s": bars / wall,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, help="default: the embedded sample catalog")
    parser.add_argument("--start", default="2024-10-01")
    parser.add_argument("--end", default="2024-12-31")
    parser.add_argument("--symbols", default="SPY,QQQ")
    parser.add_argument("--no-records", action="store_true",
                        help="run without the journal and the GnuCash ledger")
    args = parser.parse_args(argv)
    from catalog.sample import ensure_sample_catalog
    from catalog.store import DEFAULT_CATALOG

    catalog = args.catalog or ensure_sample_catalog(DEFAULT_CATALOG)
    result = measure(catalog, args.start, args.end, args.symbols, records=not args.no_records)
    console = Console()
    table = Table(title="Replayed bar -> strategy order submission, inside the live node")
    for column in ("orders", "bars", "median", "p99", "max", "replay wall time", "bars/s"):
        table.add_column(column, justify="right")
    table.add_row(
        str(result["orders"]), str(result["bars"]), f"{result['median_us']:.0f} us",
        f"{result['p99_us']:.0f} us", f"{result['max_us']:.0f} us", f"{result['wall_s']:.1f} s",
        f"{result['bars_per_s']:.0f}",
    )
    console.print(table)
    console.print(f"ma_cross on {args.symbols}, {args.start} .. {args.end}, {catalog}; journal and "
                  f"ledger {'off' if args.no_records else 'on'}")
    console.print(f"Machine: {describe_machine()}; peak memory {peak_rss_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
