"""
Instrument definitions for US equities, ETFs and the indices the strategies read.

Each symbol has one primary listing (``listings.csv``): its exchange MIC, which is what the
Interactive Brokers adapter names the venue after when ``convert_exchange_to_mic_venue=True``
(``AAPL.XNAS``, ``SPY.ARCX``). Live runs use those ids.

A backtest needs one account whose bankroll covers every symbol, and Nautilus's simulated
exchange accepts only instruments of its own venue, so the catalog and every backtest put all
instruments on one simulated venue, ``SIM``. Strategies are configured with symbols and
receive instrument ids from the runner, so the same class trades ``SPY.SIM`` in a backtest and
``SPY.ARCX`` live.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from nautilus_trader.model.currencies import USD
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Symbol
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.instruments import IndexInstrument
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity

BACKTEST_VENUE = Venue("SIM")
LISTINGS_FILE = Path(__file__).with_name("listings.csv")
KINDS = ("stock", "etf", "index")
MICS = ("XNAS", "XNYS", "ARCX", "BATS", "XCBO", "XASE", "IEXG")


class ListingError(ValueError):
    """A symbol that is not listed, or a malformed row in a listings file."""


@dataclass(frozen=True)
class Listing:
    symbol: str
    mic: str
    kind: str
    source: str  # file:line, so an error can point at the row

    @property
    def tradable(self) -> bool:
        return self.kind != "index"


def read_listings(path: Path = LISTINGS_FILE) -> dict[str, Listing]:
    """Read and validate a listings file; every bad row is reported with its line."""
    listings: dict[str, Listing] = {}
    problems: list[str] = []
    with open(path, newline="") as fh:
        rows = [
            (lineno, cells)
            for lineno, cells in enumerate(csv.reader(fh), start=1)
            if cells and not cells[0].startswith("#")
        ]
    if not rows or rows[0][1] != ["symbol", "mic", "kind"]:
        raise ListingError(f"{path}: the first row must be the header 'symbol,mic,kind'")
    for lineno, cells in rows[1:]:
        where = f"{path}:{lineno}"
        if len(cells) != 3:
            problems.append(f"{where}: expected 3 fields symbol,mic,kind, got {len(cells)}")
            continue
        symbol, mic, kind = (cell.strip() for cell in cells)
        if not symbol or not symbol.replace(".", "").isalnum() or symbol != symbol.upper():
            problems.append(f"{where}: symbol must be upper-case letters, got {symbol!r}")
        if mic not in MICS:
            problems.append(f"{where}: mic must be one of {', '.join(MICS)}, got {mic!r}")
        if kind not in KINDS:
            problems.append(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if symbol in listings:
            problems.append(f"{where}: symbol {symbol} already listed at {listings[symbol].source}")
        listings[symbol] = Listing(symbol, mic, kind, where)
    if problems:
        raise ListingError("\n".join(problems))
    return listings


@cache
def _default_listings() -> dict[str, Listing]:
    return read_listings(LISTINGS_FILE)


def listing(symbol: str) -> Listing:
    try:
        return _default_listings()[symbol]
    except KeyError:
        raise ListingError(
            f"symbol {symbol!r} is not in {LISTINGS_FILE}: add a row 'symbol,mic,kind' for it",
        ) from None


def backtest_instrument_id(symbol: str) -> InstrumentId:
    listing(symbol)
    return InstrumentId(Symbol(symbol), BACKTEST_VENUE)


def live_instrument_id(symbol: str) -> InstrumentId:
    """The id the IB adapter produces for this symbol (MIC venues)."""
    return InstrumentId(Symbol(symbol), Venue(listing(symbol).mic))


def make_instrument(symbol: str, venue: Venue = BACKTEST_VENUE) -> Instrument:
    """A US-listed instrument in USD with a one-cent tick and a lot size of one share."""
    entry = listing(symbol)
    instrument_id = InstrumentId(Symbol(symbol), venue)
    info = {"primary_mic": entry.mic, "kind": entry.kind}
    if not entry.tradable:
        return IndexInstrument(
            instrument_id=instrument_id,
            raw_symbol=Symbol(symbol),
            currency=USD,
            price_precision=2,
            size_precision=0,
            price_increment=Price.from_str("0.01"),
            size_increment=Quantity.from_int(1),
            ts_event=0,
            ts_init=0,
            info=info,
        )
    return Equity(
        instrument_id=instrument_id,
        raw_symbol=Symbol(symbol),
        currency=USD,
        price_precision=2,
        price_increment=Price.from_str("0.01"),
        lot_size=Quantity.from_int(1),
        ts_event=0,
        ts_init=0,
        info=info,
    )
