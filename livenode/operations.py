"""
What the control interface needs from inside the node: the operator's strategy commands
(pause, resume, new parameters) applied on the node's own event loop, and the state snapshot
the dashboard reads (equity, P&L, positions with their share of the bankroll, orders, recent
fills, strategies with their parameters, recent bars and indicator values for the charts).

Everything here runs in the runner's supervisor coroutine, between engine callbacks; nothing
here waits on the dashboard. Every accepted command is recorded in the journal (a RiskRecord of
kind "control" whose source names who sent it).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import time
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import PriceType
from nautilus_trader.model.events import OrderAccepted
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import OrderRejected
from nautilus_trader.model.events import OrderSubmitted
from nautilus_trader.trading.strategy import Strategy

from livenode.control import Command
from risk.messages import ALERT_TOPIC_PREFIX
from risk.messages import CONTROL_ENDPOINT
from risk.messages import Alert
from risk.messages import ControlAction
from risk.messages import RiskControl
from strategies.account import account_equity
from strategies.records import RiskRecord
from strategies.records import publish_risk
from strategies.sessions import EXCHANGE_TZ

PARAMETERS_FILE = "parameters.json"
RECENT_FILLS = 100
RECENT_BARS = 400
EQUITY_POINTS = 2000
LATENCY_SAMPLES = 200


class CommandRefused(ValueError):
    """A well-formed command that cannot be applied; the message names the field."""


class ParametersFileError(ValueError):
    """STATE_DIR/parameters.json holds a change a strategy of this run cannot take."""


def fill_fields(event: OrderFilled) -> dict[str, str]:
    """A fill as the snapshot and the session summary show it (exact decimals as text)."""
    return {
        "strategy_id": str(event.strategy_id),
        "instrument_id": str(event.instrument_id),
        "client_order_id": str(event.client_order_id),
        "side": event.order_side.name,
        "quantity": str(event.last_qty),
        "price": str(event.last_px),
        "commission": str(event.commission),
    }


def _iso(ts_ns: int) -> str:
    return pd.Timestamp(ts_ns, tz="UTC").isoformat()


def _field_schema(field_type: Any) -> dict[str, Any]:
    """A JSON-schema-like description of one parameter (type and bounds) for the dashboard."""
    kinds = {
        msgspec.inspect.IntType: "integer", msgspec.inspect.FloatType: "number",
        msgspec.inspect.StrType: "string", msgspec.inspect.BoolType: "boolean",
    }
    schema: dict[str, Any] = {"type": kinds.get(type(field_type), "string")}
    for bound, key in (("gt", "exclusiveMinimum"), ("ge", "minimum"), ("lt", "exclusiveMaximum"),
                       ("le", "maximum")):
        value = getattr(field_type, bound, None)
        if value is not None:
            schema[key] = value
    return schema


def live_parameters(strategy: Strategy) -> tuple[dict[str, Any], dict[str, Any]]:
    """The strategy's changeable parameters in force and their schema ({} where none)."""
    names = getattr(strategy, "LIVE_PARAMETERS", ())
    if not names:
        return {}, {}
    params = getattr(strategy, "params", strategy.config)
    info = msgspec.inspect.type_info(type(params))
    types = {f.name: f.type for f in info.fields}
    values = {name: msgspec.to_builtins(getattr(params, name)) for name in names}
    return values, {name: _field_schema(types[name]) for name in names}


