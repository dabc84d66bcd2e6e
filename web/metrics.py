"""
Prometheus metrics: the node's figures read from its latest snapshot at each scrape, and the
dashboard's own counters (logins refused, control commands). One registry per app.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from web.node_link import Liveness


def _number(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


class NodeCollector(Collector):
    def __init__(self, snapshot: Callable[[], dict[str, Any] | None],
                 liveness: Callable[[], Liveness]) -> None:
        self.snapshot = snapshot
        self.liveness = liveness

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = self.snapshot()
        alive = self.liveness()
        up = GaugeMetricFamily("bot_node_snapshot_present", "1 when a node snapshot is readable")
        up.add_metric([], 0 if snap is None else 1)
        yield up
        live = GaugeMetricFamily("bot_node_alive", "1 while the node rewrites its snapshot")
        live.add_metric([], 1 if alive.alive else 0)
        yield live
        if alive.age_s is not None:
            age = GaugeMetricFamily("bot_node_snapshot_age_seconds", "age of the latest snapshot")
            age.add_metric([], alive.age_s)
            yield age
        if snap is None:
            return
        for name, key, help_text in (
            ("bot_equity_usd", "equity", "account equity marked to market"),
            ("bot_pnl_day_usd", "pnl_day", "P&L since the start of the exchange day"),
            ("bot_pnl_session_usd", "pnl_session", "P&L since the node started"),
        ):
            value = _number(snap.get(key))
            if value is not None:
                gauge = GaugeMetricFamily(name, help_text)
                gauge.add_metric([], value)
                yield gauge
        positions = GaugeMetricFamily("bot_position_quantity", "signed open quantity", labels=["instrument"])
        for p in snap.get("positions", []):
            positions.add_metric([p["instrument_id"]], _number(p["quantity"]) or 0.0)
        yield positions
        count = GaugeMetricFamily("bot_positions_open", "open positions")
        count.add_metric([], len(snap.get("positions", [])))
        yield count
        orders = GaugeMetricFamily("bot_orders", "orders of this run by status", labels=["status"])
        for status, n in (snap.get("orders_by_status") or {}).items():
            orders.add_metric([status], n)
        yield orders
        gate = snap.get("gate") or {}
        refusals = GaugeMetricFamily("bot_recent_refusals", "the gate's recent refusals by rule",
                                     labels=["rule"])
        for rule, n in Tally(r["rule"] for r in gate.get("recent_refusals", [])).items():
            refusals.add_metric([rule], n)
        yield refusals
        halted = GaugeMetricFamily("bot_trading_state", "1 for the current trading state", labels=["state"])
        for state in ("ACTIVE", "REDUCING", "HALTED"):
            halted.add_metric([state], 1 if gate.get("trading_state") == state else 0)
        yield halted
        watchdog = snap.get("watchdog") or {}
        connected = GaugeMetricFamily("bot_connected", "1 when connected", labels=["link"])
        connected.add_metric(["node"], 1 if snap.get("connected") and alive.alive else 0)
        connected.add_metric(["broker"], 1 if watchdog.get("broker_connected") else 0)
        connected.add_metric(["data"], 1 if watchdog.get("data_connected") else 0)
        yield connected
        trips = GaugeMetricFamily("bot_circuit_breaker_trips", "circuit-breaker alerts this run")
        trips.add_metric([], len(watchdog.get("circuit_breaker_trips", [])))
        yield trips
        errors = GaugeMetricFamily("bot_errors", "node error present (1) or not (0)")
        errors.add_metric([], 1 if snap.get("error") else 0)
        yield errors
        monitor = snap.get("errors") or {}
        critical = GaugeMetricFamily("bot_critical_errors", "critical errors this run")
        critical.add_metric([], monitor.get("critical_errors", 0))
        yield critical
        retries = GaugeMetricFamily("bot_retries", "transient record-write failures retried this run")
        retries.add_metric([], monitor.get("retries", 0))
        yield retries
        rejected = GaugeMetricFamily("bot_orders_rejected", "orders the venue rejected this run")
        rejected.add_metric([], snap.get("orders_rejected", 0))
        yield rejected
        alerts = GaugeMetricFamily("bot_alerts", "alerts this run by kind", labels=["kind"])
        for kind, n in (snap.get("alerts") or {}).items():
            alerts.add_metric([kind], n)
        yield alerts
        latency = snap.get("order_latency_ms")
        if latency:
            gauge = GaugeMetricFamily("bot_order_latency_ms", "submission to the venue's first answer, "
                                      "recent orders", labels=["stat"])
            for stat in ("last", "p50", "max"):
                gauge.add_metric([stat], latency[stat])
            yield gauge
        commands = GaugeMetricFamily("bot_control_commands", "control commands by outcome", labels=["outcome"])
        commands.add_metric(["applied"], snap.get("commands_applied", 0))
        commands.add_metric(["refused"], snap.get("commands_refused", 0))
        yield commands


class WebMetrics:
    def __init__(self, snapshot: Callable[[], dict[str, Any] | None],
                 liveness: Callable[[], Liveness]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(NodeCollector(snapshot, liveness))
        self.login_failures = Counter("web_login_failures", "refused logins", registry=self.registry)
        self.commands = Counter("web_commands", "control commands sent", ["command", "outcome"],
                                registry=self.registry)
        self.latency = Histogram("web_request_seconds", "dashboard request latency", ["route"],
                                 registry=self.registry)
