"""
Runs a built TradingNode under a supervisor.

- Build: Nautilus's IB client connects inside node.build() and would retry a refused API session
  for ever, so the build is bounded by `CONNECT_TIMEOUT_SECONDS` (exit 3) and a SIGINT/SIGTERM
  during it ends the process at once (exit 0, nothing started).
- Start: the risk layer is installed (install_risk_layer), strategy state is restored from the
  state folder (memory cache) or from Redis (Nautilus load_state), and the node runs; when the
  clients have not connected `CONNECT_TIMEOUT_SECONDS` after start, the run stops with an error
  instead of sitting in RUNNING doing nothing. Orders and positions are reconciled with the
  venue by Nautilus's execution engine at start (reconciliation=True).
- Replay: once the trader runs, the replay client begins streaming; the session ends when
  the replay is done.
- Clocks: every time event runs on the node's event loop; a replay's clocks follow the data
  (livenode/clocks.py). An exception inside any component is reported to the error monitor
  (livenode/component_errors.py) and the node goes on.
- Stop: SIGINT/SIGTERM, a `stop` command or the end of the replay: working orders are
  cancelled (CANCEL_ON_SHUTDOWN; a `stop` command also flattens and halts), strategy state is
  saved, the node stops, the run's own session_summary.json is written (with the daily
  summaries the journal wrote as each session closed), exit code 0, or 4 when a component
  raised during the run. A second signal exits at once with 130.
- Dry run: the execution engine's entry is taken over; every order a strategy sends after the
  gate is logged with its strategy and denied as "DRY-RUN", nothing leaves the process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.execution.messages import SubmitOrderList
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import AccountId
from nautilus_trader.model.identifiers import ClientId

from actors.broker_link import engine_link_up
from actors.journal import Journal
from actors.record_writer import RecordWriter
from actors.pre_trade_gate import PreTradeGate
from actors.pre_trade_gate import install_risk_layer
from actors.error_monitor import ErrorMonitor
from actors.watchdog import Watchdog
from adapters.replay.config import REPLAY_CLIENT_ID
from adapters.replay.data import ReplayDataClientFactory
from adapters.replay.data import node_is_idle
from adapters.replay.execution import ReplayExecClientFactory
from adapters.replay.execution import apply_order_events_at_once
from adapters.replay.execution import register_simulated_account
from catalog.instruments import BACKTEST_VENUE
from livenode.builder import IB_CLIENT
from livenode.builder import LivePlan
from livenode.builder import build_node_config
from livenode.builder import write_replay_state
from nautilus_trader.common.component import flush_logger
from livenode.clocks import node_clocks
from livenode.clocks import trading_node
from livenode.component_errors import ComponentErrors
from livenode.control import Command
from livenode.control import ControlChannel
from livenode.operations import CommandRefused
from livenode.operations import Operations
from livenode.operations import ParametersFileError
from livenode.operations import fill_fields
from livenode.selfcheck import self_check_report
from risk.messages import CONTROL_ENDPOINT
from risk.messages import ControlAction
from risk.messages import RiskControl

EXIT_OK = 0
EXIT_REFUSED = 2
STARTUP_HOLD = "startup"
SHUTDOWN_HOLD = "shutdown"
EXIT_NOT_CONNECTED = 3
EXIT_COMPONENT_ERRORS = 4
EXIT_FORCED = 130
EXEC_ENGINE_ENDPOINT = "ExecEngine.execute"
STATE_FILE = "strategy_state.json"
SUMMARY_FILE = "session_summary.json"


class NotConnectedError(RuntimeError):
    """The node's clients did not connect in time after start."""


