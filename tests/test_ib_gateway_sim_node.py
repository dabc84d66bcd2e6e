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
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from nautilus_trader.adapters.interactive_brokers.common import IB
from nautilus_trader.adapters.interactive_brokers.config import InteractiveBrokersDataClientConfig
from nautilus_trader.adapters.interactive_brokers.config import InteractiveBrokersExecClientConfig
from nautilus_trader.adapters.interactive_brokers.config import InteractiveBrokersInstrumentProviderConfig
from nautilus_trader.adapters.interactive_brokers.factories import InteractiveBrokersLiveDataClientFactory
from nautilus_trader.adapters.interactive_brokers.factories import InteractiveBrokersLiveExecClientFactory
from nautilus_trader.config import LiveExecEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import TradingNodeConfig
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId

from adapters.ib_gateway_sim.gateway_thread import GatewayThread
from adapters.ib_gateway_sim.market import Market
from adapters.ib_gateway_sim.market import ReplayClock
from adapters.ib_gateway_sim.server import Gateway
from adapters.ib_gateway_sim.server import GatewayConfig
from tests.ib_sim_support import OPEN
from tests.ib_sim_support import BuyOnce
from tests.ib_sim_support import BuyOnceConfig
from tests.ib_sim_support import build_catalog

SPY = InstrumentId.from_str("SPY.ARCX")


def test_trading_node_trades_through_the_ib_adapter(tmp_path: Path) -> None:
    catalog = build_catalog(tmp_path / "catalog")
    # 30x replay: a new quote every third of a second, a minute bar every two seconds
    gateway = Gateway(
        Market.from_catalog(catalog),
        ReplayClock((OPEN + pd.Timedelta(minutes=10)).value, 30.0),
        GatewayConfig(pump_interval_seconds=0.02),
    )
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

        def stop_when_done() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (strategy.fills and len(strategy.bars) >= 3):
                time.sleep(0.1)
            node.kernel.loop.call_soon_threadsafe(node.stop)

        stopper = threading.Thread(target=stop_when_done)
        stopper.start()
        try:
            node.run()
        finally:
            stopper.join()
            instrument = node.cache.instrument(SPY)
            net = node.portfolio.net_position(SPY)
            node.dispose()
        executions = sim.call(lambda: list(gateway.broker.executions))
        sim_position = sim.call(lambda: gateway.broker.positions["SPY"].quantity)

    assert instrument is not None and instrument.id.venue.value == "ARCX"
    assert strategy.quotes and all(q.bid_price < q.ask_price for q in strategy.quotes)
    assert len(strategy.bars) >= 3
    # bars arrive in order, one minute apart, with the catalog's volume
    closes = [b.ts_event for b in strategy.bars]
    assert all(b - a == 60_000_000_000 for a, b in zip(closes, closes[1:]))
    assert all(b.volume == 1000 for b in strategy.bars)
    [fill] = strategy.fills
    [execution] = executions
    assert fill.trade_id.value == execution.exec_id
    assert fill.last_px.as_decimal() == execution.price
    assert fill.last_qty.as_decimal() == execution.shares == Decimal(3)
    assert fill.commission.as_decimal() == execution.commission == Decimal("1.00")
    assert net == Decimal(3) == sim_position


@pytest.fixture(autouse=True)
def _fresh_loop_after() -> object:
    yield
    # the node closes its loop on dispose; later modules (ib_insync) need a live one
    asyncio.set_event_loop(asyncio.new_event_loop())
