"""Run CoreRSI over a hand-built list of (UTC time, close) bars and collect what it did."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.common.actor import Actor
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import ClientOrderId

from actors.pre_trade_gate import PreTradeGate
from actors.pre_trade_gate import PreTradeGateConfig
from actors.pre_trade_gate import install_risk_layer
from catalog.instruments import backtest_instrument_id
from config.risk import RiskConfig
from strategies.bid_chaser import BidChaser
from strategies.core_rsi import CoreRSI
from strategies.core_rsi import CoreRSIConfig
from strategies.records import exit_reason
from tests.engine_harness import make_engine
from tests.refusals import OrderRefuser

SPY = backtest_instrument_id("SPY")
MINUTE_BARS = BarType.from_str(f"{SPY}-1-MINUTE-LAST-EXTERNAL")


def bars_frame(rows: list[tuple[str, float]]) -> pd.DataFrame:
    """Bars at the given close times; open is the previous close, high/low span the two."""
    index = pd.DatetimeIndex([pd.Timestamp(t, tz="UTC") for t, _ in rows])
    closes = pd.Series([r[1] for r in rows], index=index, dtype=float)
    opens = closes.shift(1).fillna(closes.iloc[0])
    both = pd.concat([opens, closes], axis=1)
    return pd.DataFrame(
        {
            "open": opens,
            "high": both.max(axis=1),
            "low": both.min(axis=1),
            "close": closes,
            "volume": 1000.0,
        },
    )


@dataclass
class Outcome:
    engine: BacktestEngine
    strategy: CoreRSI
    algorithm: BidChaser

    def fills(self) -> list[tuple[str, str, str, str]]:
        """(side, quantity, price, primary tag) of every fill, in order."""
        report = self.engine.trader.generate_fills_report()
        if report.empty:
            return []
        out = []
        for client_order_id, row in report.sort_values("ts_event", kind="stable").iterrows():
            order = self.engine.cache.order(ClientOrderId(client_order_id))
            out.append(
                (str(row["order_side"]), str(row["last_qty"]), str(row["last_px"]), order.tags[0])
            )
        return out

    def exit_reasons(self) -> list[str]:
        """The exit reason (as records show it) of every sell fill, in order."""
        report = self.engine.trader.generate_fills_report()
        sells = report[report["order_side"].astype(str) == "SELL"] if not report.empty else report
        return [
            exit_reason(self.engine.cache.order(ClientOrderId(client_order_id)).tags)
            for client_order_id in sells.sort_values("ts_event", kind="stable").index
        ]


def run_core(
    rows: list[tuple[str, float]],
    risk: RiskConfig | None = None,
    actors: tuple[Actor, ...] = (),
    refuser: OrderRefuser | None = None,
    **overrides: object,
) -> Outcome:
    """`risk`: put the pre-trade gate with these limits in front of the RiskEngine;
    `actors`: added before the strategy (e.g. a journal keeping its lots); `refuser`: ends the
    orders of its plan as a refusal would (tests/refusals.py; not with `risk`)."""
    engine, algorithm = make_engine(bars_frame(rows))
    for actor in actors:
        engine.add_actor(actor)
    if risk is not None:
        engine.add_actor(PreTradeGate(PreTradeGateConfig(risk=risk, bar_types=[MINUTE_BARS])))
    params: dict[str, object] = {
        "instrument_id": SPY,
        "bar_type": MINUTE_BARS,
        "rsi_period": 2,
        "fixed_bankroll": Decimal("100000"),
    } | overrides
    strategy = CoreRSI(CoreRSIConfig(**params))
    engine.add_strategy(strategy)
    if risk is not None:
        install_risk_layer(engine.kernel)
    if refuser is not None:
        engine.add_actor(refuser)
        refuser.attach(engine.kernel)
    engine.run()
    return Outcome(engine, strategy, algorithm)