class BuildInterrupted(SystemExit):
    """
    The node's build was cut short: a signal, the IB client still without an API session
    `CONNECT_TIMEOUT_SECONDS` into the build, or a saved parameter (STATE_DIR/parameters.json)
    a strategy of this run cannot take. A SystemExit because asyncio lets only SystemExit
    and KeyboardInterrupt out of a callback run by the loop (the build runs the loop while
    Nautilus's IB client connects); `code` is the process's exit code, `message` says why.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code)
        self.message = message


def install_dry_run(kernel: Any, log: Callable[[str], None]) -> list[str]:
    """Take over the execution engine's entry: log and deny every order; returns the log."""
    sent: list[str] = []
    msgbus = kernel.msgbus
    real = kernel.exec_engine.execute

    def execute(command: Any) -> None:
        if isinstance(command, SubmitOrder | SubmitOrderList):
            orders = command.order_list.orders if isinstance(command, SubmitOrderList) else [command.order]
            for order in orders:
                line = f"DRY-RUN {command.strategy_id}: would send {order}"
                sent.append(line)
                log(line)
                kernel.exec_engine.process(OrderDenied(
                    trader_id=order.trader_id, strategy_id=order.strategy_id,
                    instrument_id=order.instrument_id, client_order_id=order.client_order_id,
                    reason="DRY-RUN: not sent", event_id=UUID4(),
                    ts_init=kernel.clock.timestamp_ns(),
                ))
            return
        real(command)

    msgbus.deregister(EXEC_ENGINE_ENDPOINT, real)
    msgbus.register(EXEC_ENGINE_ENDPOINT, execute)
    return sent


def print_now(text: str) -> None:
    print(text, flush=True)


