"""
A Nautilus TradingNode with the real Interactive Brokers data and execution clients
(``convert_exchange_to_mic_venue=True``) against the simulator: the instrument resolves to its
MIC venue, quotes and bars arrive, and a market order from a tiny strategy fills, with the
node's fill agreeing with the simulator's own record of the execution.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from nautilus_trader.adapters.interactive_brokers.common import IB
from nautilus_trader.adapters.interactive_brokers.config import InteractiveBrokersDataClientConfig
from nautilus_trader.adapters.interactive_brokers.config import InteractiveBrokersExecClientConfig
from nautilus_trader.adapters.interactive_brokers.config import (
    InteractiveBrokersInstrumentProviderConfig,
)
from nautilus_trader.adapters.interactive_brokers.factories import (
    InteractiveBrokersLiveDataClientFactory,
)
from nautilus_trader.adapters.interactive_brokers.factories import (
    InteractiveBrokersLiveExecClientFactory,
)
from nautilus_trader.config import LiveExecEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import TradingNodeConfig
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId

from adapters.ib_gateway_sim.broker import FillPlan
from adapters.ib_gateway_sim.gateway_thread import GatewayThread
from adapters.ib_gateway_sim.market import Market
from adapters.ib_gateway_sim.market import ReplayClock
from adapters.ib_gateway_sim.messages import ExecutionView
from adapters.ib_gateway_sim.server import Gateway
from adapters.ib_gateway_sim.server import GatewayConfig
from tests.ib_sim_support import OPEN
from tests.ib_sim_support import BuyOnce
from tests.ib_sim_support import BuyOnceConfig
from tests.ib_sim_support import build_catalog

SPY = InstrumentId.from_str("SPY.ARCX")


@dataclass
class NodeRun:
    """What a node run left behind, read before the node is disposed."""

    strategy: BuyOnce
    instrument_venue: str | None
    net_position: Decimal
    executions: list[ExecutionView]
    sim_position: Decimal


def run_node(
    catalog: Path,
    scenario: Callable[[GatewayThread, TradingNode, BuyOnce], None],
    before: Callable[[Gateway], None] | None = None,
) -> NodeRun:
    """Run a TradingNode with the IB clients against a fresh simulator while ``scenario`` runs
    in another thread; the node stops when the scenario returns. ``before`` scripts faults
    on the gateway before anything connects."""
    # 30x replay: a new quote every third of a second, a minute bar every two seconds
    gateway = Gateway(
        Market.from_catalog(catalog),
        ReplayClock((OPEN + pd.Timedelta(minutes=10)).value, 30.0),
        GatewayConfig(pump_interval_seconds=0.02),
    )
    if before is not None:
        before(gateway)
    with GatewayThread(gateway) as sim:
        provider = InteractiveBrokersInstrumentProviderConfig(
            load_ids=frozenset([SPY.value]),
            convert_exchange_to_mic_venue=True,
        )
        node = TradingNode(
            config=TradingNodeConfig(
                trader_id="SIM-001",
                logging=LoggingConfig(log_level="WARNING"),
                exec_engine=LiveExecEngineConfig(reconciliation=True),
                data_clients={
                    IB: InteractiveBrokersDataClientConfig(
                        ibg_port=sim.port,
                        ibg_client_id=1,
                        instrument_provider=provider,
                        use_regular_trading_hours=False,
                    ),
                },
                exec_clients={
                    IB: InteractiveBrokersExecClientConfig(
                        ibg_port=sim.port,
                        ibg_client_id=1,
                        account_id="DU1234567",
                        instrument_provider=provider,
                    ),
                },
                timeout_connection=20.0,
                timeout_reconciliation=10.0,
                timeout_portfolio=10.0,
                timeout_disconnection=5.0,
                timeout_post_stop=1.0,
            ),
        )
        strategy = BuyOnce(
            BuyOnceConfig(
                instrument_id=SPY,
                bar_type=BarType.from_str("SPY.ARCX-1-MINUTE-LAST-EXTERNAL"),
            ),
        )
        node.trader.add_strategy(strategy)
        node.add_data_client_factory(IB, InteractiveBrokersLiveDataClientFactory)
        node.add_exec_client_factory(IB, InteractiveBrokersLiveExecClientFactory)
        node.build()
        failures: list[BaseException] = []

        def drive() -> None:
            try:
                scenario(sim, node, strategy)
            except BaseException as exc:  # reported by the test below, after the node stops
                failures.append(exc)
            finally:
                node.kernel.loop.call_soon_threadsafe(node.stop)

        driver = threading.Thread(target=drive)
        driver.start()
        try:
            node.run()
        finally:
            driver.join()
            instrument = node.cache.instrument(SPY)
            run = NodeRun(
                strategy=strategy,
                instrument_venue=instrument.id.venue.value if instrument else None,
                net_position=node.portfolio.net_position(SPY),
                executions=sim.call(lambda: list(gateway.broker.executions)),
                sim_position=sim.call(
                    lambda: gateway.broker.positions["SPY"].quantity
                    if "SPY" in gateway.broker.positions
                    else Decimal(0)
                ),
            )
            node.dispose()
    if failures:
        raise failures[0]
    return run


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_trading_node_trades_through_the_ib_adapter(tmp_path: Path) -> None:
    def scenario(sim: GatewayThread, node: TradingNode, strategy: BuyOnce) -> None:
        wait_for(lambda: bool(strategy.fills) and len(strategy.bars) >= 3, "a fill and three bars")

    run = run_node(build_catalog(tmp_path / "catalog"), scenario)
    strategy = run.strategy
    assert run.instrument_venue == "ARCX"
    assert strategy.quotes and all(q.bid_price < q.ask_price for q in strategy.quotes)
    # bars arrive in order, one minute apart, with the catalog's volume
    closes = [b.ts_event for b in strategy.bars]
    assert all(b - a == 60_000_000_000 for a, b in zip(closes, closes[1:], strict=False))
    assert all(b.volume == 1000 for b in strategy.bars)
    [fill] = strategy.fills
    [execution] = run.executions
    assert fill.trade_id.value == execution.exec_id
    assert fill.last_px.as_decimal() == execution.price
    assert fill.last_qty.as_decimal() == execution.shares == Decimal(3)
    assert fill.commission.as_decimal() == execution.commission == Decimal("1.00")
    assert run.net_position == Decimal(3) == run.sim_position


def test_node_reconnects_after_the_nightly_restart_and_keeps_trading(tmp_path: Path) -> None:
    marks: dict[str, int] = {}

    def scenario(sim: GatewayThread, node: TradingNode, strategy: BuyOnce) -> None:
        wait_for(lambda: len(strategy.fills) == 1, "the first fill")
        sim.run(sim.gateway.restart(1.0))
        marks["quotes"] = len(strategy.quotes)
        marks["bars"] = len(strategy.bars)
        # the adapter notices, waits, reconnects and resubscribes by itself
        wait_for(lambda: len(strategy.quotes) > marks["quotes"] + 3, "quotes after the restart")
        wait_for(lambda: len(strategy.bars) > marks["bars"], "a bar after the restart")
        node.kernel.loop.call_soon_threadsafe(strategy.buy)
        wait_for(lambda: len(strategy.fills) == 2, "the second fill")

    run = run_node(build_catalog(tmp_path / "catalog"), scenario)
    # one execution per order at the simulator, none repeated or lost, and both sides agree
    assert [f.trade_id.value for f in run.strategy.fills] == [e.exec_id for e in run.executions]
    assert len({e.order_id for e in run.executions}) == 2
    assert run.net_position == Decimal(6) == run.sim_position


def test_node_sees_a_rejection_and_a_partial_fill(tmp_path: Path) -> None:
    def reject_first_order(gateway: Gateway) -> None:
        gateway.broker.reject_next_order("simulated margin check")

    def scenario(sim: GatewayThread, node: TradingNode, strategy: BuyOnce) -> None:
        wait_for(lambda: len(strategy.rejections) == 1, "the rejection")
        parts = FillPlan(parts=[Decimal(1), Decimal(2)], part_interval_seconds=0.3)
        sim.call(sim.gateway.broker.plan_next_fill, parts)
        node.kernel.loop.call_soon_threadsafe(strategy.buy)
        wait_for(lambda: len(strategy.fills) == 2, "two partial fills")

    run = run_node(build_catalog(tmp_path / "catalog"), scenario, before=reject_first_order)
    [rejection] = run.strategy.rejections
    assert "simulated margin check" in rejection.reason
    first, second = run.strategy.fills
    assert first.client_order_id == second.client_order_id
    assert (first.last_qty.as_decimal(), second.last_qty.as_decimal()) == (Decimal(1), Decimal(2))
    assert [f.trade_id.value for f in run.strategy.fills] == [e.exec_id for e in run.executions]
    assert run.net_position == Decimal(3) == run.sim_position


def test_node_rides_out_a_data_farm_outage(tmp_path: Path) -> None:
    marks: dict[str, int] = {}

    def scenario(sim: GatewayThread, node: TradingNode, strategy: BuyOnce) -> None:
        wait_for(lambda: len(strategy.quotes) >= 3 and len(strategy.bars) >= 1, "data flowing")
        sim.call(sim.gateway.market_farm_outage)
        sim.call(sim.gateway.hmds_outage)
        time.sleep(0.5)  # let anything already in flight arrive
        marks["quotes"], marks["bars"] = len(strategy.quotes), len(strategy.bars)
        time.sleep(2.0)  # a replay minute: a bar and six quotes would have come
        marks["quotes_during"], marks["bars_during"] = len(strategy.quotes), len(strategy.bars)
        sim.call(sim.gateway.market_farm_restored)
        sim.call(sim.gateway.hmds_restored)
        wait_for(lambda: len(strategy.quotes) > marks["quotes"] + 3, "quotes after the outage")
        wait_for(lambda: len(strategy.bars) > marks["bars"] + 1, "bars after the outage")

    run = run_node(build_catalog(tmp_path / "catalog"), scenario)
    assert marks["quotes_during"] == marks["quotes"] and marks["bars_during"] == marks["bars"]
    closes = [b.ts_event for b in run.strategy.bars]
    assert closes == sorted(set(closes))  # no bar twice, none out of order after the outage


@pytest.fixture(autouse=True)
def node_loop() -> Iterator[None]:
    """The node runs on the thread's current event loop (other modules' asyncio.run() leave
    none behind) and closes it on dispose."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    yield
    asyncio.set_event_loop(None)
