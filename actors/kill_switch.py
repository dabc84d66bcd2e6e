"""
The kill switch: halts trading on the day's loss, switches to reduce-only on a drawdown.

Rules:
- The session's start equity is the equity (cash plus positions at the last closes) when the
  first bar of a NYSE session date arrives, before that bar's prices count. When the day's
  loss, realised and unrealised, (start - equity) / start reaches DAILY_LOSS_LIMIT on a bar, the
  switch asks the pre-trade gate to cancel every open order, close every position (when
  flatten_on_halt) and set the Nautilus trading state to HALTED, in that order, on that bar.
  It publishes a critical alert and records the event (and appends it as a JSON line to
  `event_log` when set). The halt lifts at the next session (resume_next_session) or only by a
  manual reset (``reset`` or a message to RESET_ENDPOINT).
- When the drawdown from the equity peak reaches max_drawdown_pct the state becomes REDUCING
  (only orders that reduce a position pass) until a manual reset, which also restarts the peak.

Equity is computed here from the bars themselves, so the verdict on a bar never depends on
whether the portfolio has already marked that bar.

Live (`state_path`): the session's date and start equity, the peak, and a halt or reduce-only
with its reason are written to a JSON file whenever they change and read back at start, so a
restart in the middle of a session neither forgets the day's loss nor lifts a halt.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import Venue

from config.risk import RiskConfig
from risk.messages import CONTROL_ENDPOINT
from risk.messages import Alert
from risk.messages import AlertKind
from risk.messages import ControlAction
from risk.messages import RiskControl
from risk.sizing import HUNDRED
from strategies.account import MarkedEquity
from strategies.account import account_equity
from strategies.records import RiskRecord
from strategies.records import publish_risk
from strategies.sessions import SessionTracker

RESET_ENDPOINT = "KillSwitch.reset"
PCT = Decimal("0.01")


class KillSwitchConfig(ActorConfig, frozen=True):
    """bar_types: the bars that mark positions (one per traded instrument); venue: the account's."""

    risk: RiskConfig = RiskConfig()
    bar_types: list[BarType] = []
    venue: str = "SIM"
    event_log: str | None = None
    state_path: str | None = None


@dataclass(frozen=True)
class KillSwitchEvent:
    ts_ns: int
    action: str  # HALT, REDUCE, RESUME
    equity: str
    reference_equity: str  # session start (HALT) or peak (REDUCE)
    loss_pct: str
    reason: str


