"""
Moving-average crossover, long only: the reference strategy the engine proves itself on.
"""

from __future__ import annotations

from decimal import ROUND_DOWN
from decimal import Decimal

from nautilus_trader.config import PositiveFloat
from nautilus_trader.config import PositiveInt
from nautilus_trader.config import StrategyConfig
from nautilus_trader.indicators import MovingAverageFactory
from nautilus_trader.indicators import MovingAverageType
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.trading.strategy import Strategy

from strategies.account import account_equity
from strategies.live_parameters import refuse_frozen_changes
from strategies.records import ExitReason
from strategies.records import SignalRecord
from strategies.records import exit_tag
from strategies.records import publish_signal
from strategies.sessions import SessionTracker

AVERAGE_TYPES = ("SIMPLE", "EXPONENTIAL", "WILDER", "HULL", "WEIGHTED")


class MACrossConfig(StrategyConfig, frozen=True):
    """
    Parameters for ``MACross``.

    bar_type: the bars the averages are computed on (built inside the engine from minutes).
    fast_period, slow_period: lengths of the two averages (fast < slow).
    average: SIMPLE, EXPONENTIAL, WILDER, HULL or WEIGHTED.
    position_fraction: share of equity put into a position when the strategy buys.
    regular_hours_only: trade only inside the NYSE regular session (market orders are not
        accepted outside it live).
    """

    instrument_id: InstrumentId
    bar_type: BarType
    fast_period: PositiveInt = 10
    slow_period: PositiveInt = 30
    average: str = "EXPONENTIAL"
    position_fraction: PositiveFloat = 0.95
    regular_hours_only: bool = True

    def __post_init__(self) -> None:
        if self.fast_period >= self.slow_period:
            raise ValueError(
                f"fast_period must be less than slow_period, got {self.fast_period} >= "
                f"{self.slow_period}",
            )
        if self.average not in AVERAGE_TYPES:
            raise ValueError(f"average must be one of {', '.join(AVERAGE_TYPES)}, got {self.average!r}")
        if self.position_fraction > 1:
            raise ValueError(f"position_fraction must be at most 1, got {self.position_fraction}")


class MACross(Strategy):
    """
    Long-only moving-average crossover.

    Rules: when the fast average crosses above the slow average and the strategy is flat, buy
    `position_fraction` of equity at market; when it crosses below, sell the whole position at
    market. Only crosses (a change of sign between consecutive bars) trade, so a strategy
    started mid-trend waits for the next cross.

    Running parameters: LIVE_PARAMETERS may be changed while it runs (`update_config`, the
    dashboard's parameter change); new averages are warmed up from the bars in the cache so
    the change takes effect on the next bar.
    """

    LIVE_PARAMETERS = ("fast_period", "slow_period", "average", "position_fraction", "regular_hours_only")

    def __init__(self, config: MACrossConfig) -> None:
        super().__init__(config)
        # The parameters in force: the config until update_config replaces them (Nautilus
        # configs are frozen, and a strategy's `config` attribute is read-only).
        self.params = config
        self.fast, self.slow = self._averages(config)
        self.instrument: Instrument | None = None
        self._sessions = SessionTracker()
        self._was_above: bool | None = None

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        if self.instrument is None:
            self.log.error(f"Instrument {self.config.instrument_id} not in the cache")
            self.stop()
            return
        self.register_indicator_for_bars(self.config.bar_type, self.fast)
        self.register_indicator_for_bars(self.config.bar_type, self.slow)
        self.subscribe_bars(self.config.bar_type)

    @staticmethod
    def _averages(config: MACrossConfig) -> tuple:
        average = MovingAverageType[config.average]
        return (MovingAverageFactory.create(config.fast_period, average),
                MovingAverageFactory.create(config.slow_period, average))

    def update_config(self, config: MACrossConfig) -> None:
        """Apply new LIVE_PARAMETERS; the instrument and bar type cannot change."""
        refuse_frozen_changes(self.params, config, self.LIVE_PARAMETERS)
        if (config.fast_period, config.slow_period, config.average) != (
            self.params.fast_period, self.params.slow_period, self.params.average,
        ):
            fast, slow = self._averages(config)
            # Oldest first; the cache keeps the most recent bars newest first.
            # Bars aggregated inside the engine are cached under the standard bar type.
            for bar in reversed(self.cache.bars(config.bar_type.standard())):
                fast.handle_bar(bar)
                slow.handle_bar(bar)
            # The old averages stay registered (Nautilus has no unregister) but are not read.
            # Before the start (parameters restored at build), on_start registers them.
            if self.is_running:
                self.register_indicator_for_bars(config.bar_type, fast)
                self.register_indicator_for_bars(config.bar_type, slow)
            self.fast, self.slow = fast, slow
            self._was_above = (fast.value > slow.value) if fast.initialized and slow.initialized else None
        self.params = config

    def indicators_in_use(self) -> dict[str, object]:
        """The average objects on_bar reads (their str names type and period)."""
        return {"fast": self.fast, "slow": self.slow}

    def indicator_values(self) -> dict[str, float]:
        """The averages in force (for the dashboard's indicator panel)."""
        return {"fast": self.fast.value, "slow": self.slow.value}

    def on_bar(self, bar: Bar) -> None:
        if not (self.fast.initialized and self.slow.initialized):
            return
        above = self.fast.value > self.slow.value
        crossed = self._was_above is not None and above != self._was_above
        self._was_above = above
        if not crossed:
            return
        publish_signal(
            self.msgbus,
            SignalRecord(
                ts_ns=bar.ts_event,
                strategy=str(self.id),
                instrument_id=str(self.config.instrument_id),
                signal_type="ma_cross_up" if above else "ma_cross_down",
                indicators={"fast": f"{self.fast.value:.4f}", "slow": f"{self.slow.value:.4f}"},
            ),
        )
        if self.params.regular_hours_only and not self._sessions.in_regular_hours(bar.ts_event):
            return
        if above and self.portfolio.is_flat(self.config.instrument_id):
            self._buy(bar)
        elif not above and self.portfolio.is_net_long(self.config.instrument_id):
            self.close_all_positions(self.config.instrument_id, tags=[exit_tag(ExitReason.SIGNAL)])

    def _buy(self, bar: Bar) -> None:
        equity = account_equity(self.portfolio, self.cache, self.config.instrument_id.venue)
        budget = equity * Decimal(str(self.params.position_fraction))
        shares = (budget / bar.close.as_decimal()).to_integral_value(rounding=ROUND_DOWN)
        if shares < 1:
            self.log.warning(f"Equity {equity} buys no share at {bar.close}")
            return
        order = self.order_factory.market(
            instrument_id=self.config.instrument_id,
            order_side=OrderSide.BUY,
            quantity=self.instrument.make_qty(shares),
            time_in_force=TimeInForce.DAY,
            tags=["signal"],
        )
        self.submit_order(order)

    def on_stop(self) -> None:
        self.cancel_all_orders(self.config.instrument_id)

    def on_reset(self) -> None:
        self.fast, self.slow = self._averages(self.params)
        self.fast.reset()
        self.slow.reset()
        self._was_above = None
