from decimal import Decimal as D

import pytest
from sqlalchemy import text

from actors.journal_store import CORE_LOT_TABLES
from actors.journal_store import SCHEMA_VERSION
from actors.journal_store import JournalError
from actors.journal_store import JournalStore
from actors.journal_store import default_url
from strategies.records import SavedLots
from tests.services import require_postgres
from tests.services import unique_schema


def _exercise(store: JournalStore) -> None:
    store.start_run("run-1", "paper", "TRADER-001", "ib")
    store.insert("equity_snapshots", run_id="run-1", ts_ns=1, account_id="IB-1", currency="USD",
                 total=D("100000.10"), locked=D("0"), free=D("100000.10"))
    row = store.last_equity("run-1")
    assert row["total"] == D("100000.10") and isinstance(row["total"], D)
    with pytest.raises(Exception, match="must be Decimal, got float"):
        store.insert("equity_snapshots", run_id="run-1", ts_ns=2, account_id="IB-1",
                     currency="USD", total=1.1, locked=D("0"), free=D("0"))
    # Reopening migrates nothing twice and keeps the rows.
    assert store.migrate() == SCHEMA_VERSION
    assert [r["version"] for r in store.rows("schema_version", order_by="version")] == [1, 2]


def test_sqlite_journal_is_wal_and_migrated_once(tmp_path) -> None:
    url = default_url("paper", tmp_path)
    assert url.endswith("journal_paper.sqlite")
    store = JournalStore(url)
    try:
        _exercise(store)
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        store.close()
    again = JournalStore(url)
    assert len(again.rows("runs")) == 1
    again.close()


def test_a_newer_schema_is_refused(tmp_path) -> None:
    url = default_url("live", tmp_path)
    store = JournalStore(url)
    store.insert("schema_version", version=SCHEMA_VERSION + 1, applied_at="later")
    store.close()
    with pytest.raises(JournalError, match=r"schema version 3 is newer than this code \(2\)"):
        JournalStore(url)


def test_a_version_1_journal_gains_the_core_lot_tables(tmp_path) -> None:
    url = default_url("live", tmp_path)
    store = JournalStore(url)
    with store.engine.begin() as conn:  # back to what version 1 left
        for name in CORE_LOT_TABLES:
            conn.execute(text(f"DROP TABLE {name}"))
        conn.execute(text("DELETE FROM journal_schema_version WHERE version = 2"))
    store.close()
    again = JournalStore(url)
    try:
        assert [r["version"] for r in again.rows("schema_version", order_by="version")] == [1, 2]
        assert again.saved_lots() == SavedLots()
    finally:
        again.close()


def test_bad_mode_names_the_field(tmp_path) -> None:
    with pytest.raises(JournalError, match="mode must be one of backtest, paper, live, got 'demo'"):
        default_url("demo", tmp_path)


def test_postgresql_journal_in_its_own_schema() -> None:
    url = require_postgres()
    schema = unique_schema()
    store = JournalStore(url, schema)
    try:
        _exercise(store)
        with store.engine.connect() as conn:
            tables = conn.execute(
                text("select count(*) from information_schema.tables where table_schema = :s"),
                {"s": schema},
            ).scalar()
        assert tables == 15
    finally:
        with store.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        store.close()
