"""
The journal: records every order event, fill, position change, account state, signal and
risk event as it happens, in backtest, paper and live alike.

It listens on the message bus only (``events.order.*``, ``events.position.*``,
``events.account.*``, ``events.risk`` and the ``journal.signal`` / ``journal.risk`` /
``journal.lots`` topics of strategies/records.py), so strategies never know it exists. Each
record is committed before the next is handled; the flat files (trade_history, per-strategy
logs) are appended after the database commit. At each NYSE session's close it writes that
session's daily summary.

It also keeps the lot books strategies persist through it (core RSI, live): at start it puts
every saved lot into the Cache under SAVED_LOTS_KEY, an empty set included, and rewrites that
entry after each change it records.

Order references: ``<run id>/<strategy>/<sequence>``. The run id is new on every start, the
sequence counts the orders this run initialised, and the broker's client and venue ids are
recorded beside it, so a reference is unique across restarts and brokers (IB's per-session
order ids are never relied on alone).
"""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.enums import order_side_to_str
from nautilus_trader.model.enums import order_type_to_str
from nautilus_trader.model.enums import trading_state_to_str
from nautilus_trader.model.events import AccountState
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderEvent
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import OrderInitialized
from nautilus_trader.model.events import OrderRejected
from nautilus_trader.model.events import PositionEvent
from nautilus_trader.model.identifiers import Venue

from actors.fills import FillRecord
from actors.fills import fill_from_event
from actors.fills import money_decimal
from actors.journal_store import RUN_MODES
from actors.journal_store import JournalStore
from actors.journal_store import indicators_json
from actors.lots import Lot
from actors.lots import LotBook
from actors.lots import LotError
from actors.trade_files import LOG_FORMATS
from actors.trade_files import StrategyLogs
from actors.trade_files import TradeHistory
from actors.trade_files import write_daily_summary
from strategies.account import account_equity
from strategies.records import LOTS_TOPIC
from strategies.records import RISK_TOPIC
from strategies.records import SAVED_LOTS_KEY
from strategies.records import SIGNAL_TOPIC
from strategies.records import LotChange
from strategies.records import RiskRecord
from strategies.records import SignalRecord
from strategies.records import encode_saved_lots
from strategies.records import exit_reason
from strategies.sessions import EXCHANGE_TZ
from strategies.sessions import Session
from strategies.sessions import session_for

CENT = Decimal("0.01")


class JournalConfig(ActorConfig, frozen=True):
    """
    mode: backtest, paper or live (one database per mode).
    database_url: SQLAlchemy URL (sqlite:///... or postgresql+psycopg2://...).
    database_schema: PostgreSQL schema to keep the tables in (empty: the default schema).
    records_dir: folder for trade_history, <strategy>.log files and daily_summary.json.
    log_format: csv or json (LOG_FORMAT).
    broker: written into every fill and trade_history row (e.g. simulated, ib).
    run_id: this run's id; empty: <mode>-<UTC time>-<random>.
    durable: sync every record to disk (survives a power loss, not only a process crash);
        default on for paper and live, off for backtests.
    """

    mode: str
    database_url: str
    records_dir: str
    database_schema: str = ""
    log_format: str = "csv"
    broker: str = "simulated"
    run_id: str = ""
    durable: bool | None = None

    def __post_init__(self) -> None:
        if self.mode not in RUN_MODES:
            raise ValueError(f"mode must be one of {', '.join(RUN_MODES)}, got {self.mode!r}")
        if self.log_format not in LOG_FORMATS:
            raise ValueError(f"log_format must be csv or json, got {self.log_format!r}")
        if not self.database_url:
            raise ValueError("database_url must not be empty")


