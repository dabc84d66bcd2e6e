"""
The journal: records every order event, fill, position change, account state, signal and
risk event as it happens, in backtest, paper and live alike.

It listens on the message bus only (``events.order.*``, ``events.position.*``,
``events.account.*``, ``events.risk`` and the ``journal.signal`` / ``journal.risk`` /
``journal.lots`` topics of strategies/records.py), so strategies never know it exists. Its
handlers turn each event into plain values and hand the writes to its writer thread
(actors/record_writer.py), which owns the database: whichever thread publishes an event, the
write happens on that one thread, in order, each record committed before the next; the flat
files (trade_history, per-strategy logs) are appended after the database commit. The order
path never waits for a durable write. What a handler needs to know (order references, the
open lots, which fills are already recorded) is kept in memory, loaded once at start. It
subscribes ahead of strategies (RECORDS_PRIORITY), so a strategy whose handler raises cannot
keep an event from the journal. At each NYSE session's close, on the node's clock (the data's
time in a backtest or a replay), it writes that session's daily summary.

It also keeps the lot books strategies persist through it (core RSI, live): at start it puts
every saved lot into the Cache under SAVED_LOTS_KEY, an empty set included, and rewrites that
entry after each change it records.

Order references: ``<run id>/<strategy>/<sequence>``. The run id is new on every start, the
sequence counts the orders this run initialised, and the broker's client and venue ids are
recorded beside it, so a reference is unique across restarts and brokers (IB's per-session
order ids are never relied on alone).
"""

from __future__ import annotations

import dataclasses
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

from actors.error_monitor import REPORT_ENDPOINT
from actors.error_monitor import ErrorReport
from actors.fills import FillRecord
from actors.fills import fill_from_event
from actors.fills import money_decimal
from actors.journal_store import RUN_MODES
from actors.journal_store import JournalStore
from actors.journal_store import indicators_json
from actors.lots import Lot
from actors.lots import LotBook
from actors.lots import LotError
from actors.record_writer import RECORDS_PRIORITY
from actors.record_writer import Description
from actors.record_writer import RecordWriter
from actors.trade_files import LOG_FORMATS
from actors.trade_files import StrategyLogs
from actors.trade_files import TradeHistory
from actors.trade_files import write_daily_summary
from strategies.account import account_equity
from strategies.records import LOTS_TOPIC
from strategies.records import RISK_TOPIC
from strategies.records import SAVED_LOTS_KEY
from strategies.records import SIGNAL_TOPIC
from strategies.records import CostBasisRecord
from strategies.records import LotChange
from strategies.records import LotRecord
from strategies.records import RiskRecord
from strategies.records import SavedLots
from strategies.records import SignalRecord
from strategies.records import encode_saved_lots
from strategies.records import exit_reason
from strategies.sessions import EXCHANGE_TZ
from strategies.sessions import Session
from strategies.sessions import session_for

CENT = Decimal("0.01")
FillKey = tuple[str, str, str, int]


class JournalWriteError(RuntimeError):
    """Records the journal could not write (reported, or raised at stop without a monitor)."""


def fill_key(fill: FillRecord) -> FillKey:
    """What a venue replaying an execution repeats: trade id, instrument, order and time."""
    return (fill.trade_id, fill.instrument_id, fill.client_order_id, fill.ts_ns)