class LiveRunner:
    def __init__(self, plan: LivePlan, out: Callable[[str], None] = print_now) -> None:
        self.plan = plan
        self.risk_limits = plan.risk_limits()
        self.settings = plan.settings
        self.out = out
        self.node: TradingNode | None = None
        self.gate: PreTradeGate | None = None
        self.operations: Operations | None = None
        self._snapshot_ms = 0.0
        self.control = ControlChannel(plan.state_dir)
        self._stop_reason: str | None = None
        self._flatten_on_stop = False
        self._signals = 0
        self.dry_run_orders: list[str] = []
        self.daily_summaries: list[dict[str, Any]] = []
        self.exit_code = EXIT_OK
        self.error: str | None = None
        self.component_errors = ComponentErrors()

    # -- building -------------------------------------------------------------------------------

    def build(self) -> TradingNode:
        self.plan.state_dir.mkdir(parents=True, exist_ok=True)
        config = build_node_config(self.plan)
        if self.plan.replay:
            register_simulated_account(BACKTEST_VENUE.value)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        replay_start = self.plan.replay_start.value if self.plan.replay else None
        node = trading_node(config, loop, replay_start, self.component_errors.time_event_error)
        self.component_errors.install(node.kernel)
        if self.plan.replay:
            node.add_data_client_factory(REPLAY_CLIENT_ID, ReplayDataClientFactory)
            node.add_exec_client_factory(next(iter(config.exec_clients)), ReplayExecClientFactory)
        else:
            from nautilus_trader.adapters.interactive_brokers.factories import (
                InteractiveBrokersLiveDataClientFactory,
            )
            from nautilus_trader.adapters.interactive_brokers.factories import (
                InteractiveBrokersLiveExecClientFactory,
            )

            exec_factory = InteractiveBrokersLiveExecClientFactory
            if self.settings["EXTENDED_HOURS"]:
                from adapters.ib.execution import ExtendedHoursExecClientFactory

                exec_factory = ExtendedHoursExecClientFactory
            node.add_data_client_factory(IB_CLIENT, InteractiveBrokersLiveDataClientFactory)
            node.add_exec_client_factory(IB_CLIENT, exec_factory)
        if self.plan.replay:
            node.build()
            apply_order_events_at_once(node.kernel.exec_engine, node.kernel.msgbus)
        else:
            self._build_bounded(node, loop)
        # From here a signal asks for the supervised shutdown (the run takes it at its start).
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        if not self.plan.replay:
            # IB files the account under the client's name ("IB-<account>"); strategies look
            # their account up by their instruments' venues (SPY.ARCX -> ARCX).
            account_id = AccountId(f"{IB_CLIENT}-{self.settings['IB_ACCOUNT']}")
            for venue in {iid.venue for iid in self.plan.instrument_ids()}:
                node.cache.set_account_id_for_venue(venue, account_id)
        self.gate = install_risk_layer(node.kernel)
        # No order passes until the self-checks are reported (lifted in _self_checks).
        self._send_control(node, ControlAction.HALT, "until the self-checks are reported",
                           source=STARTUP_HOLD)
        if self.settings.mode == "dry-run":
            self.dry_run_orders = install_dry_run(node.kernel, self._log_warning)
        if self.settings["CACHE_BACKEND"] == "memory":
            self._restore_strategy_state(node)
        self.operations = Operations(node.kernel, self.plan.state_dir, self.plan.source_bar_types())
        try:
            restored = self.operations.restore_parameters()
        except ParametersFileError as exc:
            node.dispose()
            raise BuildInterrupted(EXIT_REFUSED, str(exc)) from None
        for line in restored:
            self.out(f"parameters restored from {self.plan.state_dir}: {line}")
        self.node = node
        return node

    def _build_bounded(self, node: TradingNode, loop: asyncio.AbstractEventLoop) -> None:
        """
        Build the node with IB clients, bounded and interruptible. Nautilus's IB client connects
        inside node.build(), running the loop until its API session is up and retrying for ever
        (a client id another API client holds, IB error 326, included), with the kernel's signal
        handlers only asking the not-yet-running node to stop. So while it builds, a signal
        ends the process (exit 0, nothing was started) and `CONNECT_TIMEOUT_SECONDS` without a
        session ends it with exit 3.
        """
        s = self.settings
        where = f"IB_HOST:IB_PORT {s['IB_HOST']}:{s['IB_PORT']} as IB_CLIENT_ID {s['IB_CLIENT_ID']}"
        timeout = s["CONNECT_TIMEOUT_SECONDS"]

        def on_signal(sig: signal.Signals) -> None:
            raise BuildInterrupted(EXIT_OK, f"{sig.name} received while the IB client was connecting "
                                            f"to {where}: stopped before the node started")

        def on_timeout() -> None:
            raise BuildInterrupted(
                EXIT_NOT_CONNECTED,
                f"the IB client did not connect to {where} within {timeout} s "
                "(CONNECT_TIMEOUT_SECONDS) while the node was built (is another API client using "
                "IB_CLIENT_ID? see node.log); stopping",
            )

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        timer = loop.call_later(timeout, on_timeout)
        try:
            node.build()
        except BuildInterrupted:
            flush_logger()
            raise
        finally:
            timer.cancel()

    def _log_warning(self, text: str) -> None:
        if self.node is not None:
            self.node.kernel.logger.warning(text)

    def _restore_strategy_state(self, node: TradingNode) -> None:
        path = self.plan.state_dir / STATE_FILE
        if not path.exists():
            return
        saved = json.loads(path.read_text())
        for strategy in node.trader.strategies():
            state = saved.get(str(strategy.id))
            if state:
                strategy.load({k: bytes.fromhex(v) for k, v in state.items()})

    # -- running --------------------------------------------------------------------------------

    def run(self) -> int:
        node = self.node or self.build()
        loop = node.get_event_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            loop.run_until_complete(self._supervise(node))
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            node.dispose()
            # The engine log is written by Nautilus's logging thread, buffered: flushed here so
            # node.log holds the shutdown's last lines when the process exits.
            flush_logger()
        return self.exit_code

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        if self._signals > 1:
            self.out(f"second {sig.name}: exiting now without a clean shutdown")
            os._exit(EXIT_FORCED)
        self.out(f"{sig.name} received: shutting down (send it again to force)")
        self.request_stop(f"signal {sig.name}")

    def request_stop(self, reason: str, flatten: bool = False) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
        self._flatten_on_stop = self._flatten_on_stop or flatten

    def _connected(self, node: TradingNode) -> bool:
        # The real link (an IB client keeps its connected flag through an outage).
        kernel = node.kernel
        return engine_link_up(kernel.data_engine) and engine_link_up(kernel.exec_engine)

    async def _wait_started(self, node: TradingNode, run_task: asyncio.Future) -> None:
        deadline = time.monotonic() + self.settings["CONNECT_TIMEOUT_SECONDS"]
        while time.monotonic() < deadline:
            if node.trader.is_running and self._connected(node):
                return
            if run_task.done():
                break
            if self._stop_reason is not None:
                return
            await asyncio.sleep(0.05)
        kernel = node.kernel
        if run_task.done() and not run_task.cancelled() and run_task.exception() is not None:
            exc = run_task.exception()
            raise NotConnectedError(f"the node failed while starting: {type(exc).__name__}: {exc}")
        raise NotConnectedError(
            f"the node's clients did not connect within {self.settings['CONNECT_TIMEOUT_SECONDS']} s "
            f"(CONNECT_TIMEOUT_SECONDS): data connected={kernel.data_engine.check_connected()}, "
            f"execution connected={kernel.exec_engine.check_connected()}, trader running="
            f"{node.trader.is_running}; stopping",
        )

    async def _supervise(self, node: TradingNode) -> None:
        run_task = asyncio.ensure_future(node.run_async())
        replay = None
        try:
            await self._wait_started(node, run_task)
        except NotConnectedError as exc:
            self.error = str(exc)
            self.exit_code = EXIT_NOT_CONNECTED
            node.kernel.logger.error(self.error)
            self.out(f"error: {self.error}")
            await self._stop_node(node, run_task)
            return
        warm_up = self.plan.replay_resume_ns is not None
        if self._stop_reason is None and not await self._self_checks(node, resume=not warm_up):
            self.exit_code = EXIT_REFUSED
            self.request_stop("self-checks failed in live mode")
        if self.plan.replay and self._stop_reason is None:
            replay = node.kernel.data_engine._clients[ClientId(REPLAY_CLIENT_ID)]
            if warm_up:
                resume_at = pd.Timestamp(self.plan.replay_resume_ns, tz="UTC")
                self.out(f"restart: replaying up to {resume_at} again with trading held, then "
                         "resuming (orders and positions restored from the cache)")
            replay.begin(node.kernel, node_clocks(node.kernel), self.component_errors.time_event_error,
                         on_step=lambda ts: write_replay_state(self.plan, ts, False))
        last_snapshot = 0.0
        writing: asyncio.Future | None = None
        while self._stop_reason is None:
            self._take_commands(node)
            if warm_up and replay is not None and replay.caught_up.is_set():
                warm_up = False
                self._send_control(node, ControlAction.RESUME, "replay caught up",
                                   source=STARTUP_HOLD)
            if replay is not None and replay.finished.is_set():
                self.request_stop("replay finished")
            if run_task.done():
                self.request_stop("node stopped by itself")
            now = time.monotonic()
            if now - last_snapshot >= 1.0:
                # Built and written on the node's loop: its cost is published (snapshot_ms) so
                # the dashboard's share of the loop's time stays visible.
                state = self.snapshot(node, "running")
                self._snapshot_ms = (time.monotonic() - now) * 1000
                # Encoding and writing the file happen off the loop (a thread of its own).
                if writing is None or writing.done():
                    writing = asyncio.get_running_loop().run_in_executor(None, self.control.write_state, state)
                last_snapshot = now
            await asyncio.sleep(0.02 if replay is not None else 0.2)
        self.out(f"stopping: {self._stop_reason}")
        if writing is not None:
            await writing
        self.control.write_state(self.snapshot(node, "stopping"))
        await self._wind_down(node)
        self._save_strategy_state(node)
        if replay is not None:
            write_replay_state(self.plan, replay.last_ts, replay.finished.is_set())
        await self._stop_node(node, run_task)
        self._collect_daily_summaries(node)
        self._write_summary(node)
        self._report_component_errors()
        self.control.write_state(self.snapshot(node, "stopped"))

    def _report_component_errors(self) -> None:
        """A run that had a component error ends non-zero and says so last."""
        errors = self.component_errors
        if not errors.count:
            return
        log = self.plan.state_dir / "unresolved_orders.log"
        self.error = self.error or f"{errors.count} component error(s); last: {errors.last}"
        self.out(f"error: {errors.count} exception(s) raised inside strategies, actors or timers "
                 f"during the run (last: {errors.last}); each is in {log}")
        if self.exit_code == EXIT_OK:
            self.exit_code = EXIT_COMPONENT_ERRORS

    async def _self_checks(self, node: TradingNode, resume: bool = True) -> bool:
        """
        Report every strategy's self-check while trading is held (STARTUP hold), then lift the
        hold; in live mode only when every check passed.
        """
        await self._settle(node, 10.0)  # the strategies' subscriptions are processed first
        all_passed = True
        self.out("self-checks:")
        for strategy in node.trader.strategies():
            passed, text = self_check_report(strategy)
            all_passed &= passed
            self.out(f"  {strategy.id}: {'PASS' if passed else 'FAIL'} - {text}")
        if self.settings.mode == "live" and not all_passed:
            self.error = "live mode needs every strategy's self-check to pass; not trading"
            self.out(f"error: {self.error}")
            return False
        if resume:
            self._send_control(node, ControlAction.RESUME, "self-checks reported",
                               source=STARTUP_HOLD)
        return True

    def _take_commands(self, node: TradingNode) -> None:
        commands, problems = self.control.take_commands()
        for problem in problems:
            node.kernel.logger.error(f"control: refused {problem}")
        for command in commands:
            node.kernel.logger.warning(f"control: {command.name} by {command.actor} ({command.reason})")
            try:
                detail = self._apply_command(node, command)
            except Exception as exc:  # a failing command is refused and logged, never ends the run
                message = str(exc) if isinstance(exc, CommandRefused) else f"{type(exc).__name__}: {exc}"
                node.kernel.logger.error(f"control: refused {command.name} by {command.actor}: {message}")
                self.control.refuse(command, message)
                if self.operations is not None:
                    self.operations.commands_refused += 1
                continue
            self.control.accept(command)
            if self.operations is not None:
                self.operations.commands_applied += 1
                self.operations.record(command, detail, node.kernel.clock.timestamp_ns())

    def _apply_command(self, node: TradingNode, command: Command) -> str:
        if command.name == "stop":
            self.request_stop(f"stop command: {command.reason}", flatten=True)
            return "flatten, halt and stop the node"
        if command.name in ("halt", "flatten"):
            self._send_control(node, ControlAction.HALT, command.reason,
                               exit_positions=command.name == "flatten")
            return "kill switch: halt" + (" and flatten" if command.name == "flatten" else "")
        if command.name == "resume":
            self._send_control(node, ControlAction.RESUME, command.reason)
            return "kill switch reset: resume trading"
        assert self.operations is not None, "commands are taken only once the node is built"
        return self.operations.apply(command)

    def _send_control(self, node: TradingNode, action: ControlAction, reason: str,
                      exit_positions: bool = False, source: str = "operator") -> None:
        node.kernel.msgbus.send(CONTROL_ENDPOINT, RiskControl(
            action=action, reason=reason, source=source, exit_positions=exit_positions,
            cancel_orders=action == ControlAction.HALT and source != STARTUP_HOLD,
        ))

    async def _settle(self, node: TradingNode, seconds: float) -> None:
        """Give the engines time to process what was just sent (queues empty, or `seconds`)."""
        deadline = time.monotonic() + seconds
        await asyncio.sleep(0)
        while time.monotonic() < deadline and not node_is_idle(node.kernel):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)

    async def _wind_down(self, node: TradingNode) -> None:
        if self._flatten_on_stop:
            self._send_control(node, ControlAction.HALT, self._stop_reason or "stop", exit_positions=True)
        elif self.settings["CANCEL_ON_SHUTDOWN"] and node.cache.orders_open():
            # A halt, not bare cancels: an execution algorithm (the bid chaser) re-places a
            # cancelled child, and only the halted gate refuses the replacement.
            self._send_control(node, ControlAction.HALT, f"shutdown ({self._stop_reason})",
                               source=SHUTDOWN_HOLD)
        await self._settle(node, 5.0)

    def _save_strategy_state(self, node: TradingNode) -> None:
        states = {}
        for strategy in node.trader.strategies():
            state = strategy.save()
            if state:
                states[str(strategy.id)] = {k: bytes(v).hex() for k, v in state.items()}
        path = self.plan.state_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(states, indent=1))
        os.replace(tmp, path)

    def _collect_daily_summaries(self, node: TradingNode) -> None:
        """The daily summaries the journal wrote as each session of the run closed."""
        for journal in (a for a in node.trader.actors() if isinstance(a, Journal)):
            self.daily_summaries += journal.summaries_written

    def _write_summary(self, node: TradingNode) -> None:
        cache = node.cache
        fills = []
        reconciled = []  # inferred at start from the broker's reports: not executions of this run
        for order in cache.orders():
            for event in order.events:
                if isinstance(event, OrderFilled):
                    inferred = event.reconciliation or order.init_event.reconciliation
                    (reconciled if inferred else fills).append(
                        {"ts_event": event.ts_event, **fill_fields(event)}
                    )
        summary = {
            "written_at": dt.datetime.now(dt.UTC).isoformat(),
            "mode": self.settings.mode,
            "broker": self.settings.broker,
            "stop_reason": self._stop_reason,
            "orders": len(cache.orders()),
            "orders_open": len(cache.orders_open()),
            "fills": sorted(fills, key=lambda f: f["ts_event"]),
            "reconciled_fills": sorted(reconciled, key=lambda f: f["ts_event"]),
            "positions_open": [str(p.instrument_id) for p in cache.positions_open()],
            "dry_run_orders": self.dry_run_orders,
            "gate": self.gate.snapshot() if self.gate else None,
            "daily_summaries": self.daily_summaries,
        }
        (self.plan.state_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, default=str))

    async def _stop_node(self, node: TradingNode, run_task: asyncio.Future) -> None:
        try:
            await node.stop_async()
        finally:
            if not run_task.done():
                run_task.cancel()
            try:
                await run_task
            except asyncio.CancelledError:
                pass

    def _errors_snapshot(self, node: TradingNode) -> dict[str, Any] | None:
        """The error monitor's counts and the transient write failures the records retried."""
        actors = node.trader.actors()
        monitor = next((a.snapshot() for a in actors if isinstance(a, ErrorMonitor)), None)
        if monitor is None:
            return None
        retries = sum(a.writer.retries for a in actors if isinstance(getattr(a, "writer", None), RecordWriter))
        return monitor | {"retries": retries}

    def snapshot(self, node: TradingNode, phase: str) -> dict[str, Any]:
        cache = node.cache
        return {
            "ts": dt.datetime.now(dt.UTC).isoformat(),
            "phase": phase,
            "mode": self.settings.mode,
            "broker": self.settings.broker,
            "pid": os.getpid(),
            "connected": self._connected(node),
            "strategies": [
                {"id": str(s.id), "state": s.state.name} for s in node.trader.strategies()
            ],
            "positions": [
                {"instrument_id": str(p.instrument_id), "strategy_id": str(p.strategy_id),
                 "quantity": str(p.signed_qty), "avg_px_open": str(p.avg_px_open)}
                for p in cache.positions_open()
            ],
            "open_orders": len(cache.orders_open()),
            "orders": len(cache.orders()),
            "gate": self.gate.snapshot() if self.gate else None,
            "watchdog": next((a.snapshot() for a in node.trader.actors() if isinstance(a, Watchdog)), None),
            "errors": self._errors_snapshot(node),
            "error": self.error,
            "component_errors": {"count": self.component_errors.count, "last": self.component_errors.last},
            "snapshot_ms": round(self._snapshot_ms, 2),
            "risk_limits": self.risk_limits,
        } | (self.operations.snapshot() if self.operations is not None else {})
