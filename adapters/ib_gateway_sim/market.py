"""
The simulated market: contracts from the Parquet catalog, their quotes and 1-minute bars, and
a replay clock that walks through them at a chosen speed.

The catalog keeps every instrument on the backtest venue ``SIM``; IB reports each contract on
its primary exchange, so the exchange comes from ``catalog/listings.csv`` (the MIC mapped back
to IB's exchange name: ARCX -> ARCA, XNAS -> NASDAQ, XNYS -> NYSE), which is what the Nautilus
adapter maps to MIC venues with ``convert_exchange_to_mic_venue=True``.
"""

from __future__ import annotations

import bisect
import time
import zlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import exchange_calendars as xcals
import pandas as pd
from nautilus_trader.model.instruments import IndexInstrument

from adapters.ib_gateway_sim.messages import ContractSpec
from catalog.instruments import listing
from catalog.store import bar_type_for
from catalog.store import open_catalog

# MIC -> the exchange name IB uses in contract details (inverse of the adapter's VENUE_MEMBERS)
IB_EXCHANGE_FOR_MIC = {
    "XNAS": "NASDAQ",
    "XNYS": "NYSE",
    "ARCX": "ARCA",
    "BATS": "BATS",
    "XCBO": "CBOE",
    "XASE": "AMEX",
    "IEXG": "IEX",
}
EXCHANGE_TZ = "America/New_York"
NS = 1_000_000_000


def con_id_for(symbol: str) -> int:
    """A stable contract id per symbol (IB's are stable too; clients cache them)."""
    return 100_000 + zlib.crc32(symbol.encode()) % 900_000_000


def synthetic_isin(con_id: int) -> str:
    """An ISIN-shaped identifier with a valid Luhn check digit (the adapter requires one)."""
    body = f"US{con_id:09d}"[:11]
    digits = "".join(str(int(c, 36)) for c in body)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return body + str((10 - total % 10) % 10)


def contract_spec_for(symbol: str, is_index: bool) -> ContractSpec:
    entry = listing(symbol)
    con_id = con_id_for(symbol)
    return ContractSpec(
        con_id=con_id,
        symbol=symbol,
        sec_type="IND" if is_index else "STK",
        primary_exchange=IB_EXCHANGE_FOR_MIC[entry.mic],
        long_name=f"{symbol} (simulated)",
        isin="" if is_index else synthetic_isin(con_id),
        stock_type="" if is_index else ("ETF" if entry.kind == "etf" else "COMMON"),
    )


@dataclass(frozen=True)
class Quote:
    ts_ns: int
    bid: Decimal
    ask: Decimal
    bid_size: Decimal
    ask_size: Decimal

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@dataclass(frozen=True)
class MinuteBar:
    ts_close_ns: int  # Nautilus stamps bars at their close
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


class Tape:
    """One symbol's quotes and bars in time order, looked up by replay time."""

    def __init__(self, quotes: list[Quote], bars: list[MinuteBar]) -> None:
        self.quotes = quotes
        self.bars = bars
        self._quote_ts = [q.ts_ns for q in quotes]
        self._bar_ts = [b.ts_close_ns for b in bars]

    def quote_at(self, ts_ns: int) -> Quote | None:
        i = bisect.bisect_right(self._quote_ts, ts_ns)
        return self.quotes[i - 1] if i else None

    def last_bar_at(self, ts_ns: int) -> MinuteBar | None:
        i = bisect.bisect_right(self._bar_ts, ts_ns)
        return self.bars[i - 1] if i else None

    def quotes_between(self, start_ns: int, end_ns: int) -> list[Quote]:
        """Quotes stamped in [start_ns, end_ns)."""
        lo = bisect.bisect_left(self._quote_ts, start_ns)
        hi = bisect.bisect_left(self._quote_ts, end_ns)
        return self.quotes[lo:hi]

    def bars_between(self, start_ns: int, end_ns: int) -> list[MinuteBar]:
        """Bars that closed in (start_ns, end_ns]."""
        lo = bisect.bisect_right(self._bar_ts, start_ns)
        hi = bisect.bisect_right(self._bar_ts, end_ns)
        return self.bars[lo:hi]

    @property
    def first_ts(self) -> int | None:
        candidates = [t[0] for t in (self._quote_ts, self._bar_ts) if t]
        return min(candidates) if candidates else None


MINUTE_NS = 60 * NS