class SavedLotBook:
    """The lot books as written (core_lots upserted by strategy and lot, sales and reductions
    appended), kept in memory so the Cache entry is refreshed without reading the database."""

    def __init__(self, saved: SavedLots) -> None:
        self._lots = {(r.strategy, r.lot_id): r for r in saved.lots}
        self._sales = list(saved.sales)
        self._reductions = list(saved.reductions)

    def apply(self, record: LotChange) -> None:
        if isinstance(record, LotRecord):
            known = self._lots.get((record.strategy, record.lot_id))
            if known is not None:  # an update keeps where and when the lot opened
                record = LotRecord(record.strategy, known.instrument_id, record.lot_id, record.kind,
                                   known.opened_ns, record.quantity, record.price, record.commission)
            self._lots[(record.strategy, record.lot_id)] = record
        elif isinstance(record, CostBasisRecord):
            self._reductions.append(record)
        else:
            self._sales.append(record)

    def saved(self) -> SavedLots:
        return SavedLots(
            tuple(sorted(self._lots.values(), key=lambda r: (r.opened_ns, r.lot_id))),
            tuple(sorted(self._sales, key=lambda r: (r.strategy, r.lot_id, r.seq))),
            tuple(self._reductions),
        )


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
    retry_limit: retries of a write that failed transiently (API_RETRY_LIMIT).
    """

    mode: str
    database_url: str
    records_dir: str
    database_schema: str = ""
    log_format: str = "csv"
    broker: str = "simulated"
    run_id: str = ""
    durable: bool | None = None
    retry_limit: int = 3

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
        self.writer: RecordWriter[JournalStore] = RecordWriter("journal", config.retry_limit)
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
        self._fill_keys: set[FillKey] = set()
        self._saved = SavedLotBook(SavedLots())
        self._unreported: list[str] = []
        self.summaries_written: list[dict[str, Any]] = []

    # -- lifecycle --------------------------------------------------------------------------

    def _subscriptions(self) -> tuple[tuple[str, Any], ...]:
        return (
            ("events.order.*", self._on_order_event),
            ("events.position.*", self._on_position_event),
            ("events.account.*", self._on_account_state),
            ("events.risk", self._on_trading_state),
            (SIGNAL_TOPIC, self._on_signal),
            (RISK_TOPIC, self._on_risk),
            (LOTS_TOPIC, self._on_lot_change),
        )

    def on_start(self) -> None:
        config = self.config
        self.writer.start(
            lambda: JournalStore(config.database_url, config.database_schema or None, self._durable),
            JournalStore.close,
        )
        carry = self._carry

        def load(store: JournalStore) -> tuple[int, list[Lot], SavedLots, set[FillKey]]:
            store.start_run(self.run_id, config.mode, self.trader_id.value, config.broker)
            keys = {(r["trade_id"], r["instrument_id"], r["client_order_id"], r["ts_ns"])
                    for r in store.rows("fills")} if carry else set()
            return (store.next_seq(self.run_id) - 1, store.open_lots(None if carry else self.run_id),
                    store.saved_lots(), keys)

        self._seq, open_lots, saved, self._fill_keys = self.writer.call(load, "start-up")
        self.lots = LotBook(open_lots)
        self._saved = SavedLotBook(saved)
        for topic, handler in self._subscriptions():
            self.msgbus.subscribe(topic=topic, handler=handler, priority=RECORDS_PRIORITY)
        accounts = self.cache.accounts()
        if len(accounts) == 1:  # marked equity for the summaries from the first session on
            self._venue = Venue(accounts[0].id.get_issuer())
        # Actors start before strategies: a strategy keeping its lots here finds them at start.
        self._put_saved_lots()
        self._schedule_summary(self.clock.utc_now().date() - dt.timedelta(days=1))

    def on_stop(self) -> None:
        for topic, handler in self._subscriptions():
            self.msgbus.unsubscribe(topic=topic, handler=handler)
        session = self._pending_session
        if session is not None and self.clock.timestamp_ns() >= session.close.value:
            self.write_daily_summary(session)
        self.writer.stop()
        self._report_failures()
        if self._unreported:
            raise JournalWriteError("; ".join(self._unreported))

    # -- the writer -------------------------------------------------------------------------

    def _write(self, what: Description, run: Any) -> None:
        self._report_failures()
        self.writer.submit(run, what)

    def _report_failures(self) -> None:
        """Writes that failed for good: critical errors for the monitor (kept to raise at
        stop where no monitor runs, as in a bare backtest)."""
        for failure in self.writer.take_failures():
            context = {"component": str(self.id), "record": failure.what}
            if self._monitor_running():
                self.msgbus.send(REPORT_ENDPOINT, ErrorReport(failure.error, context, failure.attempts))
            else:
                self.log.error(f"journal write failed: {failure.what}: {failure.error!r}")
                self._unreported.append(f"{failure.what}: {type(failure.error).__name__}: {failure.error}")

    # -- order events -----------------------------------------------------------------------

    def _order_ref(self, event: OrderEvent) -> tuple[str, list[str]]:
        client_id = event.client_order_id.value
        known = self._orders.get(client_id)
        if known is not None:
            return known
        earlier = self.writer.call(lambda store: store.order_by_client_id(client_id))
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
        row = dict(
            order_ref=ref, run_id=self.run_id, seq=self._seq,
            client_order_id=event.client_order_id.value, strategy=event.strategy_id.value,
            instrument_id=event.instrument_id.value,
            side=order_side_to_str(side) if side is not None else "",
            order_type=order_type_to_str(order_type) if order_type is not None else "",
            quantity=quantity.as_decimal() if quantity is not None else Decimal(0),
            tags=",".join(tags), ts_ns=event.ts_event,
        )
        self._insert("orders", row)
        return ref, tags

    def _insert(self, table: str, row: dict[str, Any]) -> None:
        self._write(lambda: f"{table} row {row}", lambda store: store.insert(table, **row))

    def _log_line(self, strategy: str, ts_ns: int, line: str) -> None:
        self._write(f"{strategy}.log line", lambda _store: self.logs.write(strategy, iso(ts_ns), line))

    def _history_row(self, row: dict[str, str]) -> None:
        self._write(lambda: f"trade_history row {row}", lambda _store: self.history.append(row))

    def _on_order_event(self, event: OrderEvent) -> None:
        if isinstance(event, OrderInitialized):
            tags = list(event.tags or [])
            ref, tags = self._new_order(event, tags)
            self._orders[event.client_order_id.value] = (ref, tags)
        ref, tags = self._order_ref(event)
        venue_order_id = getattr(event, "venue_order_id", None)
        detail = getattr(event, "reason", "") or ""
        self._insert("order_events", dict(
            order_ref=ref, run_id=self.run_id, ts_ns=event.ts_event,
            event_type=type(event).__name__, client_order_id=event.client_order_id.value,
            venue_order_id=venue_order_id.value if venue_order_id is not None else "",
            detail=str(detail),
        ))
        self._log_line(
            event.strategy_id.value, event.ts_event,
            f"{type(event).__name__} {ref} {event.client_order_id} {event.instrument_id} {detail}".rstrip(),
        )
        if isinstance(event, OrderFilled):
            self._on_fill(fill_from_event(event, self.config.broker), ref, tags)
        elif isinstance(event, (OrderRejected, OrderDenied)):
            self._on_refused(event, ref)

    def _on_refused(self, event: OrderRejected | OrderDenied, ref: str) -> None:
        code = "DENIED" if isinstance(event, OrderDenied) else "REJECTED"
        if isinstance(event, OrderDenied):
            self._insert("risk_events", dict(
                run_id=self.run_id, ts_ns=event.ts_event, source="RiskEngine", kind="refusal",
                strategy=event.strategy_id.value, instrument_id=event.instrument_id.value,
                detail=f"{ref}: {event.reason}",
            ))
        self._history_row(
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
        if self._carry:
            if fill_key(fill) in self._fill_keys:
                # A venue replays fills on reconnect; the first report was already recorded.
                self.log.info(f"Fill {fill.trade_id} of {fill.client_order_id} already journaled")
                return
            self._fill_keys.add(fill_key(fill))
        new_lot = sale = None
        signal_type = reason = ""
        if fill.side == "BUY":
            new_lot = Lot(f"{ref}#{fill.trade_id}", fill.strategy, fill.symbol, fill.ts_ns,
                          fill.price, fill.quantity, fill.commission)
            # The book's lot changes as it sells; the writer gets the lot as bought.
            self.lots.buy(dataclasses.replace(new_lot))
        else:
            try:
                sale = self.lots.sell(fill.strategy, fill.symbol, fill.quantity, fill.price,
                                      fill.commission, f"fill {fill.trade_id} ({ref})")
            except LotError as exc:
                # The fill happened: keep it, and report loudly (no lot to match it against).
                self._write(f"fill {fill.trade_id}", lambda store: store.record_fill(
                    self.run_id, ref, fill, None, None, "", ""))
                self._report_unmatched_sale(fill, exc)
                return
            reason = exit_reason(tags)
            entry_ref = sale.closings[0].lot_id.split("#")[0]
            entry = next((t for r, t in self._orders.values() if r == entry_ref), None)
            signal_type = ",".join(entry) if entry is not None else self.writer.call(
                lambda store: store.order_tags(entry_ref))
        self._write(f"fill {fill.trade_id} of {ref}", lambda store: store.record_fill(
            self.run_id, ref, fill, new_lot, sale, signal_type, reason))
        self._history_row(
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
        self._log_line(fill.strategy, fill.ts_ns, f"{what} {ref}")

    def _report_unmatched_sale(self, fill: FillRecord, exc: LotError) -> None:
        context = {"component": str(self.id), "client_order_id": fill.client_order_id,
                   "instrument_id": fill.instrument_id, "strategy_id": fill.strategy}
        if self._monitor_running():
            self.msgbus.send(REPORT_ENDPOINT, ErrorReport(exc, context))
        else:  # a bare backtest: stop loudly, as before
            raise exc

    def _monitor_running(self) -> bool:
        return self.msgbus is not None and REPORT_ENDPOINT in self.msgbus.endpoints()

    # -- positions, accounts, signals, risk -------------------------------------------------

    def _on_position_event(self, event: PositionEvent) -> None:
        self._insert("position_events", dict(
            run_id=self.run_id, ts_ns=event.ts_event, event_type=type(event).__name__,
            position_id=event.position_id.value, strategy=event.strategy_id.value,
            instrument_id=event.instrument_id.value,
            signed_qty=Decimal(str(event.signed_qty)),
            avg_px_open=Decimal(str(event.avg_px_open)),
            realized_pnl=money_decimal(event.realized_pnl) if event.realized_pnl is not None else Decimal(0),
        ))

    def _on_account_state(self, event: AccountState) -> None:
        self._venue = Venue(event.account_id.get_issuer())
        for balance in event.balances:
            self._insert("equity_snapshots", dict(
                run_id=self.run_id, ts_ns=event.ts_event, account_id=event.account_id.value,
                currency=balance.currency.code, total=money_decimal(balance.total),
                locked=money_decimal(balance.locked), free=money_decimal(balance.free),
            ))

    def _on_signal(self, record: SignalRecord) -> None:
        self._insert("signals", dict(
            run_id=self.run_id, ts_ns=record.ts_ns, strategy=record.strategy,
            instrument_id=record.instrument_id, signal_type=record.signal_type,
            indicators=indicators_json(record.indicators), note=record.note,
        ))
        self._log_line(
            record.strategy, record.ts_ns,
            f"SIGNAL {record.signal_type} {record.instrument_id} {indicators_json(record.indicators)}",
        )

    def _on_risk(self, record: RiskRecord) -> None:
        self._insert("risk_events", dict(
            run_id=self.run_id, ts_ns=record.ts_ns, source=record.source, kind=record.kind,
            strategy=record.strategy, instrument_id=record.instrument_id, detail=record.detail,
        ))
        if record.strategy:
            self._log_line(record.strategy, record.ts_ns, f"RISK {record.kind} {record.detail}")

    def _on_lot_change(self, record: LotChange) -> None:
        self._write(lambda: f"lot change {record}", lambda store: store.record_lot_change(self.run_id, record))
        # Kept current, so a strategy stopped and started again in this process reloads all.
        self._saved.apply(record)
        self._put_saved_lots()

    def _put_saved_lots(self) -> None:
        self.cache.add(SAVED_LOTS_KEY, encode_saved_lots(self._saved.saved()))

    def _on_trading_state(self, event: Any) -> None:
        state = trading_state_to_str(event.state)
        kind = {"HALTED": "halt", "ACTIVE": "resume", "REDUCING": "limit"}[state]
        self._insert("risk_events", dict(
            run_id=self.run_id, ts_ns=event.ts_event, source="RiskEngine", kind=kind,
            strategy="", instrument_id="", detail=f"trading state {state}",
        ))

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

        def read(store: JournalStore) -> tuple[list, list, list, dict | None]:
            return (store.rows_between("trades", "exit_ns", day_start, day_end, run),
                    store.rows_between("fills", "ts_ns", day_start, day_end, run),
                    store.rows_between("risk_events", "ts_ns", day_start, day_end, run),
                    store.last_equity(run))

        trades, fills, risks, cash = self.writer.call(read, f"summary of {session.date}")
        by_strategy: dict[str, Decimal] = {}
        for trade in trades:
            by_strategy[trade["strategy"]] = by_strategy.get(trade["strategy"], Decimal(0)) + trade["net_pnl"]
        wins = sum(1 for t in trades if t["net_pnl"] > 0)
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
        self.writer.call(
            lambda _store: write_daily_summary(self.summary_path, session.date.isoformat(), summary),
            f"daily_summary.json entry {session.date}",
        )
        self.summaries_written.append(summary)
        self._pending_session = None
        return summary
