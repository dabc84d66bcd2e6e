"""
The GnuCash ledger (piecash, SQLite books): each fill one balanced transaction.

A buy debits the symbol's STOCK account with the shares and their cost, debits
Expenses:Commissions and credits cash. A sale credits the STOCK account with the shares and
the FIFO cost of the lots sold (actors/lots.py), credits Income:Trading:Realized Gains with
proceeds less that cost (a loss is a debit there), debits commissions and debits cash with the
proceeds less commission. The day's last fill price goes into the price database. Every split
memo carries strategy_name and broker, which is also how lots are rebuilt when a book is
reopened: the book itself is the ledger's memory.

A book is created once and never overwritten or recreated; an existing one is opened and
appended to, after a dated backup before the first write of each (UTC) day.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
import warnings
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from typing import TypeVar
from decimal import ROUND_HALF_EVEN
from decimal import Decimal
from pathlib import Path

from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.events import AccountState
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.objects import Currency

from actors.error_monitor import REPORT_ENDPOINT
from actors.error_monitor import ErrorReport
from actors.fills import FillRecord
from actors.fills import fill_from_event
from actors.fills import money_decimal
from actors.journal_store import JournalStore
from actors.lots import Lot
from actors.lots import LotBook
from actors.lots import Sale
from actors.record_writer import RECORDS_PRIORITY
from actors.record_writer import RecordWriter
from config.ledger import ChartOfAccounts
from config.ledger import export_mode_book
from strategies.sessions import ny_date

from sqlalchemy.exc import SAWarning



@contextmanager
def _quiet_piecash() -> Iterator[None]:
    """piecash 1.2.1 declares relationships SQLAlchemy 1.4 warns about; harmless, so hidden."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        yield


