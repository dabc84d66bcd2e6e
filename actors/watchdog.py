"""
The watchdog: broker and data connectivity on a heartbeat, and circuit breakers on the bars.

Connectivity. Every `heartbeat_s` the watchdog asks its probes whether the broker (execution
clients) and the data feed are connected; ``install_risk_layer`` wires the probes to the
kernel's ExecutionEngine / DataEngine links (``actors.broker_link.engine_link_up``: the clients'
connected flags and, for IB, the client's real API session). During regular hours it also
watches each subscription of `bar_types` on its own: one that has delivered no bar for its
interval plus `silence_margin_s` (a minute bar: two minutes), counted from its last bar or
from the open, is reported silent with a critical alert naming it, and back when its next bar
comes; the snapshot counts the data as down while any subscription is silent, so one dead
feed cannot hide behind the others that still flow. When the broker has been down
for `broker_grace_s` it asks the gate to HALT new orders (its own hold; open orders and
positions are left alone, the broker being unreachable) and sends a critical alert; when the
broker is back it lifts its hold and reports the recovery. Data outages alert and recover
the same way without halting.

Circuit breakers (alert, and optionally pause the instrument in the gate for `pause_minutes`):
- volatility spike: the high-low range of the last `volatility_window` bars is more than
  `volatility_ratio` times the average of that same rolling range over the `norm_bars` bars
  before it;
- unusual volume: a bar's volume is more than `volume_ratio` times the average volume of the
  `norm_bars` bars before it.
A breaker that tripped stays quiet for `volatility_window` bars, so one event is one alert.

``snapshot()`` returns the state as plain values for the dashboard.
"""

from __future__ import annotations

from collections import defaultdict
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId

from risk.messages import CONTROL_ENDPOINT
from risk.messages import Alert
from risk.messages import AlertKind
from risk.messages import ControlAction
from risk.messages import RiskControl
from strategies.sessions import SessionTracker

SOURCE = "watchdog"


