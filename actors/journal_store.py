"""
The journal database: schema, migrations and the reads and writes the journal makes.

SQLAlchemy Core (1.4, future style). SQLite by default (WAL, one file per run mode);
PostgreSQL by URL, optionally inside a schema. Every write is its own committed transaction,
so a crash loses at most the record being written. Rows are only ever inserted: an order's
state changes are rows of ``order_events``, a lot's sales are rows of ``lot_closings``; a
restart appends under a new run id.

Money and quantities are stored as decimal text and read back as Decimal, identical on both
backends (SQLite has no exact numeric type).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Column
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import BigInteger
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool
from sqlalchemy.types import TypeDecorator

from actors.fills import FillRecord
from actors.lots import Lot
from actors.lots import Sale
from strategies.records import CostBasisRecord
from strategies.records import LotChange
from strategies.records import LotRecord
from strategies.records import LotSaleRecord
from strategies.records import SavedLots

RUN_MODES = ("backtest", "paper", "live")
SCHEMA_VERSION = 2
# The tables of schema version 2: the lot book a strategy keeps (core RSI), by strategy id.
CORE_LOT_TABLES = ("core_lots", "core_lot_sales", "cost_basis_reductions")


class JournalError(RuntimeError):
    """The journal database cannot be used as asked (newer schema, bad URL, bad mode)."""


class DecimalText(TypeDecorator):
    """Decimal stored as its exact text."""

    impl = String(48)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"journal money and quantities must be Decimal, got {type(value).__name__}")
        return str(value)

    def process_result_value(self, value: str | None, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


def default_url(mode: str, directory: Path) -> str:
    """One SQLite file per run mode: <directory>/journal_<mode>.sqlite."""
    if mode not in RUN_MODES:
        raise JournalError(f"mode must be one of {', '.join(RUN_MODES)}, got {mode!r}")
    return f"sqlite:///{(directory / f'journal_{mode}.sqlite').resolve()}"


def _tables(metadata: MetaData) -> dict[str, Table]:
    t: dict[str, Table] = {}
    t["schema_version"] = Table(
        "journal_schema_version", metadata,
        Column("version", Integer, primary_key=True),
        Column("applied_at", String(40), nullable=False),
    )
    t["runs"] = Table(
        "runs", metadata,
        Column("run_id", String(80), primary_key=True),
        Column("mode", String(16), nullable=False),
        Column("trader_id", String(80), nullable=False),
        Column("broker", String(40), nullable=False),
        Column("started_at", String(40), nullable=False),
    )
    t["orders"] = Table(
        "orders", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        # run id / strategy / sequence: unique across restarts and brokers.
        Column("order_ref", String(200), nullable=False, unique=True),
        Column("run_id", String(80), ForeignKey("runs.run_id"), nullable=False),
        Column("seq", Integer, nullable=False),
        Column("client_order_id", String(80), nullable=False),
        Column("strategy", String(120), nullable=False),
        Column("instrument_id", String(60), nullable=False),
        Column("side", String(8), nullable=False),
        Column("order_type", String(24), nullable=False),
        Column("quantity", DecimalText, nullable=False),
        Column("tags", Text, nullable=False),
        Column("ts_ns", BigInteger, nullable=False),
        UniqueConstraint("run_id", "client_order_id", name="uq_orders_run_client"),
    )
    t["order_events"] = Table(
        "order_events", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("order_ref", String(200), nullable=False),
        Column("run_id", String(80), nullable=False),
        Column("ts_ns", BigInteger, nullable=False),
        Column("event_type", String(40), nullable=False),
        Column("client_order_id", String(80), nullable=False),
        Column("venue_order_id", String(80), nullable=False),
        Column("detail", Text, nullable=False),
        Index("ix_order_events_ref", "order_ref"),
    )
    t["fills"] = Table(
        "fills", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(80), nullable=False),
        Column("order_ref", String(200), nullable=False),
        Column("ts_ns", BigInteger, nullable=False),
        Column("strategy", String(120), nullable=False),
        Column("instrument_id", String(60), nullable=False),
        Column("side", String(8), nullable=False),
        Column("quantity", DecimalText, nullable=False),
        Column("price", DecimalText, nullable=False),
        Column("commission", DecimalText, nullable=False),
        Column("currency", String(8), nullable=False),
        Column("client_order_id", String(80), nullable=False),
        Column("venue_order_id", String(80), nullable=False),
        Column("trade_id", String(80), nullable=False),
        Column("liquidity_side", String(16), nullable=False),
        Column("broker", String(40), nullable=False),
        UniqueConstraint("run_id", "client_order_id", "trade_id", name="uq_fills_run_trade"),
        Index("ix_fills_trade", "trade_id", "instrument_id"),
    )
    t["lots"] = Table(
        "lots", metadata,
        Column("lot_id", String(240), primary_key=True),
        Column("run_id", String(80), nullable=False),
        Column("fill_id", Integer, ForeignKey("fills.id"), nullable=False),
        Column("strategy", String(120), nullable=False),
        Column("symbol", String(40), nullable=False),
        Column("opened_ns", BigInteger, nullable=False),
        Column("quantity", DecimalText, nullable=False),
        Column("price", DecimalText, nullable=False),
        Column("commission", DecimalText, nullable=False),
    )
    t["lot_closings"] = Table(
        "lot_closings", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("lot_id", String(240), ForeignKey("lots.lot_id"), nullable=False),
        Column("fill_id", Integer, ForeignKey("fills.id"), nullable=False),
        Column("quantity", DecimalText, nullable=False),
        Column("commission", DecimalText, nullable=False),
    )
    t["trades"] = Table(
        "trades", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(80), nullable=False),
        Column("exit_fill_id", Integer, ForeignKey("fills.id"), nullable=False, unique=True),
        Column("strategy", String(120), nullable=False),
        Column("symbol", String(40), nullable=False),
        Column("side", String(8), nullable=False),
        Column("quantity", DecimalText, nullable=False),
        Column("entry_ns", BigInteger, nullable=False),
        Column("exit_ns", BigInteger, nullable=False),
        Column("entry_price", DecimalText, nullable=False),
        Column("exit_price", DecimalText, nullable=False),
        Column("cost", DecimalText, nullable=False),
        Column("gross_pnl", DecimalText, nullable=False),
        Column("charges", DecimalText, nullable=False),
        Column("net_pnl", DecimalText, nullable=False),
        Column("net_pnl_pct", DecimalText, nullable=False),
        Column("duration_s", BigInteger, nullable=False),
        Column("signal_type", String(80), nullable=False),
        Column("exit_reason", String(40), nullable=False),
    )
    t["signals"] = Table(
        "signals", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(80), nullable=False),
        Column("ts_ns", BigInteger, nullable=False),
        Column("strategy", String(120), nullable=False),
        Column("instrument_id", String(60), nullable=False),
        Column("signal_type", String(80), nullable=False),
        Column("indicators", Text, nullable=False),
        Column("note", Text, nullable=False),
    )
    t["risk_events"] = Table(
        "risk_events", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(80), nullable=False),
        Column("ts_ns", BigInteger, nullable=False),
        Column("source", String(120), nullable=False),
        Column("kind", String(40), nullable=False),
        Column("strategy", String(120), nullable=False),
        Column("instrument_id", String(60), nullable=False),
        Column("detail", Text, nullable=False),
    )
    t["position_events"] = Table(
        "position_events", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(80), nullable=False),
        Column("ts_ns", BigInteger, nullable=False),
        Column("event_type", String(40), nullable=False),
        Column("position_id", String(120), nullable=False),
        Column("strategy", String(120), nullable=False),
        Column("instrument_id", String(60), nullable=False),
        Column("signed_qty", DecimalText, nullable=False),
        Column("avg_px_open", DecimalText, nullable=False),
        Column("realized_pnl", DecimalText, nullable=False),
    )
    t["equity_snapshots"] = Table(
        "equity_snapshots", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(80), nullable=False),
        Column("ts_ns", BigInteger, nullable=False),
        Column("account_id", String(80), nullable=False),
        Column("currency", String(8), nullable=False),
        Column("total", DecimalText, nullable=False),
        Column("locked", DecimalText, nullable=False),
        Column("free", DecimalText, nullable=False),
    )
    # A strategy's own lot book (strategies/lots.py), written as it changes. Unlike the FIFO
    # lots above these carry a kind that changes, so a lot row is updated in place (the only
    # rows that are); sales and reductions are only inserted.
    t["core_lots"] = Table(
        "core_lots", metadata,
        Column("strategy", String(120), primary_key=True),
        Column("instrument_id", String(60), nullable=False),
        Column("lot_id", String(200), primary_key=True),
        Column("run_id", String(80), nullable=False),  # the run that last changed it
        Column("kind", String(20), nullable=False),
        Column("opened_ns", BigInteger, nullable=False),
        Column("quantity", DecimalText, nullable=False),
        Column("price", DecimalText, nullable=False),
        Column("commission", DecimalText, nullable=False),
    )
    t["core_lot_sales"] = Table(
        "core_lot_sales", metadata,
        Column("strategy", String(120), primary_key=True),
        Column("lot_id", String(200), primary_key=True),
        Column("seq", Integer, primary_key=True),
        Column("instrument_id", String(60), nullable=False),
        Column("run_id", String(80), nullable=False),
        Column("ts_ns", BigInteger, nullable=False),
        Column("quantity", DecimalText, nullable=False),
        Column("price", DecimalText, nullable=False),
        Column("commission", DecimalText, nullable=False),
        Column("buy_commission", DecimalText, nullable=False),
        Column("kind", String(20), nullable=False),
        Column("reason", String(80), nullable=False),
        Column("cost_price", DecimalText, nullable=False),
    )
    t["cost_basis_reductions"] = Table(
        "cost_basis_reductions", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("strategy", String(120), nullable=False),
        Column("instrument_id", String(60), nullable=False),
        Column("run_id", String(80), nullable=False),
        Column("ts_ns", BigInteger, nullable=False),
        Column("amount", DecimalText, nullable=False),
        Column("source_lot", String(200), nullable=False),
    )
    return t


def _migrate_v1(conn: Connection, tables: dict[str, Table]) -> None:
    for name, table in tables.items():
        if name != "schema_version" and name not in CORE_LOT_TABLES:
            table.create(conn, checkfirst=True)


def _migrate_v2(conn: Connection, tables: dict[str, Table]) -> None:
    for name in CORE_LOT_TABLES:
        tables[name].create(conn, checkfirst=True)


# version -> step. A new schema version appends a step here; applied steps never change.
MIGRATIONS: dict[int, Callable[[Connection, dict[str, Table]], None]] = {
    1: _migrate_v1,
    2: _migrate_v2,
}


def _enable_wal(engine: Engine, durable: bool) -> None:
    # WAL keeps every committed transaction through a process crash at either level;
    # FULL also syncs each commit to disk, so a power loss loses nothing committed either.
    synchronous = "FULL" if durable else "NORMAL"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


class JournalStore:
    """An open journal database, migrated to SCHEMA_VERSION."""

    def __init__(self, url: str, schema: str | None = None, durable: bool = True) -> None:
        """durable=False (backtests): SQLite commits survive a process crash, not a power loss."""
        self.url = url
        # SQLAlchemy 1.4 opens a new SQLite connection per use (NullPool) unless told
        # otherwise; a pooled connection makes each committed record a few milliseconds.
        options: dict[str, Any] = {"poolclass": QueuePool} if url.startswith("sqlite") else {}
        try:
            self.engine = create_engine(url, future=True, **options)
        except Exception as exc:  # the URL names the problem; re-raise with the setting name
            raise JournalError(f"journal database_url {url!r}: {exc}") from exc
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.is_sqlite:
            if schema:
                raise JournalError("journal schema: SQLite databases have no schemas; leave it empty")
            database = self.engine.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            _enable_wal(self.engine, durable)
        self.schema = schema
        self.metadata = MetaData(schema=schema)
        self.t = _tables(self.metadata)
        self.migrate()

    def migrate(self) -> int:
        with self.engine.begin() as conn:
            if self.schema:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            self.t["schema_version"].create(conn, checkfirst=True)
            current = conn.execute(select(func.max(self.t["schema_version"].c.version))).scalar() or 0
            if current > SCHEMA_VERSION:
                raise JournalError(
                    f"journal {self.url}: schema version {current} is newer than this code "
                    f"({SCHEMA_VERSION}); upgrade the code, never downgrade a journal",
                )
            for version in sorted(v for v in MIGRATIONS if v > current):
                MIGRATIONS[version](conn, self.t)
                conn.execute(
                    self.t["schema_version"].insert().values(
                        version=version, applied_at=dt.datetime.now(dt.UTC).isoformat(),
                    ),
                )
            return max(current, SCHEMA_VERSION)

    def close(self) -> None:
        self.engine.dispose()

    # -- writes: one committed transaction each ---------------------------------------------

    def insert(self, table: str, **values: Any) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(self.t[table].insert().values(**values))
            key = result.inserted_primary_key
            return key[0] if key else 0

    def start_run(self, run_id: str, mode: str, trader_id: str, broker: str) -> None:
        if mode not in RUN_MODES:
            raise JournalError(f"mode must be one of {', '.join(RUN_MODES)}, got {mode!r}")
        known = [r for r in self.rows("runs") if r["run_id"] == run_id]
        if known:
            if known[0]["mode"] != mode:
                raise JournalError(f"run {run_id} was recorded as {known[0]['mode']}, not {mode}")
            return  # the same run started again in one process (stop, then start)
        self.insert(
            "runs", run_id=run_id, mode=mode, trader_id=trader_id, broker=broker,
            started_at=dt.datetime.now(dt.UTC).isoformat(),
        )

    def record_fill(
        self,
        run_id: str,
        order_ref: str,
        fill: FillRecord,
        new_lot: Lot | None,
        sale: Sale | None,
        signal_type: str,
        exit_reason: str,
    ) -> int:
        """The fill, its lot or lot closings and its round trip, in one transaction."""
        t = self.t
        with self.engine.begin() as conn:
            fill_id = conn.execute(
                t["fills"].insert().values(
                    run_id=run_id, order_ref=order_ref, ts_ns=fill.ts_ns, strategy=fill.strategy,
                    instrument_id=fill.instrument_id, side=fill.side, quantity=fill.quantity,
                    price=fill.price, commission=fill.commission, currency=fill.currency,
                    client_order_id=fill.client_order_id, venue_order_id=fill.venue_order_id,
                    trade_id=fill.trade_id, liquidity_side=fill.liquidity_side, broker=fill.broker,
                ),
            ).inserted_primary_key[0]
            if new_lot is not None:
                conn.execute(
                    t["lots"].insert().values(
                        lot_id=new_lot.lot_id, run_id=run_id, fill_id=fill_id,
                        strategy=new_lot.strategy, symbol=new_lot.symbol,
                        opened_ns=new_lot.opened_ns, quantity=new_lot.quantity,
                        price=new_lot.price, commission=new_lot.commission,
                    ),
                )
            if sale is not None:
                for closing in sale.closings:
                    conn.execute(
                        t["lot_closings"].insert().values(
                            lot_id=closing.lot_id, fill_id=fill_id, quantity=closing.quantity,
                            commission=closing.commission,
                        ),
                    )
                conn.execute(
                    t["trades"].insert().values(
                        run_id=run_id, exit_fill_id=fill_id, strategy=sale.strategy,
                        symbol=sale.symbol, side="LONG", quantity=sale.quantity,
                        entry_ns=sale.entry_ns, exit_ns=fill.ts_ns, entry_price=sale.entry_price,
                        exit_price=sale.exit_price, cost=sale.cost, gross_pnl=sale.gross_pnl,
                        charges=sale.charges, net_pnl=sale.net_pnl, net_pnl_pct=sale.net_pnl_pct,
                        duration_s=(fill.ts_ns - sale.entry_ns) // 1_000_000_000,
                        signal_type=signal_type, exit_reason=exit_reason,
                    ),
                )
            return fill_id

    def record_lot_change(self, run_id: str, record: LotChange) -> None:
        """One change of a strategy's lot book, in one transaction."""
        t = self.t
        with self.engine.begin() as conn:
            if isinstance(record, LotRecord):
                tbl = t["core_lots"]
                key = (tbl.c.strategy == record.strategy) & (tbl.c.lot_id == record.lot_id)
                state = dict(
                    run_id=run_id, kind=record.kind, quantity=record.quantity,
                    price=record.price, commission=record.commission,
                )
                # Select, then update or insert: portable across SQLite and PostgreSQL.
                if conn.execute(select(func.count()).select_from(tbl).where(key)).scalar():
                    conn.execute(tbl.update().where(key).values(**state))
                else:
                    conn.execute(tbl.insert().values(
                        strategy=record.strategy, instrument_id=record.instrument_id,
                        lot_id=record.lot_id, opened_ns=record.opened_ns, **state,
                    ))
            elif isinstance(record, LotSaleRecord):
                conn.execute(t["core_lot_sales"].insert().values(
                    strategy=record.strategy, lot_id=record.lot_id, seq=record.seq,
                    instrument_id=record.instrument_id, run_id=run_id, ts_ns=record.ts_ns,
                    quantity=record.quantity, price=record.price, commission=record.commission,
                    buy_commission=record.buy_commission, kind=record.kind,
                    reason=record.reason, cost_price=record.cost_price,
                ))
            elif isinstance(record, CostBasisRecord):
                conn.execute(t["cost_basis_reductions"].insert().values(
                    strategy=record.strategy, instrument_id=record.instrument_id, run_id=run_id,
                    ts_ns=record.ts_ns, amount=record.amount, source_lot=record.source_lot,
                ))
            else:
                raise JournalError(f"not a lot change: {type(record).__name__}")

    # -- reads ------------------------------------------------------------------------------

    def saved_lots(self) -> SavedLots:
        """Every strategy's lot book as written: lots, their sales, cost-basis reductions."""
        lots = self.rows("core_lots", order_by="opened_ns")
        sales = self.rows("core_lot_sales", order_by="seq")
        return SavedLots(
            tuple(
                LotRecord(r["strategy"], r["instrument_id"], r["lot_id"], r["kind"],
                          r["opened_ns"], r["quantity"], r["price"], r["commission"])
                for r in sorted(lots, key=lambda r: (r["opened_ns"], r["lot_id"]))
            ),
            tuple(
                LotSaleRecord(r["strategy"], r["instrument_id"], r["lot_id"], r["seq"],
                              r["ts_ns"], r["quantity"], r["price"], r["commission"],
                              r["buy_commission"], r["kind"], r["reason"], r["cost_price"])
                for r in sorted(sales, key=lambda r: (r["strategy"], r["lot_id"], r["seq"]))
            ),
            tuple(
                CostBasisRecord(r["strategy"], r["instrument_id"], r["ts_ns"], r["amount"],
                                r["source_lot"])
                for r in self.rows("cost_basis_reductions")
            ),
        )


    def rows(self, table: str, run_id: str | None = None, order_by: str = "id") -> list[dict[str, Any]]:
        tbl = self.t[table]
        query = select(tbl)
        if run_id is not None:
            query = query.where(tbl.c.run_id == run_id)
        if order_by in tbl.c:
            query = query.order_by(tbl.c[order_by])
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def rows_between(
        self, table: str, ts_column: str, start_ns: int, end_ns: int, run_id: str | None,
    ) -> list[dict[str, Any]]:
        """Rows whose time column lies in [start_ns, end_ns], oldest first."""
        tbl = self.t[table]
        query = select(tbl).where(tbl.c[ts_column] >= start_ns, tbl.c[ts_column] <= end_ns)
        if run_id is not None:
            query = query.where(tbl.c.run_id == run_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query.order_by(tbl.c.id))]

    def order_tags(self, order_ref: str) -> str:
        tbl = self.t["orders"]
        with self.engine.connect() as conn:
            return conn.execute(select(tbl.c.tags).where(tbl.c.order_ref == order_ref)).scalar() or ""

    def fill_exists(self, fill: FillRecord) -> bool:
        """
        Whether this execution is already recorded: same trade id, order, instrument and time.
        A venue replaying its executions on reconnect repeats all four; a simulated venue
        restarted reuses trade and order ids but not the time.
        """
        tbl = self.t["fills"]
        query = select(func.count()).select_from(tbl).where(
            tbl.c.trade_id == fill.trade_id,
            tbl.c.instrument_id == fill.instrument_id,
            tbl.c.client_order_id == fill.client_order_id,
            tbl.c.ts_ns == fill.ts_ns,
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar() > 0

    def open_lots(self, run_id: str | None) -> list[Lot]:
        """Lots with shares left: of one run (backtests), or of every run (paper and live)."""
        lots = self.rows("lots", run_id, order_by="opened_ns")
        closings: dict[str, tuple[Decimal, Decimal]] = {}
        for row in self.rows("lot_closings"):
            qty, comm = closings.get(row["lot_id"], (Decimal(0), Decimal(0)))
            closings[row["lot_id"]] = (qty + row["quantity"], comm + row["commission"])
        out = []
        for row in lots:
            sold, carried = closings.get(row["lot_id"], (Decimal(0), Decimal(0)))
            if row["quantity"] > sold:
                out.append(
                    Lot(row["lot_id"], row["strategy"], row["symbol"], row["opened_ns"],
                        row["price"], row["quantity"] - sold, row["commission"] - carried),
                )
        return out

    def order_by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        """The most recent order with this client id (an order placed before a restart)."""
        tbl = self.t["orders"]
        query = select(tbl).where(tbl.c.client_order_id == client_order_id).order_by(tbl.c.id.desc())
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row else None

    def next_seq(self, run_id: str) -> int:
        tbl = self.t["orders"]
        with self.engine.connect() as conn:
            current = conn.execute(select(func.max(tbl.c.seq)).where(tbl.c.run_id == run_id)).scalar()
        return (current or 0) + 1

    def last_equity(self, run_id: str | None, currency: str = "USD") -> dict[str, Any] | None:
        tbl = self.t["equity_snapshots"]
        query = select(tbl).where(tbl.c.currency == currency)
        if run_id is not None:
            query = query.where(tbl.c.run_id == run_id)
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(tbl.c.id.desc())).first()
        return dict(row._mapping) if row else None

    def iter_runs(self) -> Iterator[dict[str, Any]]:
        yield from self.rows("runs", order_by="started_at")


def indicators_json(values: dict[str, str]) -> str:
    return json.dumps(values, sort_keys=True)