@dataclass(frozen=True)
class KillSwitchState:
    """What a restart must not forget (the file at KillSwitchConfig.state_path)."""

    session_date: dt.date | None
    session_start_equity: Decimal | None
    peak_equity: Decimal | None
    halted: bool
    reducing: bool
    reason: str  # of the halt or reduce-only in force

    def to_json(self) -> str:
        return json.dumps({
            "session_date": self.session_date.isoformat() if self.session_date else None,
            "session_start_equity": _text(self.session_start_equity),
            "peak_equity": _text(self.peak_equity),
            "halted": self.halted,
            "reducing": self.reducing,
            "reason": self.reason,
        }, indent=1)

    @classmethod
    def read(cls, path: Path) -> KillSwitchState:
        """The saved state; a file that cannot be trusted is an error naming it and the key."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: kill switch state is not JSON ({exc})") from None
        key = ""
        try:
            key = "session_date"
            date = dt.date.fromisoformat(raw[key]) if raw[key] is not None else None
            key = "session_start_equity"
            start = Decimal(raw[key]) if raw[key] is not None else None
            key = "peak_equity"
            peak = Decimal(raw[key]) if raw[key] is not None else None
            flags = {}
            for key in ("halted", "reducing"):
                if not isinstance(raw[key], bool):
                    raise ValueError(f"expected true or false, got {raw[key]!r}")
                flags[key] = raw[key]
            key = "reason"
            reason = str(raw[key])
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            detail = "missing" if isinstance(exc, KeyError) else str(exc)
            raise ValueError(f"{path}: kill switch state key {key!r}: {detail}") from None
        return cls(date, start, peak, flags["halted"], flags["reducing"], reason)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class KillSwitch(Actor):
    def __init__(self, config: KillSwitchConfig) -> None:
        super().__init__(config)
        self.risk = config.risk
        self._venue = Venue(config.venue)
        self.session_date: dt.date | None = None
        self.session_start_equity: Decimal | None = None
        self.peak_equity: Decimal | None = None
        self.halted = False
        self.reducing = False
        self.reason = ""  # of the halt or reduce-only in force
        self.events: list[KillSwitchEvent] = []
        self._days = SessionTracker()
        self._equity: MarkedEquity | None = None
        self._last_check: tuple[object, ...] | None = None

    def on_start(self) -> None:
        if CONTROL_ENDPOINT not in self.msgbus.endpoints():
            raise RuntimeError(
                "KillSwitch needs the PreTradeGate (no endpoint "
                f"{CONTROL_ENDPOINT}); add and install the gate before starting",
            )
        self.msgbus.register(RESET_ENDPOINT, self.reset)
        self._equity = MarkedEquity(self.portfolio, self.cache, self._venue)
        if self.config.state_path and Path(self.config.state_path).exists():
            self._restore(KillSwitchState.read(Path(self.config.state_path)))
        self.msgbus.subscribe("events.account.*", self._equity.invalidate)
        self.msgbus.subscribe("events.position.*", self._equity.invalidate)
        for bar_type in self.config.bar_types:
            self.subscribe_bars(bar_type)

    def on_stop(self) -> None:
        if RESET_ENDPOINT in self.msgbus.endpoints():
            self.msgbus.deregister(RESET_ENDPOINT, self.reset)
        if self._equity is not None:
            self.msgbus.unsubscribe("events.account.*", self._equity.invalidate)
            self.msgbus.unsubscribe("events.position.*", self._equity.invalidate)

    def _restore(self, state: KillSwitchState) -> None:
        """Take the saved state back; a halt or reduce-only in force is applied at the gate
        again (positions are not closed twice: what the halt closed is already closed)."""
        self.session_date = state.session_date
        self.session_start_equity = state.session_start_equity
        self.peak_equity = state.peak_equity
        self.halted, self.reducing, self.reason = state.halted, state.reducing, state.reason
        self.log.warning(
            f"KillSwitch state restored from {self.config.state_path}: session "
            f"{state.session_date} starting at {state.session_start_equity}, peak "
            f"{state.peak_equity}{', HALTED' if state.halted else ''}"
            f"{', reduce-only' if state.reducing else ''}",
        )
        restored = f"restored after a restart: {state.reason}"
        if state.halted:
            self.msgbus.send(CONTROL_ENDPOINT,
                             RiskControl(ControlAction.HALT, restored, "kill_switch"))
        elif state.reducing:
            self.msgbus.send(CONTROL_ENDPOINT,
                             RiskControl(ControlAction.REDUCE, restored, "kill_switch"))

    def _save(self) -> None:
        if not self.config.state_path:
            return
        path = Path(self.config.state_path)
        state = KillSwitchState(self.session_date, self.session_start_equity, self.peak_equity,
                                self.halted, self.reducing, self.reason)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(state.to_json(), encoding="utf-8")
        os.replace(tmp, path)

    def equity(self) -> Decimal:
        if self._equity is None:
            return account_equity(self.portfolio, self.cache, self._venue)
        return self._equity.value()

    def on_bar(self, bar: Bar) -> None:
        self._days.update(bar.ts_event)
        day = self._days.day
        if day != self.session_date:
            self._new_session(day, bar.ts_event)
        equity = self.equity()
        if self.peak_equity is None or equity > self.peak_equity:
            self.peak_equity = equity
            self._save()
        if self.halted:
            return
        start = self.session_start_equity
        peak = self.peak_equity
        # The verdict is a function of these figures alone, and the last one checked took no
        # action; while the book is flat they repeat bar after bar (equity is the cash).
        check = (equity, start, peak, self.reducing, self.risk)
        if check == self._last_check:
            return
        if start and start > 0:
            loss_pct = (start - equity) / start * HUNDRED
            if loss_pct >= self.risk.daily_loss_limit_pct:
                self._halt(bar.ts_event, equity, start, loss_pct)
                return
        if not self.reducing and peak > 0:
            drawdown_pct = (peak - equity) / peak * HUNDRED
            if drawdown_pct >= self.risk.max_drawdown_pct:
                self._reduce(bar.ts_event, equity, peak, drawdown_pct)
                return
        self._last_check = check

    def _new_session(self, day: dt.date, ts_ns: int) -> None:
        self.session_date = day
        self.session_start_equity = self.equity()
        self._save()
        if self.halted and self.risk.resume_next_session:
            self._resume(ts_ns, f"new session {day}")

    def _halt(self, ts_ns: int, equity: Decimal, start: Decimal, loss_pct: Decimal) -> None:
        self.halted = True
        reason = (
            f"day loss {loss_pct.quantize(PCT)}% (equity {equity.quantize(PCT)} vs session start "
            f"{start.quantize(PCT)}) reached DAILY_LOSS_LIMIT {self.risk.daily_loss_limit_pct}%"
        )
        self.reason = reason
        self._save()
        self._record(KillSwitchEvent(ts_ns, "HALT", str(equity.quantize(PCT)), str(start.quantize(PCT)),
                                     str(loss_pct.quantize(PCT)), reason))
        # The journal's record of the halt carries the money figures that caused it.
        loss, limit = start - equity, start * self.risk.daily_loss_limit_pct / HUNDRED
        publish_risk(self.msgbus, RiskRecord(ts_ns, "kill_switch", "halt", (
            f"day loss {loss.quantize(PCT)} reached the limit {limit.quantize(PCT)} "
            f"(DAILY_LOSS_LIMIT {self.risk.daily_loss_limit_pct}% of session start equity "
            f"{start.quantize(PCT)}; equity {equity.quantize(PCT)}, loss {loss_pct.quantize(PCT)}%)"
        )))
        self.msgbus.send(
            CONTROL_ENDPOINT,
            RiskControl(ControlAction.HALT, reason, "kill_switch", exit_positions=self.risk.flatten_on_halt),
        )
        until = "the next session" if self.risk.resume_next_session else "a manual reset"
        self._alert(
            ts_ns,
            subject=f"Kill switch: trading HALTED, day loss {loss_pct.quantize(PCT)}%",
            body=(f"{reason}.\nOpen orders cancelled; positions "
                  f"{'closed' if self.risk.flatten_on_halt else 'left open'}. Halted until {until}."),
        )

    def _reduce(self, ts_ns: int, equity: Decimal, peak: Decimal, drawdown_pct: Decimal) -> None:
        self.reducing = True
        reason = (
            f"drawdown {drawdown_pct.quantize(PCT)}% from peak {peak.quantize(PCT)} (equity "
            f"{equity.quantize(PCT)}) reached the {self.risk.max_drawdown_pct}% limit"
        )
        self.reason = reason
        self._save()
        self._record(KillSwitchEvent(ts_ns, "REDUCE", str(equity.quantize(PCT)), str(peak.quantize(PCT)),
                                     str(drawdown_pct.quantize(PCT)), reason))
        self.msgbus.send(CONTROL_ENDPOINT, RiskControl(ControlAction.REDUCE, reason, "kill_switch"))
        self._alert(ts_ns, f"Kill switch: reduce-only, drawdown {drawdown_pct.quantize(PCT)}%", reason)

    def _resume(self, ts_ns: int, reason: str) -> None:
        self.halted = False
        self.reducing = False
        equity = self.equity()
        self.peak_equity = equity
        self.reason = ""
        self._save()
        self._record(KillSwitchEvent(ts_ns, "RESUME", str(equity.quantize(PCT)), "", "", reason))
        self.msgbus.send(CONTROL_ENDPOINT, RiskControl(ControlAction.RESUME, reason, "kill_switch"))
        self._alert(ts_ns, "Kill switch: trading resumed", reason, critical=False)

    def reset(self, reason: str = "manual reset") -> None:
        """Lift a halt or reduce-only now; the equity peak restarts from the current equity."""
        self._resume(self.clock.timestamp_ns(), reason)

    def _record(self, event: KillSwitchEvent) -> None:
        self.events.append(event)
        self.log.warning(f"KillSwitch {event.action}: {event.reason}")
        if self.config.event_log:
            with Path(self.config.event_log).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(asdict(event)) + "\n")

    def _alert(self, ts_ns: int, subject: str, body: str, critical: bool = True) -> None:
        alert = Alert(AlertKind.KILL_SWITCH, subject, body, ts_ns, critical=critical)
        self.msgbus.publish(alert.topic, alert)