def new_run_id(mode: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{mode}-{stamp}-{secrets.token_hex(3)}"


def iso(ts_ns: int) -> str:
    return pd.Timestamp(ts_ns, tz="UTC").isoformat()


class Journal(Actor):
    """Writes the trade records; places nothing, changes nothing."""

    def __init__(self, config: JournalConfig) -> None:
        super().__init__(config)
        self.run_id = config.run_id or new_run_id(config.mode)
        self.store: JournalStore | None = None
        self.lots = LotBook()
        self._durable = config.durable if config.durable is not None else config.mode != "backtest"
        self.history = TradeHistory(Path(config.records_dir), config.log_format, self._durable)
        self.logs = StrategyLogs(Path(config.records_dir), self._durable)
        self.summary_path = Path(config.records_dir) / "daily_summary.json"
        # Backtests start flat; paper and live carry open lots over restarts.
        self._carry = config.mode != "backtest"
        self._orders: dict[str, tuple[str, list[str]]] = {}  # client order id -> (ref, tags)
        self._seq = 0
        self._pending_session: Session | None = None
        self._venue: Venue | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def on_start(self) -> None:
        self.store = JournalStore(
            self.config.database_url, self.config.database_schema or None, self._durable,
        )
        self.store.start_run(self.run_id, self.config.mode, self.trader_id.value, self.config.broker)
        self._seq = self.store.next_seq(self.run_id) - 1
        self.lots = LotBook(self.store.open_lots(None if self._carry else self.run_id))
        self.msgbus.subscribe(topic="events.order.*", handler=self._on_order_event)
        self.msgbus.subscribe(topic="events.position.*", handler=self._on_position_event)
        self.msgbus.subscribe(topic="events.account.*", handler=self._on_account_state)
        self.msgbus.subscribe(topic="events.risk", handler=self._on_trading_state)
        self.msgbus.subscribe(topic=SIGNAL_TOPIC, handler=self._on_signal)
        self.msgbus.subscribe(topic=RISK_TOPIC, handler=self._on_risk)
        self.msgbus.subscribe(topic=LOTS_TOPIC, handler=self._on_lot_change)
        # Actors start before strategies: a strategy keeping its lots here finds them at start.
        self._put_saved_lots()
        self._schedule_summary(self.clock.utc_now().date() - dt.timedelta(days=1))

    def on_stop(self) -> None:
        for topic, handler in (
            ("events.order.*", self._on_order_event),
            ("events.position.*", self._on_position_event),
            ("events.account.*", self._on_account_state),
            ("events.risk", self._on_trading_state),
            (SIGNAL_TOPIC, self._on_signal),
            (RISK_TOPIC, self._on_risk),
            (LOTS_TOPIC, self._on_lot_change),
        ):
            self.msgbus.unsubscribe(topic=topic, handler=handler)
        session = self._pending_session
        if session is not None and self.clock.timestamp_ns() >= session.close.value:
            self.write_daily_summary(session)
        if self.store is not None:
            self.store.close()

    # -- order events -----------------------------------------------------------------------

    def _order_ref(self, event: OrderEvent) -> tuple[str, list[str]]:
        client_id = event.client_order_id.value
        known = self._orders.get(client_id)
        if known is not None:
            return known
        earlier = self.store.order_by_client_id(client_id)
        if earlier is not None and (self._carry or earlier["run_id"] == self.run_id):
            known = (earlier["order_ref"], [t for t in earlier["tags"].split(",") if t])
        else:
            # First sight of an order this run did not initialise (e.g. reported by the venue).
            known = self._new_order(event, [])
        self._orders[client_id] = known
        return known

    def _new_order(self, event: OrderEvent, tags: list[str]) -> tuple[str, list[str]]:
        self._seq += 1
        ref = f"{self.run_id}/{event.strategy_id.value}/{self._seq}"
        side = getattr(event, "side", None)
        if side is None:
            side = getattr(event, "order_side", None)
        order_type = getattr(event, "order_type", None)
        quantity = getattr(event, "quantity", None) or getattr(event, "last_qty", None)
        self.store.insert(
            "orders",
            order_ref=ref, run_id=self.run_id, seq=self._seq,
            client_order_id=event.client_order_id.value, strategy=event.strategy_id.value,
            instrument_id=event.instrument_id.value,
            side=order_side_to_str(side) if side is not None else "",
            order_type=order_type_to_str(order_type) if order_type is not None else "",
            quantity=quantity.as_decimal() if quantity is not None else Decimal(0),
            tags=",".join(tags), ts_ns=event.ts_event,
        )
        return ref, tags

    def _on_order_event(self, event: OrderEvent) -> None:
        if isinstance(event, OrderInitialized):
            tags = list(event.tags or [])
            ref, tags = self._new_order(event, tags)
            self._orders[event.client_order_id.value] = (ref, tags)
        ref, tags = self._order_ref(event)
        venue_order_id = getattr(event, "venue_order_id", None)
        detail = getattr(event, "reason", "") or ""
        self.store.insert(
            "order_events",
            order_ref=ref, run_id=self.run_id, ts_ns=event.ts_event,
            event_type=type(event).__name__, client_order_id=event.client_order_id.value,
            venue_order_id=venue_order_id.value if venue_order_id is not None else "",
            detail=str(detail),
        )
        self.logs.write(
            event.strategy_id.value, iso(event.ts_event),
            f"{type(event).__name__} {ref} {event.client_order_id} {event.instrument_id} {detail}".rstrip(),
        )
        if isinstance(event, OrderFilled):
            self._on_fill(fill_from_event(event, self.config.broker), ref, tags)
        elif isinstance(event, (OrderRejected, OrderDenied)):
            self._on_refused(event, ref)

    def _on_refused(self, event: OrderRejected | OrderDenied, ref: str) -> None:
        code = "DENIED" if isinstance(event, OrderDenied) else "REJECTED"
        if isinstance(event, OrderDenied):
            self.store.insert(
                "risk_events",
                run_id=self.run_id, ts_ns=event.ts_event, source="RiskEngine", kind="refusal",
                strategy=event.strategy_id.value, instrument_id=event.instrument_id.value,
                detail=f"{ref}: {event.reason}",
            )
        self.history.append(
            {
                "timestamp": iso(event.ts_event),
                "strategy_name": event.strategy_id.value,
                "ticker": event.instrument_id.symbol.value,
                "broker": self.config.broker,
                "mode": self.config.mode,
                "error_code": f"{code}: {event.reason}",
                "order_ref": ref,
            },
        )

    def _on_fill(self, fill: FillRecord, ref: str, tags: list[str]) -> None:
        if self._carry and self.store.fill_exists(fill):
            # A venue replays fills on reconnect; the first report was already recorded.
            self.log.info(f"Fill {fill.trade_id} of {fill.client_order_id} already journaled")
            return
        new_lot = sale = None
        signal_type = reason = ""
        if fill.side == "BUY":
            new_lot = Lot(f"{ref}#{fill.trade_id}", fill.strategy, fill.symbol, fill.ts_ns,
                          fill.price, fill.quantity, fill.commission)
            self.lots.buy(new_lot)
        else:
            try:
                sale = self.lots.sell(fill.strategy, fill.symbol, fill.quantity, fill.price,
                                      fill.commission, f"fill {fill.trade_id} ({ref})")
            except LotError:
                # The fill happened: keep it, then stop loudly (no lot to match it against).
                self.store.record_fill(self.run_id, ref, fill, None, None, "", "")
                raise
            reason = exit_reason(tags)
            entry_ref = sale.closings[0].lot_id.split("#")[0]
            entry = next((t for r, t in self._orders.values() if r == entry_ref), None)
            signal_type = ",".join(entry) if entry is not None else self.store.order_tags(entry_ref)
        self.store.record_fill(self.run_id, ref, fill, new_lot, sale, signal_type, reason)
        self.history.append(
            {
                "timestamp": iso(fill.ts_ns),
                "strategy_name": fill.strategy,
                "ticker": fill.symbol,
                "side": fill.side,
                "size": str(fill.quantity),
                "entry_price": str(fill.price if sale is None else sale.entry_price),
                "exit_price": "" if sale is None else str(fill.price),
                "PnL": "" if sale is None else str(sale.net_pnl),
                "charges": "" if sale is None else str(sale.charges),
                "commission": str(fill.commission),
                "broker": fill.broker,
                "mode": self.config.mode,
                "error_code": "",
                "order_ref": ref,
            },
        )
        what = f"FILL {fill.side} {fill.quantity} {fill.symbol} @ {fill.price} commission {fill.commission}"
        if sale is not None:
            what += f" net P&L {sale.net_pnl} ({reason})"
        self.logs.write(fill.strategy, iso(fill.ts_ns), f"{what} {ref}")

    # -- positions, accounts, signals, risk -------------------------------------------------

    def _on_position_event(self, event: PositionEvent) -> None:
        self.store.insert(
            "position_events",
            run_id=self.run_id, ts_ns=event.ts_event, event_type=type(event).__name__,
            position_id=event.position_id.value, strategy=event.strategy_id.value,
            instrument_id=event.instrument_id.value,
            signed_qty=Decimal(str(event.signed_qty)),
            avg_px_open=Decimal(str(event.avg_px_open)),
            realized_pnl=money_decimal(event.realized_pnl) if event.realized_pnl is not None else Decimal(0),
        )

    def _on_account_state(self, event: AccountState) -> None:
        self._venue = Venue(event.account_id.get_issuer())
        for balance in event.balances:
            self.store.insert(
                "equity_snapshots",
                run_id=self.run_id, ts_ns=event.ts_event, account_id=event.account_id.value,
                currency=balance.currency.code, total=money_decimal(balance.total),
                locked=money_decimal(balance.locked), free=money_decimal(balance.free),
            )

    def _on_signal(self, record: SignalRecord) -> None:
        self.store.insert(
            "signals",
            run_id=self.run_id, ts_ns=record.ts_ns, strategy=record.strategy,
            instrument_id=record.instrument_id, signal_type=record.signal_type,
            indicators=indicators_json(record.indicators), note=record.note,
        )
        self.logs.write(
            record.strategy, iso(record.ts_ns),
            f"SIGNAL {record.signal_type} {record.instrument_id} {indicators_json(record.indicators)}",
        )

    def _on_risk(self, record: RiskRecord) -> None:
        self.store.insert(
            "risk_events",
            run_id=self.run_id, ts_ns=record.ts_ns, source=record.source, kind=record.kind,
            strategy=record.strategy, instrument_id=record.instrument_id, detail=record.detail,
        )
        if record.strategy:
            self.logs.write(record.strategy, iso(record.ts_ns), f"RISK {record.kind} {record.detail}")

    def _on_lot_change(self, record: LotChange) -> None:
        self.store.record_lot_change(self.run_id, record)
        # Kept current, so a strategy stopped and started again in this process reloads all.
        self._put_saved_lots()

    def _put_saved_lots(self) -> None:
        self.cache.add(SAVED_LOTS_KEY, encode_saved_lots(self.store.saved_lots()))

    def _on_trading_state(self, event: Any) -> None:
        state = trading_state_to_str(event.state)
        kind = {"HALTED": "halt", "ACTIVE": "resume", "REDUCING": "limit"}[state]
        self.store.insert(
            "risk_events",
            run_id=self.run_id, ts_ns=event.ts_event, source="RiskEngine", kind=kind,
            strategy="", instrument_id="", detail=f"trading state {state}",
        )

    # -- daily summary ----------------------------------------------------------------------

    def _schedule_summary(self, after: dt.date) -> None:
        day = after + dt.timedelta(days=1)
        for _ in range(15):  # the longest NYSE closure is far shorter than two weeks
            session = session_for(day)
            if session is not None and session.close.value > self.clock.timestamp_ns():
                self._pending_session = session
                self.clock.set_time_alert(
                    f"journal-summary-{session.date}", session.close.to_pydatetime(),
                    self._on_session_close,
                )
                return
            day += dt.timedelta(days=1)
        raise RuntimeError(f"no NYSE session within two weeks after {after}")

    def _on_session_close(self, event: TimeEvent) -> None:
        session = self._pending_session
        self.write_daily_summary(session)
        self._schedule_summary(session.date)

    def write_daily_summary(self, session: Session) -> dict[str, Any]:
        """Equity, P&L by strategy, trades, win rate, fees, open positions, risk events."""
        day_start = pd.Timestamp(dt.datetime.combine(session.date, dt.time(0), EXCHANGE_TZ)).value
        day_end = session.close.value
        run = None if self._carry else self.run_id
        trades = self.store.rows_between("trades", "exit_ns", day_start, day_end, run)
        fills = self.store.rows_between("fills", "ts_ns", day_start, day_end, run)
        risks = self.store.rows_between("risk_events", "ts_ns", day_start, day_end, run)
        by_strategy: dict[str, Decimal] = {}
        for trade in trades:
            by_strategy[trade["strategy"]] = by_strategy.get(trade["strategy"], Decimal(0)) + trade["net_pnl"]
        wins = sum(1 for t in trades if t["net_pnl"] > 0)
        cash = self.store.last_equity(run)
        equity = account_equity(self.portfolio, self.cache, self._venue) if self._venue is not None else None
        summary = {
            "session": session.date.isoformat(),
            "close_utc": session.close.isoformat(),
            "run_id": self.run_id,
            "mode": self.config.mode,
            "equity": str(equity.quantize(CENT)) if equity is not None else None,
            "cash": str(cash["total"]) if cash else None,
            "pnl_by_strategy": {k: str(v) for k, v in sorted(by_strategy.items())},
            "pnl": str(sum(by_strategy.values(), Decimal(0))),
            "trades": len(trades),
            "win_rate": str((Decimal(wins) / len(trades)).quantize(Decimal("0.0001"))) if trades else None,
            "fees": str(sum((f["commission"] for f in fills), Decimal(0))),
            "open_positions": {k: str(v) for k, v in sorted(self.lots.positions().items())},
            "risk_events": [
                {"time": iso(r["ts_ns"]), "kind": r["kind"], "source": r["source"], "detail": r["detail"]}
                for r in risks
            ],
        }
        write_daily_summary(self.summary_path, session.date.isoformat(), summary)
        self._pending_session = None
        return summary