def _quiet(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        with _quiet_piecash():
            return method(*args, **kwargs)
    return wrapper

with warnings.catch_warnings():
    warnings.simplefilter("ignore", SyntaxWarning)
    import piecash
    from piecash import Account
    from piecash import Commodity
    from piecash import Price
    from piecash import Split
    from piecash import Transaction

T = TypeVar("T")
CENT = Decimal("0.01")
TOP_TYPES = {"Assets": "ASSET", "Income": "INCOME", "Expenses": "EXPENSE", "Equity": "EQUITY"}
SHARE_FRACTION = 10000  # quantities to 1/10000 share


class LedgerError(RuntimeError):
    """The book cannot be written as asked (exists when it must be fresh, missing, locked)."""


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def _memo(strategy: str, broker: str, extra: str = "") -> str:
    return f"strategy_name={strategy} broker={broker}" + (f" {extra}" if extra else "")


def _memo_field(memo: str, name: str) -> str:
    for part in memo.split():
        if part.startswith(f"{name}="):
            return part.split("=", 1)[1]
    return ""


def trade_date(ts_ns: int) -> dt.date:
    """The New York calendar date of an instant: the trading day a fill belongs to."""
    return ny_date(ts_ns)


class GnuCashLedger:
    """One open GnuCash book."""

    @_quiet
    def __init__(self, path: Path, book: piecash.Book, chart: ChartOfAccounts, existed: bool) -> None:
        self.path = path
        self.book = book
        self.chart = chart
        self._existed = existed
        self._backed_up_on: dt.date | None = None
        self.currency = book.default_currency
        self._accounts: dict[str, Account] = {}
        self.lots = self._rebuild_lots()
        self.booked = self._booked_fills()

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    @_quiet
    def create(cls, path: Path, chart: ChartOfAccounts = ChartOfAccounts()) -> GnuCashLedger:
        """A new book; refuses to touch an existing file."""
        if path.exists():
            raise LedgerError(f"{path}: the book exists; it is never overwritten or recreated")
        path.parent.mkdir(parents=True, exist_ok=True)
        book = piecash.create_book(
            sqlite_file=str(path), currency=chart.currency, overwrite=False, keep_foreign_keys=False,
        )
        ledger = cls(path, book, chart, existed=False)
        for name in (chart.cash, chart.realized, chart.commissions, chart.opening):
            ledger.account(name)
        ledger.account(chart.positions, placeholder=True)
        book.save()
        return ledger

    @classmethod
    @_quiet
    def open(cls, path: Path, chart: ChartOfAccounts = ChartOfAccounts(),
             readonly: bool = False) -> GnuCashLedger:
        if not path.exists():
            raise LedgerError(f"{path}: no such book")
        try:
            book = piecash.open_book(str(path), readonly=readonly, open_if_lock=False, do_backup=False)
        except piecash.GnucashException as exc:
            raise LedgerError(f"{path}: {exc}") from exc
        if book.default_currency.mnemonic != chart.currency:
            raise LedgerError(
                f"{path}: book currency {book.default_currency.mnemonic} is not {chart.currency}",
            )
        return cls(path, book, chart, existed=True)

    @classmethod
    def open_or_create(cls, path: Path, chart: ChartOfAccounts = ChartOfAccounts()) -> GnuCashLedger:
        return cls.open(path, chart) if path.exists() else cls.create(path, chart)

    @_quiet
    def close(self) -> None:
        self.book.close()

    # -- accounts ---------------------------------------------------------------------------

    def account(self, full_name: str, type_: str | None = None, commodity: Commodity | None = None,
                placeholder: bool = False) -> Account:
        if full_name in self._accounts:
            return self._accounts[full_name]
        parts = full_name.split(":")
        top_type = TOP_TYPES[parts[0]]
        parent = self.book.root_account
        for depth, name in enumerate(parts, start=1):
            found = [child for child in parent.children if child.name == name]
            if found:
                parent = found[0]
                continue
            last = depth == len(parts)
            if last and type_ is None and full_name == self.chart.cash:
                type_ = "BANK"
            parent = Account(
                name=name,
                type=(type_ or top_type) if last else top_type,
                parent=parent,
                commodity=commodity if (last and commodity is not None) else self.currency,
                placeholder=placeholder if last else False,
            )
        self._accounts[full_name] = parent
        return parent

    def stock(self, symbol: str) -> Account:
        name = f"{self.chart.positions}:{symbol}"
        if name not in self._accounts:
            commodities = [c for c in self.book.commodities
                           if c.namespace == self.chart.stock_namespace and c.mnemonic == symbol]
            commodity = commodities[0] if commodities else Commodity(
                namespace=self.chart.stock_namespace, mnemonic=symbol, fullname=symbol,
                fraction=SHARE_FRACTION, book=self.book,
            )
            self.account(name, type_="STOCK", commodity=commodity)
        return self._accounts[name]

    def _stock_accounts(self) -> dict[str, Account]:
        parent = self.account(self.chart.positions, placeholder=True)
        return {child.name: child for child in parent.children}

    def _rebuild_lots(self) -> LotBook:
        """FIFO lots from the STOCK accounts' splits, oldest first."""
        lots = LotBook()
        if not self._existed:
            return lots
        splits = []
        for symbol, account in self._stock_accounts().items():
            for split in account.splits:
                splits.append((split.transaction.post_date, split.transaction.enter_date, symbol, split))
        for post_date, _, symbol, split in sorted(splits, key=lambda s: (s[0], s[1])):
            strategy = _memo_field(split.memo, "strategy_name")
            if split.quantity > 0:
                lots.buy(Lot(split.transaction.guid, strategy, symbol, len(lots.open_lots()),
                             split.value / split.quantity, split.quantity, Decimal(0)))
            else:
                lots.sell(strategy, symbol, -split.quantity, Decimal(0), Decimal(0),
                          f"{self.path} transaction {split.transaction.guid}")
        return lots

    def _booked_fills(self) -> set[tuple[str, str]]:
        """(client order id, trade id) of every fill in the book, from the transactions' notes."""
        if not self._existed:
            return set()
        keys = set()
        for tx in self.book.transactions:
            order, trade = _memo_field(tx.notes or "", "order"), _memo_field(tx.notes or "", "trade")
            if order and trade:
                keys.add((order, trade))
        return keys

    # -- writing ----------------------------------------------------------------------------

    def _backup_before_write(self) -> None:
        """A dated copy before the first write of each UTC day, for books that already existed."""
        today = dt.datetime.now(dt.UTC).date()
        if not self._existed or self._backed_up_on == today:
            return
        target = self.path.with_name(f"{self.path.name}.{today.isoformat()}.bak")
        if not target.exists():
            source = sqlite3.connect(self.path)
            dest = sqlite3.connect(target)
            try:
                source.backup(dest)
            finally:
                dest.close()
                source.close()
        self._backed_up_on = today

    @_quiet
    def has_opening_balance(self) -> bool:
        return bool(self.account(self.chart.opening).splits)

    @_quiet
    def record_opening_balance(self, amount: Decimal, date: dt.date, broker: str) -> None:
        if self.has_opening_balance():
            raise LedgerError(f"{self.path}: the opening balance is already booked")
        self._backup_before_write()
        memo = _memo("opening", broker)
        Transaction(
            currency=self.currency, description="Opening balance", post_date=date,
            splits=[
                Split(account=self.account(self.chart.cash), value=_cents(amount), memo=memo),
                Split(account=self.account(self.chart.opening), value=-_cents(amount), memo=memo),
            ],
        )
        self.book.save()

    @_quiet
    def catch_up(self, journal: list[FillRecord]) -> list[FillRecord]:
        """
        Book, in the journal's order, every journal fill the book lacks (a crash between the
        journal's commit and the book's save leaves the book behind; the journal is the record
        of truth); returns what was booked.
        """
        missing = [f for f in journal if (f.client_order_id, f.trade_id) not in self.booked]
        for fill in missing:
            self.record_fill(fill)
        return missing

    @_quiet
    def record_fill(self, fill: FillRecord) -> Sale | None:
        """Book one fill; one the book already holds (same order and trade id) is not booked twice."""
        if (fill.client_order_id, fill.trade_id) in self.booked:
            return None
        if fill.currency != self.chart.currency:
            raise LedgerError(
                f"fill {fill.trade_id}: commission in {fill.currency}, the book is in {self.chart.currency}",
            )
        self._backup_before_write()
        stock = self.stock(fill.symbol)
        date = trade_date(fill.ts_ns)
        memo = _memo(fill.strategy, fill.broker, f"order={fill.client_order_id} trade={fill.trade_id}")
        commission = _cents(fill.commission)
        value = _cents(fill.quantity * fill.price)
        splits = [Split(account=self.account(self.chart.commissions), value=commission, memo=memo)]
        sale = None
        if fill.side == "BUY":
            splits.append(Split(account=stock, value=value, quantity=fill.quantity, memo=memo))
            splits.append(Split(account=self.account(self.chart.cash), value=-(value + commission), memo=memo))
            lot_id = f"{fill.client_order_id}#{fill.trade_id}"
            self.lots.buy(Lot(lot_id, fill.strategy, fill.symbol, fill.ts_ns, fill.price,
                              fill.quantity, Decimal(0)))
        else:
            sale = self.lots.sell(fill.strategy, fill.symbol, fill.quantity, fill.price, Decimal(0),
                                  f"fill {fill.trade_id} in {self.path}")
            cost = _cents(sale.cost)
            splits.append(Split(account=stock, value=-cost, quantity=-fill.quantity, memo=memo))
            if value != cost:
                splits.append(Split(account=self.account(self.chart.realized), value=-(value - cost), memo=memo))
            splits.append(Split(account=self.account(self.chart.cash), value=value - commission, memo=memo))
        Transaction(
            currency=self.currency, post_date=date, num=fill.trade_id[:2000],
            description=f"{fill.side} {fill.quantity} {fill.symbol} @ {fill.price} ({fill.strategy})",
            notes=memo, splits=splits,
        )
        self._record_price(stock.commodity, date, fill.price)
        self.book.save()
        self.booked.add((fill.client_order_id, fill.trade_id))
        return sale

    def _record_price(self, commodity: Commodity, date: dt.date, price: Decimal) -> None:
        existing = [p for p in commodity.prices if p.date == date and p.currency == self.currency]
        if existing:
            existing[0].value = price
        else:
            Price(commodity=commodity, currency=self.currency, date=date, value=price,
                  type="last", source="user:price")

    # -- reading, for reconciliation ------------------------------------------------------

    @_quiet
    def balance(self, full_name: str) -> Decimal:
        """The account's value balance in book sign (debit positive)."""
        return sum((s.value for s in self.account(full_name).splits), Decimal(0))

    @_quiet
    def positions(self) -> dict[str, Decimal]:
        out = {}
        for symbol, account in self._stock_accounts().items():
            qty = sum((s.quantity for s in account.splits), Decimal(0))
            if qty != 0:
                out[symbol] = qty
        return out


CATCH_UP_LOG = "ledger_catch_up.log"  # next to the book: what a start re-booked from the journal


def journal_fill(row: dict[str, Any]) -> FillRecord:
    """A journal `fills` row as the FillRecord it was written from."""
    return FillRecord(**{name: row[name] for name in FillRecord.__dataclass_fields__})


class LedgerConfig(ActorConfig, frozen=True):
    """
    book_path: the SQLite GnuCash book (created if missing, otherwise appended to).
    broker: written into every memo.
    retry_limit: retries of a write that failed transiently (API_RETRY_LIMIT).
    journal_url, journal_schema: the run's journal; at start every fill it holds that the book
    lacks is booked first (None: no journal, nothing to catch up from).
    The chart of accounts is config/ledger.py's ChartOfAccounts (account names overridable).
    """

    book_path: str
    broker: str = "simulated"
    retry_limit: int = 3
    journal_url: str | None = None
    journal_schema: str | None = None
    cash: str = ChartOfAccounts.cash
    positions: str = ChartOfAccounts.positions
    realized: str = ChartOfAccounts.realized
    commissions: str = ChartOfAccounts.commissions
    opening: str = ChartOfAccounts.opening

    def chart(self) -> ChartOfAccounts:
        return ChartOfAccounts(self.cash, self.positions, self.realized, self.commissions, self.opening)


def ledger_config_for(
    export_mode: str,
    run_mode: str,
    directory: Path,
    broker: str,
) -> LedgerConfig | None:
    """
    The ledger actor's config for a paper or live run under GNC_EXPORT_MODE, or None when
    the mode writes no book (off, or auto in a backtest: backtests export with --ledger).
    """
    book = export_mode_book(export_mode, run_mode)
    if book is None:
        return None
    return LedgerConfig(book_path=str(directory / book), broker=broker)


class Ledger(Actor):
    """
    Books every fill into the GnuCash book as it happens. The book is opened, written and
    closed by the ledger's own writer thread (actors/record_writer.py), whichever thread
    publishes the fill, so a GnuCash save never holds up the order path; a write that fails
    for good is reported to the error monitor as a critical error.
    """

    def __init__(self, config: LedgerConfig) -> None:
        super().__init__(config)
        self.writer: RecordWriter[GnuCashLedger] = RecordWriter("ledger", config.retry_limit)

    def on_start(self) -> None:
        path, chart = Path(self.config.book_path), self.config.chart()
        self.writer.start(lambda: GnuCashLedger.open_or_create(path, chart), GnuCashLedger.close)
        self.msgbus.subscribe(topic="events.order.*", handler=self._on_order_event, priority=RECORDS_PRIORITY)
        self.msgbus.subscribe(topic="events.account.*", handler=self._on_account_state, priority=RECORDS_PRIORITY)
        accounts = self.cache.accounts()
        # An IB account has no base currency (balance_total() needs one named); an account
        # without a balance in the book's currency yet is booked by _on_account_state when
        # its state arrives.
        balance = accounts[0].balance_total(Currency.from_str(chart.currency)) if accounts else None
        if balance is not None:
            self._book_opening(money_decimal(balance))
        if self.config.journal_url:
            # Queued ahead of every fill of this run: the writer thread runs jobs in order.
            self._write("catch-up from the journal", self._catch_up)

    def _catch_up(self, ledger: GnuCashLedger) -> None:
        store = JournalStore(self.config.journal_url, self.config.journal_schema or None)
        try:
            journal = [journal_fill(row) for row in store.rows("fills")]
        finally:
            store.close()
        booked = ledger.catch_up(journal)
        if not booked:
            return
        lines = [f"{f.side} {f.quantity} {f.symbol} @ {f.price} (order {f.client_order_id}, "
                 f"trade {f.trade_id})" for f in booked]
        message = (f"ledger caught up from the journal {self.config.journal_url}: re-booked "
                   f"{len(booked)} fill(s) the book {ledger.path} lacked: " + "; ".join(lines))
        self._log.warning(message)
        log = ledger.path.with_name(CATCH_UP_LOG)
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with log.open("a") as out:
            out.write(f"{stamp} {message}\n")

    def _book_opening(self, cash: Decimal) -> None:
        date, broker = trade_date(self.clock.timestamp_ns()), self.config.broker

        def book(ledger: GnuCashLedger) -> None:
            if not ledger.has_opening_balance():
                ledger.record_opening_balance(cash, date, broker)

        self._write("opening balance", book)

    def _on_account_state(self, event: AccountState) -> None:
        usd = [b for b in event.balances if b.currency.code == self.config.chart().currency]
        if usd:
            self._book_opening(money_decimal(usd[0].total))

    def _on_order_event(self, event: object) -> None:
        if isinstance(event, OrderFilled):
            fill = fill_from_event(event, self.config.broker)
            self._write(f"fill {fill.trade_id} of {fill.client_order_id}", lambda ledger: ledger.record_fill(fill))

    def _write(self, what: str, run: Callable[[GnuCashLedger], object]) -> None:
        self._report_failures()
        self.writer.submit(run, what)

    def _report_failures(self) -> None:
        for failure in self.writer.take_failures():
            context = {"component": str(self.id), "record": failure.what, "book": self.config.book_path}
            if self.msgbus is not None and REPORT_ENDPOINT in self.msgbus.endpoints():
                self.msgbus.send(REPORT_ENDPOINT, ErrorReport(failure.error, context, failure.attempts))
            else:  # no monitor (a bare backtest): stop loudly
                raise LedgerError(f"{self.config.book_path}: {failure.what}: {failure.error}") from failure.error

    def on_stop(self) -> None:
        self.msgbus.unsubscribe(topic="events.order.*", handler=self._on_order_event)
        self.msgbus.unsubscribe(topic="events.account.*", handler=self._on_account_state)
        self.writer.stop()
        self._report_failures()
