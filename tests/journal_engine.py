"""
A tiny BacktestEngine run with a scripted trader, the journal and (optionally) the ledger:
hand-computable fills for the journal and ledger tests, and the writer the crash test kills.

Run as a script it is that writer: python -m tests.journal_engine <db_url> <records_dir> <throttle>
"""

from __future__ import annotations

import sys
import time
from decimal import Decimal
from pathlib import Path

import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.engine import BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import OmsType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Money
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy

from actors.journal import Journal
from actors.journal import JournalConfig
from actors.ledger import Ledger
from actors.ledger import LedgerConfig
from backtesting.fees import PerShareFeeModel
from catalog.instruments import BACKTEST_VENUE
from catalog.instruments import make_instrument
from catalog.store import bar_type_for
from catalog.store import bars_from_frame
from strategies.records import RiskRecord
from strategies.records import SignalRecord
from strategies.records import publish_risk
from strategies.records import publish_signal

SESSION_START = pd.Timestamp("2024-03-04 15:00", tz="UTC")  # 10:00 New York
# (price, action): each price lasts two minute bars; the action runs on the first of the pair.
HAND_SCRIPT = (
    ("100.00", "BUY:10.5:signal"),  # denied by the risk engine: SPY trades whole shares
    ("100.00", "BUY:10:signal"),
    ("110.00", "BUY:10:signal"),
    ("120.00", "SELL:15:exit:target"),
    ("90.00", "SELL:5:exit:stop_loss"),
    ("90.00", ""),
)


class ScriptedTraderConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    bar_type: BarType
    actions: tuple[str, ...]  # per bar: "" or "SIDE:QTY:TAG"
    throttle_seconds: float = 0.0


class ScriptedTrader(Strategy):
    """Places the scripted market orders; publishes one signal and one risk record first."""

    def __init__(self, config: ScriptedTraderConfig) -> None:
        super().__init__(config)
        self._bar = 0

    def on_start(self) -> None:
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        if self._bar == 0:
            publish_signal(self.msgbus, SignalRecord(
                bar.ts_event, self.id.value, self.config.instrument_id.value, "ma_cross_up",
                {"fast": "101.5", "slow": "100.25"}))
            publish_risk(self.msgbus, RiskRecord(
                bar.ts_event, "test-gate", "limit", "position limit 50 shares", self.id.value,
                self.config.instrument_id.value))
        action = self.config.actions[self._bar] if self._bar < len(self.config.actions) else ""
        self._bar += 1
        if self.config.throttle_seconds:
            time.sleep(self.config.throttle_seconds)
        if not action:
            return
        side, qty, tag = action.split(":", 2)
        order = self.order_factory.market(
            instrument_id=self.config.instrument_id,
            order_side=OrderSide[side],
            quantity=Quantity.from_str(qty),
            tags=[tag],
        )
        self.submit_order(order)


def scripted_bars(
    script: tuple[tuple[str, str], ...],
    start: pd.Timestamp = SESSION_START,
) -> tuple[list[Bar], tuple[str, ...]]:
    instrument = make_instrument("SPY")
    prices, actions = [], []
    for price, action in script:
        prices += [float(price), float(price)]
        actions += [action, ""]
    index = pd.date_range(start + pd.Timedelta(minutes=1), periods=len(prices), freq="1min")
    frame = pd.DataFrame({"open": prices, "high": prices, "low": prices, "close": prices,
                          "volume": 1_000_000.0}, index=index)
    return bars_from_frame(instrument, bar_type_for(instrument.id, "1min"), frame), tuple(actions)


def run_engine(
    db_url: str,
    records_dir: Path,
    script: tuple[tuple[str, str], ...] = HAND_SCRIPT,
    mode: str = "backtest",
    ledger_book: Path | None = None,
    throttle_seconds: float = 0.0,
    log_format: str = "csv",
    run_id: str = "",
    schema: str = "",
    start: pd.Timestamp = SESSION_START,
) -> str:
    """Runs the script through a BacktestEngine; returns the journal's run id."""
    engine = BacktestEngine(BacktestEngineConfig(
        trader_id="TESTER-001", logging=LoggingConfig(log_level="ERROR", bypass_logging=True)))
    engine.add_venue(
        venue=BACKTEST_VENUE, oms_type=OmsType.NETTING, account_type=AccountType.CASH,
        base_currency=USD, starting_balances=[Money(Decimal("100000"), USD)],
        fee_model=PerShareFeeModel(),
    )
    instrument = make_instrument("SPY")
    engine.add_instrument(instrument)
    bars, actions = scripted_bars(script, start)
    engine.add_data(bars)
    journal = Journal(JournalConfig(mode=mode, database_url=db_url, records_dir=str(records_dir),
                                    log_format=log_format, run_id=run_id,
                                    database_schema=schema))
    engine.add_actor(journal)
    if ledger_book is not None:
        engine.add_actor(Ledger(LedgerConfig(book_path=str(ledger_book))))
    engine.add_strategy(ScriptedTrader(ScriptedTraderConfig(
        instrument_id=instrument.id, bar_type=bar_type_for(instrument.id, "1min"),
        actions=actions, throttle_seconds=throttle_seconds, order_id_tag="T1")))
    try:
        engine.run(end=bars[-1].ts_event + 60 * 60 * 1_000_000_000 * 6)
    finally:
        engine.dispose()
    return journal.run_id


def crash_script(pairs: int) -> tuple[tuple[str, str], ...]:
    """Buy 10 then sell 10, `pairs` times, prices walking up a cent at a time."""
    script = []
    for n in range(pairs):
        script.append((f"{100 + n / 100:.2f}", "BUY:10:signal"))
        script.append((f"{100.05 + n / 100:.2f}", "SELL:10:exit:signal"))
    return tuple(script)


if __name__ == "__main__":
    url, folder, throttle = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
    run_engine(url, folder, crash_script(int(sys.argv[4])), mode="paper", throttle_seconds=throttle)