class Operations:
    """The node-side half of the control interface (one per runner)."""

    def __init__(self, kernel: Any, state_dir: Path, bar_types: list[str]) -> None:
        self.kernel = kernel
        self.state_dir = state_dir
        self.bar_types = [BarType.from_str(b) for b in bar_types]
        # Equity is looked up by an instrument's venue, as the strategies do (SIM, or ARCX
        # mapped to the IB account).
        self.venue = self.bar_types[0].instrument_id.venue
        self.fills: deque[dict[str, Any]] = deque(maxlen=RECENT_FILLS)
        self.equity: deque[tuple[str, str]] = deque(maxlen=EQUITY_POINTS)
        self.indicators: dict[str, deque[tuple[str, dict[str, float]]]] = {}
        self.start_equity: Decimal | None = None
        self.day_start: tuple[dt.date, Decimal] | None = None
        self.commands_applied = 0
        self.commands_refused = 0
        self.paused: set[str] = set()
        self.alerts: dict[str, int] = {}
        self.rejected = 0
        # Order latency: submission to the venue's first answer (accepted, rejected or filled), ms.
        self._submitted: dict[str, int] = {}
        self.latencies_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        kernel.msgbus.subscribe(topic="events.order.*", handler=self._on_order_event)
        kernel.msgbus.subscribe(topic=f"{ALERT_TOPIC_PREFIX}*", handler=self._on_alert)

    # -- events ---------------------------------------------------------------------------------

    def _on_alert(self, alert: Alert) -> None:
        self.alerts[str(alert.kind)] = self.alerts.get(str(alert.kind), 0) + 1

    def _on_order_event(self, event: Any) -> None:
        # Measured on this process's clock as the events are handled: event timestamps are the
        # data's time in a replay, and a venue may fill without an accepted event first.
        if isinstance(event, OrderSubmitted):
            self._submitted[str(event.client_order_id)] = time.perf_counter_ns()
        elif isinstance(event, OrderAccepted | OrderRejected | OrderFilled):
            sent = self._submitted.pop(str(event.client_order_id), None)
            if sent is not None:
                self.latencies_ms.append((time.perf_counter_ns() - sent) / 1e6)
            if isinstance(event, OrderRejected):
                self.rejected += 1
        if isinstance(event, OrderFilled):
            self.fills.append({"ts": _iso(event.ts_event), **fill_fields(event)})

    # -- commands -------------------------------------------------------------------------------

    def strategy(self, strategy_id: str) -> Strategy:
        for strategy in self.kernel.trader.strategies():
            if str(strategy.id) == strategy_id:
                return strategy
        known = ", ".join(str(s.id) for s in self.kernel.trader.strategies())
        raise CommandRefused(f"strategy: no strategy {strategy_id!r} in this node; its strategies are {known}")

    def apply(self, command: Command) -> str:
        """Apply a strategy command; returns what was done (raises CommandRefused)."""
        strategy = self.strategy(command.strategy)
        strategy_id = str(strategy.id)
        if command.name in ("pause_strategy", "resume_strategy"):
            if CONTROL_ENDPOINT not in self.kernel.msgbus.endpoints():
                raise CommandRefused("strategy: this node has no pre-trade gate to pause a strategy in")
            pausing = command.name == "pause_strategy"
            if pausing == (strategy_id in self.paused):
                raise CommandRefused(f"strategy: {strategy_id} is {'already' if pausing else 'not'} paused")
            self.kernel.msgbus.send(CONTROL_ENDPOINT, RiskControl(
                action=ControlAction.PAUSE_STRATEGY if pausing else ControlAction.RESUME_STRATEGY,
                reason=command.reason, source=f"operator:{command.actor}", strategy_id=strategy_id,
            ))
            if pausing:
                self.paused.add(strategy_id)
                return f"paused {strategy_id}: the gate refuses its new exposure, its exits pass"
            self.paused.discard(strategy_id)
            return f"resumed {strategy_id}"
        if command.name == "set_parameters":
            changed = self.set_parameters(strategy, command.parameters or {})
            self.persist_parameters(str(strategy.id), changed)
            return f"set {strategy.id} " + ", ".join(f"{k}={v}" for k, v in changed.items())
        raise CommandRefused(f"command: {command.name} is not a strategy command")

    def set_parameters(self, strategy: Strategy, parameters: dict[str, Any]) -> dict[str, Any]:
        names = getattr(strategy, "LIVE_PARAMETERS", ())
        if not names or not hasattr(strategy, "update_config"):
            raise CommandRefused(f"strategy: {strategy.id} takes no parameter changes while it runs")
        unknown = sorted(set(parameters) - set(names))
        if unknown:
            raise CommandRefused(
                f"parameters.{unknown[0]}: not a parameter {strategy.id} can change while it runs; "
                f"expected one of {', '.join(names)}",
            )
        current = getattr(strategy, "params", strategy.config)
        merged = json.loads(current.json()) | parameters
        try:
            new = type(current).parse(json.dumps(merged))
        except (msgspec.ValidationError, ValueError, TypeError) as exc:
            # msgspec names a type error's field ("... - at `$.fast_period`"); a config's own
            # check (__post_init__) starts its message with the field it refuses.
            message = str(exc)
            if "$." in message:
                name = message.rsplit("$.", 1)[-1].rstrip("`")
            else:
                name = next((n for n in parameters if message.startswith(n)), next(iter(parameters)))
            raise CommandRefused(f"parameters.{name}: {message}") from None
        try:
            strategy.update_config(new)
        except ValueError as exc:
            raise CommandRefused(f"parameters: {exc}") from None
        return {name: msgspec.to_builtins(getattr(new, name)) for name in parameters}

    def persist_parameters(self, strategy_id: str, changed: dict[str, Any]) -> None:
        path = self.state_dir / PARAMETERS_FILE
        saved = json.loads(path.read_text()) if path.exists() else {}
        saved.setdefault(strategy_id, {}).update(changed)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(saved, indent=1, sort_keys=True))
        os.replace(tmp, path)

    def restore_parameters(self) -> list[str]:
        """Parameters persisted by earlier runs, applied to the freshly built strategies."""
        path = self.state_dir / PARAMETERS_FILE
        if not path.exists():
            return []
        applied = []
        for strategy_id, parameters in json.loads(path.read_text()).items():
            try:
                strategy = self.strategy(strategy_id)
            except CommandRefused:
                continue  # a strategy this run does not trade
            try:
                self.set_parameters(strategy, parameters)
            except CommandRefused as exc:
                # Refused, not skipped: the operator saved these to trade with them.
                raise ParametersFileError(
                    f"{path}: {strategy_id}: {exc}; correct or remove its entry",
                ) from None
            applied.append(f"{strategy_id}: {parameters}")
        return applied

    def record(self, command: Command, detail: str, ts_ns: int) -> None:
        """The journal's record of an operator action (who, what, why)."""
        publish_risk(self.kernel.msgbus, RiskRecord(
            ts_ns=ts_ns, source=f"operator:{command.actor}", kind="control",
            detail=f"{command.name}: {detail} (reason: {command.reason})",
            strategy=command.strategy,
        ))

    # -- the snapshot ---------------------------------------------------------------------------

    def _equity(self) -> Decimal | None:
        try:
            return account_equity(self.kernel.portfolio, self.kernel.cache, self.venue)
        except RuntimeError:
            return None  # no account yet (before the execution client reported it)

    def market_ns(self) -> int | None:
        """The time of the latest bar (the replay's clock; close to wall time live); None before."""
        latest = [bar.ts_event for bar in (self.kernel.cache.bar(b) for b in self.bar_types) if bar]
        return max(latest) if latest else None

    def _sample(self, now_ns: int) -> None:
        equity = self._equity()
        if equity is not None:
            if self.start_equity is None:
                self.start_equity = equity
            day = pd.Timestamp(now_ns, tz="UTC").tz_convert(EXCHANGE_TZ).date()
            if self.day_start is None or self.day_start[0] != day:
                self.day_start = (day, equity)
            if not self.equity or self.equity[-1][1] != str(equity) or len(self.equity) == 1:
                self.equity.append((_iso(now_ns), str(equity)))
        for strategy in self.kernel.trader.strategies():
            values = getattr(strategy, "indicator_values", None)
            if values is None:
                continue
            series = self.indicators.setdefault(str(strategy.id), deque(maxlen=RECENT_BARS))
            sample = {k: v for k, v in values().items() if isinstance(v, float) and math.isfinite(v)}
            if sample and (not series or series[-1][1] != sample):
                series.append((_iso(now_ns), sample))

    def snapshot(self) -> dict[str, Any]:
        kernel = self.kernel
        cache = kernel.cache
        now_ns = self.market_ns()
        if now_ns is not None:
            self._sample(now_ns)
        equity = self._equity()
        positions = []
        for p in cache.positions_open():
            price = cache.price(p.instrument_id, PriceType.LAST)
            mark = price.as_decimal() if price is not None else Decimal(str(p.avg_px_open))
            value = p.signed_decimal_qty() * mark
            positions.append({
                "instrument_id": str(p.instrument_id),
                "strategy_id": str(p.strategy_id),
                "quantity": str(p.signed_decimal_qty()),
                "avg_px_open": str(p.avg_px_open),
                "last": str(mark),
                "market_value": str(value),
                "unrealized_pnl": str((mark - Decimal(str(p.avg_px_open))) * p.signed_decimal_qty()),
                "bankroll_pct": str((value / equity * 100).quantize(Decimal("0.01"))) if equity else None,
            })
        strategies = []
        for s in kernel.trader.strategies():
            values, schema = live_parameters(s)
            orders = cache.orders(strategy_id=s.id)
            strategies.append({
                "id": str(s.id), "state": "PAUSED" if str(s.id) in self.paused else s.state.name,
                "class": type(s).__name__,
                "orders": len(orders), "open_orders": len(cache.orders_open(strategy_id=s.id)),
                "parameters": values, "schema": schema,
                "indicators_in_use": {k: str(v) for k, v in getattr(s, "indicators_in_use", dict)().items()},
                "progress": getattr(s, "progress", dict)(),
                "indicators": [{"ts": ts, **v} for ts, v in self.indicators.get(str(s.id), ())],
            })
        bars = {}
        for bar_type in self.bar_types:
            recent = cache.bars(bar_type)[:RECENT_BARS]
            bars[str(bar_type.instrument_id)] = [
                [_iso(b.ts_event), float(b.open), float(b.high), float(b.low), float(b.close)]
                for b in reversed(recent)
            ]
        day_pnl = equity - self.day_start[1] if equity is not None and self.day_start else None
        run_pnl = equity - self.start_equity if equity is not None and self.start_equity is not None else None
        return {
            "market_time": None if now_ns is None else _iso(now_ns),
            "equity": None if equity is None else str(equity),
            "pnl_day": None if day_pnl is None else str(day_pnl),
            "pnl_session": None if run_pnl is None else str(run_pnl),
            "equity_curve": list(self.equity),
            "positions": positions,
            "open_orders": [
                {"client_order_id": str(o.client_order_id), "strategy_id": str(o.strategy_id),
                 "instrument_id": str(o.instrument_id), "side": o.side_string(),
                 "type": o.type_string(), "quantity": str(o.quantity),
                 "status": o.status_string()}
                for o in cache.orders_open()
            ],
            "orders": len(cache.orders()),
            "orders_by_status": _count_by_status(cache.orders()),
            "fills": list(self.fills),
            "strategies": strategies,
            "bars": bars,
            "order_latency_ms": _latency_summary(self.latencies_ms),
            "orders_rejected": self.rejected,
            "alerts": dict(self.alerts),
            "commands_applied": self.commands_applied,
            "commands_refused": self.commands_refused,
        }


def _latency_summary(values: deque[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {"last": round(values[-1], 3), "p50": round(ordered[len(ordered) // 2], 3),
            "max": round(ordered[-1], 3), "samples": len(ordered)}


def _count_by_status(orders: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for order in orders:
        counts[order.status_string()] = counts.get(order.status_string(), 0) + 1
    return counts