class WatchdogConfig(ActorConfig, frozen=True):
    bar_types: list[BarType] = []
    heartbeat_s: int = 5
    broker_grace_s: int = 30
    silence_margin_s: int = 60
    volatility_window: int = 5
    norm_bars: int = 60
    volatility_ratio: float = 4.0
    volume_ratio: float = 5.0
    pause_on_breaker: bool = False
    pause_minutes: int = 15

    def __post_init__(self) -> None:
        for name in ("heartbeat_s", "broker_grace_s", "silence_margin_s", "volatility_window", "norm_bars",
                     "pause_minutes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("volatility_ratio", "volume_ratio"):
            if getattr(self, name) <= 1:
                raise ValueError(f"{name} must be above 1, got {getattr(self, name)}")


class Watchdog(Actor):
    def __init__(self, config: WatchdogConfig) -> None:
        super().__init__(config)
        self.broker_probe: Callable[[], bool] = lambda: True
        self.data_probe: Callable[[], bool] = lambda: True
        self.broker_connected = True
        self.broker_down_since_ns: int | None = None
        self.broker_halted = False
        self.data_connected = True
        self.data_down_since_ns: int | None = None
        self.last_bar_ns: int | None = None
        self.last_heartbeat_ns: int | None = None
        # Per subscription: when its last bar arrived (clock time: IB stamps bars at their open),
        # and since when it has been silent.
        self._arrived_ns: dict[BarType, int] = {}
        self.silent_since_ns: dict[BarType, int] = {}
        self._watching_since_ns: int | None = None  # the heartbeat that found regular hours
        self._limits_ns = {
            bar_type: (bar_type.spec.timedelta.total_seconds() + config.silence_margin_s) * 1_000_000_000
            for bar_type in config.bar_types
        }
        self.trips: deque[dict[str, Any]] = deque(maxlen=200)
        window = config.volatility_window
        self._highs: dict[InstrumentId, deque[Decimal]] = defaultdict(lambda: deque(maxlen=window))
        self._lows: dict[InstrumentId, deque[Decimal]] = defaultdict(lambda: deque(maxlen=window))
        self._ranges: dict[InstrumentId, deque[Decimal]] = defaultdict(lambda: deque(maxlen=config.norm_bars))
        self._volumes: dict[InstrumentId, deque[Decimal]] = defaultdict(lambda: deque(maxlen=config.norm_bars))
        # One alert per event: a breaker stays quiet for `volatility_window` bars after it trips
        # (the spike bar stays inside the rolling range that long).
        self._bar_count: dict[InstrumentId, int] = defaultdict(int)
        self._tripped_at: dict[tuple[InstrumentId, str], int] = {}
        self._sessions = SessionTracker()  # integer compares per heartbeat, not a calendar look-up

    def set_probes(self, broker: Callable[[], bool], data: Callable[[], bool]) -> None:
        self.broker_probe = broker
        self.data_probe = data

    def on_start(self) -> None:
        if CONTROL_ENDPOINT not in self.msgbus.endpoints():
            raise RuntimeError(f"Watchdog needs the PreTradeGate (no endpoint {CONTROL_ENDPOINT})")
        for bar_type in self.config.bar_types:
            self.subscribe_bars(bar_type)
        self.clock.set_timer(
            "watchdog-heartbeat", interval=timedelta(seconds=self.config.heartbeat_s), callback=self.heartbeat,
        )

    def on_stop(self) -> None:
        if "watchdog-heartbeat" in self.clock.timer_names:
            self.clock.cancel_timer("watchdog-heartbeat")

    # -- connectivity -----------------------------------------------------------------------------

    def heartbeat(self, event: TimeEvent | None = None) -> None:
        now = self.clock.timestamp_ns()
        self.last_heartbeat_ns = now
        self._check_broker(now, bool(self.broker_probe()))
        self._check_subscriptions(now)
        self._check_data(now, bool(self.data_probe()))

    def _check_subscriptions(self, now: int) -> None:
        if not self._sessions.in_regular_hours(now):
            self._watching_since_ns = None  # each open gives every feed its interval again
            return
        if self._watching_since_ns is None:
            self._watching_since_ns = now
        for bar_type, limit_ns in self._limits_ns.items():
            since = max(self._arrived_ns.get(bar_type, 0), self._watching_since_ns)
            if bar_type in self.silent_since_ns or now - since <= limit_ns:
                continue
            self.silent_since_ns[bar_type] = since
            self._alert(now, f"Market data silent: {bar_type}",
                        f"No {bar_type} bar for {(now - since) / 1e9:.0f}s (its interval plus "
                        f"{self.config.silence_margin_s}s): the strategies on it see nothing.")

    def _check_broker(self, now: int, connected: bool) -> None:
        if connected:
            if not self.broker_connected:
                down_s = (now - self.broker_down_since_ns) / 1e9
                self.broker_connected = True
                self.broker_down_since_ns = None
                if self.broker_halted:
                    self.broker_halted = False
                    self.msgbus.send(CONTROL_ENDPOINT, RiskControl(
                        ControlAction.RESUME, f"broker reconnected after {down_s:.0f}s", SOURCE))
                self._alert(now, "Broker connection recovered", f"The broker was unreachable for {down_s:.0f}s.",
                            critical=False)
            return
        if self.broker_connected:
            self.broker_connected = False
            self.broker_down_since_ns = now
            self.log.warning("Broker disconnected")
        down_s = (now - self.broker_down_since_ns) / 1e9
        if not self.broker_halted and down_s >= self.config.broker_grace_s:
            self.broker_halted = True
            reason = f"broker disconnected for {down_s:.0f}s (grace {self.config.broker_grace_s}s)"
            self.msgbus.send(CONTROL_ENDPOINT, RiskControl(ControlAction.HALT, reason, SOURCE, cancel_orders=False))
            self._alert(now, "Broker down: new orders halted", reason + ". New orders are refused until it returns.")

    def _check_data(self, now: int, connected: bool) -> None:
        if connected and not self.data_connected:
            down_s = (now - self.data_down_since_ns) / 1e9
            self.data_connected = True
            self.data_down_since_ns = None
            self._alert(now, "Market data recovered", f"Data was missing for {down_s:.0f}s.", critical=False)
        elif not connected and self.data_connected:
            self.data_connected = False
            self.data_down_since_ns = now
            self._alert(now, "Market data down", "The data feed is disconnected or silent.", critical=True)

    # -- circuit breakers -------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        self.last_bar_ns = bar.ts_event
        now = self.clock.timestamp_ns()
        self._arrived_ns[bar.bar_type] = now
        silent_since = self.silent_since_ns.pop(bar.bar_type, None)
        if silent_since is not None:
            self._alert(now, f"Market data back: {bar.bar_type}",
                        f"{bar.bar_type} was silent for {(now - silent_since) / 1e9:.0f}s.", critical=False)
        instrument_id = bar.bar_type.instrument_id
        self._bar_count[instrument_id] += 1
        highs, lows = self._highs[instrument_id], self._lows[instrument_id]
        ranges, volumes = self._ranges[instrument_id], self._volumes[instrument_id]
        highs.append(bar.high.as_decimal())
        lows.append(bar.low.as_decimal())
        volume = bar.volume.as_decimal()
        if len(highs) == highs.maxlen:
            window_range = max(highs) - min(lows)
            if len(ranges) == ranges.maxlen:
                norm = sum(ranges, Decimal(0)) / len(ranges)
                if norm > 0 and window_range > norm * Decimal(str(self.config.volatility_ratio)):
                    self._trip(bar, "volatility_spike",
                               f"{instrument_id} range {window_range} over the last {len(highs)} bars is "
                               f"{(window_range / norm).quantize(Decimal('0.1'))}x its norm {norm.quantize(Decimal('0.0001'))}")
            ranges.append(window_range)
        if len(volumes) == volumes.maxlen:
            norm_volume = sum(volumes, Decimal(0)) / len(volumes)
            if norm_volume > 0 and volume > norm_volume * Decimal(str(self.config.volume_ratio)):
                self._trip(bar, "unusual_volume",
                           f"{instrument_id} volume {volume} is {(volume / norm_volume).quantize(Decimal('0.1'))}x "
                           f"the average {norm_volume.quantize(Decimal('0.1'))} of the last {len(volumes)} bars")
        volumes.append(volume)

    def _trip(self, bar: Bar, breaker: str, detail: str) -> None:
        key = (bar.bar_type.instrument_id, breaker)
        count = self._bar_count[key[0]]
        if key in self._tripped_at and count - self._tripped_at[key] < self.config.volatility_window:
            return
        self._tripped_at[key] = count
        instrument = str(bar.bar_type.instrument_id)
        trip = {"ts": pd.Timestamp(bar.ts_event, tz="UTC").isoformat(), "breaker": breaker,
                "instrument_id": instrument, "detail": detail, "paused": self.config.pause_on_breaker}
        self.trips.append(trip)
        if self.config.pause_on_breaker:
            until = bar.ts_event + self.config.pause_minutes * 60_000_000_000
            self.msgbus.send(CONTROL_ENDPOINT, RiskControl(
                ControlAction.PAUSE, f"{breaker}: {detail}", SOURCE, instrument_id=instrument, until_ns=until))
        action = f" {instrument} paused for {self.config.pause_minutes} minutes." if self.config.pause_on_breaker else ""
        self._alert(bar.ts_event, f"Circuit breaker {breaker} on {instrument}", detail + "." + action,
                    critical=False, kind=AlertKind.CIRCUIT_BREAKER)

    # -- reporting --------------------------------------------------------------------------------

    def _alert(self, ts_ns: int, subject: str, body: str, critical: bool = True,
               kind: AlertKind = AlertKind.WATCHDOG) -> None:
        self.log.warning(f"Watchdog: {subject}")
        alert = Alert(kind, subject, body, ts_ns, critical=critical)
        self.msgbus.publish(alert.topic, alert)

    def snapshot(self) -> dict[str, Any]:
        """The watchdog's state as plain values (for the dashboard)."""

        def iso(ns: int | None) -> str | None:
            return None if ns is None else pd.Timestamp(ns, tz="UTC").isoformat()

        return {
            "broker_connected": self.broker_connected,
            "broker_down_since": iso(self.broker_down_since_ns),
            "orders_halted_by_watchdog": self.broker_halted,
            "data_connected": self.data_connected and not self.silent_since_ns,
            "data_down_since": iso(self.data_down_since_ns),
            "last_bar": iso(self.last_bar_ns),
            "silent_subscriptions": {str(b): iso(ns) for b, ns in self.silent_since_ns.items()},
            "last_heartbeat": iso(self.last_heartbeat_ns),
            "circuit_breaker_trips": list(self.trips),
        }