def as_now_offset(replay_start_ns: int, wall_ns: int | None = None) -> int:
    """
    The constant shift that presents a replay starting at ``replay_start_ns`` as happening
    now: every timestamp the gateway sends is replay time plus this offset, every timestamp
    it reads is replay time minus it. Whole minutes, so minute bars stay on minute
    boundaries. A live node stamps reqMktData ticks (which carry no time) with its own clock,
    and its strategies read that clock; with the shift, quotes, bars and executions all land
    on the node's "now" (at a speed above 1 they run ahead of it by the same constant rate).
    The market itself (sessions, regular hours, matching) keeps the catalog's time.
    """
    wall = time.time_ns() if wall_ns is None else wall_ns
    return (wall - replay_start_ns) // MINUTE_NS * MINUTE_NS


class ReplayClock:
    """Replay time: starts at ``start_ns`` and runs ``speed`` times faster than the wall clock.

    ``speed=0`` freezes the clock; tests then move it with ``advance_to`` so every step is
    deterministic.
    """

    def __init__(self, start_ns: int, speed: float) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0, got {speed}")
        self._anchor_ns = start_ns
        self._anchor_wall = time.monotonic()
        self.speed = speed

    def now_ns(self) -> int:
        elapsed = time.monotonic() - self._anchor_wall
        return self._anchor_ns + int(elapsed * self.speed * NS)

    def advance_to(self, ts_ns: int) -> None:
        self._anchor_ns = ts_ns
        self._anchor_wall = time.monotonic()


@lru_cache(maxsize=512)
def _regular_session(day: date) -> tuple[int, int] | None:
    calendar = xcals.get_calendar("XNYS")
    session = pd.Timestamp(day)
    if not calendar.is_session(session):
        return None
    return calendar.session_open(session).value, calendar.session_close(session).value


def in_regular_hours(ts_ns: int) -> bool:
    """Whether NYSE's regular session (early closes included) is open at this instant."""
    local_day = pd.Timestamp(ts_ns, tz="UTC").tz_convert(EXCHANGE_TZ).date()
    bounds = _regular_session(local_day)
    return bounds is not None and bounds[0] <= ts_ns < bounds[1]


class Market:
    """Contracts by symbol and by conId, and their tapes."""

    def __init__(self, specs: dict[str, ContractSpec], tapes: dict[str, Tape]) -> None:
        self.specs = specs
        self.tapes = tapes
        self.by_con_id = {spec.con_id: spec for spec in specs.values()}

    @classmethod
    def from_catalog(
        cls,
        path: Path | str,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        symbols: list[str] | None = None,
    ) -> Market:
        catalog = open_catalog(path)
        specs: dict[str, ContractSpec] = {}
        tapes: dict[str, Tape] = {}
        instruments = catalog.instruments()
        if not instruments:
            raise ValueError(f"catalog {path} holds no instruments")
        for instrument in instruments:
            symbol = instrument.id.symbol.value
            if symbols and symbol not in symbols:
                continue
            specs[symbol] = contract_spec_for(symbol, isinstance(instrument, IndexInstrument))
            quotes = [
                Quote(
                    q.ts_event,
                    q.bid_price.as_decimal(),
                    q.ask_price.as_decimal(),
                    q.bid_size.as_decimal(),
                    q.ask_size.as_decimal(),
                )
                for q in catalog.quote_ticks(
                    instrument_ids=[instrument.id.value], start=start, end=end
                )
            ]
            bars = [
                MinuteBar(
                    b.ts_event,
                    b.open.as_decimal(),
                    b.high.as_decimal(),
                    b.low.as_decimal(),
                    b.close.as_decimal(),
                    b.volume.as_decimal(),
                )
                for b in catalog.bars(
                    bar_types=[str(bar_type_for(instrument.id, "1min"))],
                    start=start,
                    end=end,
                )
            ]
            tapes[symbol] = Tape(quotes, bars)
        if symbols:
            missing = sorted(set(symbols) - set(specs))
            if missing:
                raise ValueError(f"catalog {path} has no instrument for {', '.join(missing)}")
        return cls(specs, tapes)

    def first_ts(self) -> int:
        firsts = [t.first_ts for t in self.tapes.values() if t.first_ts is not None]
        if not firsts:
            raise ValueError("the catalog holds no quotes or bars in the chosen range")
        return min(firsts)

    def resolve(self, symbol: str, sec_type: str, con_id: int) -> ContractSpec | None:
        """The contract a request names: by conId when given, else by symbol (and type)."""
        if con_id:
            return self.by_con_id.get(con_id)
        spec = self.specs.get(symbol)
        if spec is None or (sec_type and sec_type != spec.sec_type):
            return None
        return spec

    def quote(self, symbol: str, ts_ns: int) -> Quote | None:
        tape = self.tapes.get(symbol)
        return tape.quote_at(ts_ns) if tape else None
