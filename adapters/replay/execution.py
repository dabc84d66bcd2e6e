"""
The replay venue: Nautilus's sandbox execution client with configurable fill and fee models.

Two things differ from the stock SandboxExecutionClient, both so a replayed session fills
exactly like a backtest of the same data:
- the fill model and fee model come from the config (the stock client hard-codes a no-slippage
  FillModel and maker/taker fees);
- the simulated exchange sees each bar or quote before any strategy does (it subscribes with a
  higher message-bus priority), as the backtest engine's exchange does, so a market order sent
  on a bar fills against that bar, and the exchange's clock is set to the data's time; bars
  the node aggregates itself (5- or 15-minute bars built from the minutes) never reach it, as
  none reach a backtest's exchange.

Restarts. The simulated venue lives in the process, so what it "remembers" across a restart is
the node's persisted cache (CACHE_BACKEND=redis, loaded before the clients are built): the
account starts from the cached account's balances instead of the configured starting balances,
and the venue reports the cached open positions of its venue when Nautilus reconciles at start.
With a memory cache nothing is cached and the venue starts fresh, as configured.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from nautilus_trader.accounting.factory import AccountFactory
from nautilus_trader.adapters.sandbox.execution import SandboxExecutionClient
from nautilus_trader.backtest.config import FeeModelFactory
from nautilus_trader.backtest.config import FillModelFactory
from nautilus_trader.backtest.engine import SimulatedExchange
from nautilus_trader.backtest.execution_client import BacktestExecClient
from nautilus_trader.backtest.models import FillModel
from nautilus_trader.backtest.models import LatencyModel
from nautilus_trader.backtest.models import MakerTakerFeeModel
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import MessageBus
from nautilus_trader.common.component import TestClock
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.core.data import Data
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.engine import ExecutionEngine
from nautilus_trader.execution.messages import GeneratePositionStatusReports
from nautilus_trader.execution.reports import PositionStatusReport
from nautilus_trader.live.execution_client import LiveExecutionClient
from nautilus_trader.live.execution_engine import LiveExecutionEngine
from nautilus_trader.live.factories import LiveExecClientFactory
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.enums import account_type_from_str
from nautilus_trader.model.enums import book_type_from_str
from nautilus_trader.model.enums import oms_type_from_str
from nautilus_trader.model.events import OrderEvent
from nautilus_trader.model.identifiers import AccountId
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Currency
from nautilus_trader.model.objects import Money
from nautilus_trader.portfolio.base import PortfolioFacade

from adapters.replay.config import ReplayExecClientConfig

def register_simulated_account(venue: str) -> None:
    """
    Call before the TradingNode is constructed: accounts of `venue` are calculated from fills.

    The sandbox client registers this itself, but only when it is built, after the kernel has
    already loaded a persisted (Redis) cache; an account loaded before that would never have
    its cash updated from fills again. Registering twice is harmless.
    """
    AccountFactory.register_calculated_account(venue)


# Above every strategy and actor handler (priority 0), so the exchange moves first.
EXCHANGE_PRIORITY = 100


def apply_order_events_at_once(exec_engine: LiveExecutionEngine, msgbus: MessageBus) -> None:
    """
    Call once the replay node is built: order events reach the cache, the portfolio and the
    strategies the moment the simulated venue emits them, as in a backtest.

    The live engine queues each event for a later turn of the loop. The simulated exchange,
    though, reads the order's state while it fills: a market order larger than the bar's
    volume takes the rest one tick worse only if its first fill has already made it
    partially filled (Nautilus's matching engine, `apply_fills`). Queued, the order still
    reads as submitted and the rest stays working, so a replay would hold fewer shares than a
    backtest of the same bars. Every event in a replay comes from its own venue, on the loop.
    """

    def process_now(event: OrderEvent) -> None:
        exec_engine._record_local_activity(event)
        ExecutionEngine.process(exec_engine, event)  # the base class's: handled, not queued

    msgbus.deregister("ExecEngine.process", exec_engine.process)
    msgbus.register("ExecEngine.process", process_now)


class ReplayExecutionClient(SandboxExecutionClient):
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        portfolio: PortfolioFacade,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        config: ReplayExecClientConfig,
    ) -> None:
        # The stock __init__ builds its exchange with fixed models; this one is the same
        # construction with the configured models (Nautilus 1.231 sandbox/execution.py).
        venue = Venue(config.venue)
        oms_type = oms_type_from_str(config.oms_type)
        account_type = account_type_from_str(config.account_type)
        base_currency = Currency.from_str(config.base_currency) if config.base_currency else None
        self.test_clock = TestClock()
        LiveExecutionClient.__init__(
            self,
            loop=loop,
            client_id=ClientId(config.venue),
            venue=venue,
            oms_type=oms_type,
            account_type=account_type,
            base_currency=base_currency,
            instrument_provider=InstrumentProvider(),
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            config=None,
        )
        account_id = AccountId(f"{config.venue}-001")
        self._set_account_id(account_id)
        starting_balances = [Money.from_str(b) for b in config.starting_balances]
        cached_account = cache.account(account_id)
        if cached_account is not None:
            starting_balances = [balance.total for balance in cached_account.balances().values()]
        fill_model = FillModelFactory.create(config.fill_model) if config.fill_model else FillModel()
        fee_model = FeeModelFactory.create(config.fee_model) if config.fee_model else MakerTakerFeeModel()
        self.exchange = SimulatedExchange(
            venue=venue,
            oms_type=oms_type,
            account_type=account_type,
            starting_balances=starting_balances,
            base_currency=base_currency,
            default_leverage=config.default_leverage,
            leverages=config.leverages or {},
            modules=[],
            portfolio=portfolio,
            msgbus=self._msgbus,
            cache=cache,
            clock=self.test_clock,
            fill_model=fill_model,
            fee_model=fee_model,
            latency_model=LatencyModel(0),
            book_type=book_type_from_str(config.book_type),
            frozen_account=config.frozen_account,
            bar_execution=config.bar_execution,
            trade_execution=config.trade_execution,
            reject_stop_orders=config.reject_stop_orders,
            support_gtd_orders=config.support_gtd_orders,
            support_contingent_orders=config.support_contingent_orders,
            use_position_ids=config.use_position_ids,
            use_random_ids=config.use_random_ids,
            use_reduce_only=config.use_reduce_only,
            use_message_queue=False,
        )
        self._client = BacktestExecClient(
            exchange=self.exchange, msgbus=msgbus, cache=cache, clock=self.test_clock,
        )
        self.exchange.register_client(self._client)
        self.exchange.initialize_account()

    async def generate_position_status_reports(
        self,
        command: GeneratePositionStatusReports,
    ) -> list[PositionStatusReport]:
        """The venue's open positions: those of the (persisted) cache on this venue."""
        now = self._clock.timestamp_ns()
        reports = []
        for position in self._cache.positions_open(venue=self.venue):
            if command.instrument_id is not None and position.instrument_id != command.instrument_id:
                continue
            reports.append(PositionStatusReport(
                account_id=self.account_id,
                instrument_id=position.instrument_id,
                position_side=position.side,
                quantity=position.quantity,
                report_id=UUID4(),
                ts_last=now,
                ts_init=now,
                venue_position_id=position.id,
                avg_px_open=Decimal(str(position.avg_px_open)),
            ))
        return reports

    def connect(self) -> None:
        self._log.info("Connecting...")
        for pattern in ("data.bars.*", "data.quotes.*"):
            self._msgbus.subscribe(pattern, handler=self.on_data, priority=EXCHANGE_PRIORITY)
        for instrument in self._cache.instruments(venue=self.venue):
            self.exchange.add_instrument(instrument)
        self._client._set_connected(True)
        self._set_connected(True)
        self._log.info("Connected")

    def disconnect(self) -> None:
        for pattern in ("data.bars.*", "data.quotes.*"):
            self._msgbus.unsubscribe(pattern, handler=self.on_data)
        super().disconnect()

    def on_data(self, data: Data) -> None:
        if isinstance(data, Bar):
            if data.bar_type.is_internally_aggregated():
                # A bar the node built from the data (core RSI's 15-minute bars) is not more
                # market: traded again at its close, its low would fill a buy limit placed
                # after that low had passed. The backtest venue sees only the data's own bars.
                return
            instrument_id = data.bar_type.instrument_id
        elif isinstance(data, QuoteTick):
            instrument_id = data.instrument_id
        else:
            return
        if instrument_id.venue != self.venue:
            return
        self.test_clock.set_time(data.ts_init)
        super().on_data(data)


class ReplayExecClientFactory(LiveExecClientFactory):
    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: ReplayExecClientConfig,
        portfolio: PortfolioFacade,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> ReplayExecutionClient:
        return ReplayExecutionClient(loop, portfolio, msgbus, cache, clock, config)


# Nautilus 1.231's node builder hands the portfolio only to a factory whose class is named
# "SandboxLiveExecClientFactory" (live/node_builder.py); the simulated exchange needs it.
ReplayExecClientFactory.__name__ = "SandboxLiveExecClientFactory"
