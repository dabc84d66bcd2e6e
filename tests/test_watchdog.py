"""The watchdog in simulated time: broker outage past the grace period, recovery, breakers."""

from __future__ import annotations

from decimal import Decimal as D

import pandas as pd
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import TradingState

from actors.watchdog import Watchdog
from actors.watchdog import WatchdogConfig
from catalog.instruments import make_instrument
from catalog.store import bar_type_for
from catalog.store import bars_from_frame
from config.risk import RiskConfig
from risk.messages import CONTROL_ENDPOINT
from risk.messages import ControlAction
from risk.messages import RiskControl
from tests.risk_support import build_engine
from tests.risk_support import minute_bars

INSTRUMENT = make_instrument("SPY")
BAR_TYPE = bar_type_for(INSTRUMENT.id, "1min")
PERMISSIVE = RiskConfig(symbol_cap_pct=D(100), max_risk_per_trade_pct=D(100), max_open_risk_pct=D(100),
                        min_volume_threshold=D(0))


def ts(local: str) -> int:
    return pd.Timestamp(local, tz="America/New_York").value


def test_broker_down_past_the_grace_period_halts_new_orders_and_recovery_lifts_it():
    # The broker is unreachable from 09:33:00 to 09:36:30 (simulated time); heartbeat every 30s,
    # grace 60s: the halt comes at the 09:34:00 heartbeat, the recovery at 09:36:30.
    watchdog = Watchdog(WatchdogConfig(bar_types=[BAR_TYPE], heartbeat_s=30, broker_grace_s=60))
    bars = minute_bars(INSTRUMENT, [100.0] * 9, "2024-03-05 09:31")
    engine, gate, strategy = build_engine(bars, PERMISSIVE, strategy_config={"first_quantity": 10},
                                          extra_actors=[watchdog])
    outage = (ts("2024-03-05 09:33"), ts("2024-03-05 09:36:30"))

    def broker_probe() -> bool:
        now = watchdog.clock.timestamp_ns()
        return not outage[0] <= now < outage[1]

    watchdog.set_probes(broker=broker_probe, data=lambda: True)
    alerts = []
    watchdog.msgbus.subscribe("alerts.*", alerts.append)
    engine.run()
    assert [(pd.Timestamp(a.ts_ns, tz="UTC").tz_convert("America/New_York").strftime("%H:%M:%S"), a.subject)
            for a in alerts] == [
        ("09:34:00", "Broker down: new orders halted"),
        ("09:36:30", "Broker connection recovered"),
    ]
    assert alerts[0].critical and "broker disconnected for 60s (grace 60s)" in alerts[0].body
    # The 09:34 bar is handled before the 09:34:00 heartbeat, so its buy passes; the buys on
    # the 09:35 and 09:36 bars are refused; from 09:37 they fill again.
    denied_at = [d.ts_init for d in strategy.denied]
    assert denied_at == [ts("2024-03-05 09:35"), ts("2024-03-05 09:36")]
    assert all("HALTED (watchdog: broker disconnected" in d.reason for d in strategy.denied)
    assert engine.kernel.risk_engine.trading_state == TradingState.ACTIVE
    snapshot = watchdog.snapshot()
    assert snapshot["broker_connected"] is True and snapshot["orders_halted_by_watchdog"] is False
    assert snapshot["last_bar"] == "2024-03-05T14:39:00+00:00"


def test_a_silent_subscription_is_named_within_two_minutes_while_the_others_flow():
    # SPY's minute bars flow 09:31-09:50; QQQ's stop after 09:35 and come back 09:41-09:45.
    # Before, the watchdog watched the newest bar of any instrument: QQQ's dead feed went
    # unreported while SPY's flowed. Limit: a minute bar's interval plus 60s; heartbeat 30s.
    qqq = make_instrument("QQQ")
    qqq_type = bar_type_for(qqq.id, "1min")
    watchdog = Watchdog(WatchdogConfig(bar_types=[BAR_TYPE, qqq_type], heartbeat_s=30))
    spy_bars = minute_bars(INSTRUMENT, [100.0] * 20, "2024-03-05 09:31")
    qqq_bars = [*minute_bars(qqq, [400.0] * 5, "2024-03-05 09:31"), *minute_bars(qqq, [400.0] * 5, "2024-03-05 09:41")]
    engine, _gate, _strategy = build_engine(spy_bars, PERMISSIVE, extra_actors=[watchdog])
    engine.add_instrument(qqq)
    engine.add_data(qqq_bars)
    alerts = []
    watchdog.msgbus.subscribe("alerts.*", alerts.append)
    seen = {}

    def snapshot_at(event) -> None:
        seen[pd.Timestamp(event.ts_event, tz="UTC").tz_convert("America/New_York").strftime("%H:%M")] = watchdog.snapshot()

    watchdog.clock.set_time_alert("look-0939", pd.Timestamp(ts("2024-03-05 09:39"), tz="UTC"), snapshot_at)
    watchdog.clock.set_time_alert("look-0943", pd.Timestamp(ts("2024-03-05 09:43"), tz="UTC"), snapshot_at)
    engine.run()
    assert [(pd.Timestamp(a.ts_ns, tz="UTC").tz_convert("America/New_York").strftime("%H:%M:%S"), a.subject,
             a.critical) for a in alerts] == [
        ("09:37:30", "Market data silent: QQQ.SIM-1-MINUTE-LAST-EXTERNAL", True),
        ("09:41:00", "Market data back: QQQ.SIM-1-MINUTE-LAST-EXTERNAL", False),
        ("09:47:30", "Market data silent: QQQ.SIM-1-MINUTE-LAST-EXTERNAL", True),
    ]
    assert alerts[0].body == ("No QQQ.SIM-1-MINUTE-LAST-EXTERNAL bar for 150s (its interval plus 60s): "
                              "the strategies on it see nothing.")
    assert alerts[1].body == "QQQ.SIM-1-MINUTE-LAST-EXTERNAL was silent for 360s."
    assert seen["09:39"]["data_connected"] is False
    assert seen["09:39"]["silent_subscriptions"] == {"QQQ.SIM-1-MINUTE-LAST-EXTERNAL": "2024-03-05T14:35:00+00:00"}
    assert seen["09:43"]["data_connected"] is True and seen["09:43"]["silent_subscriptions"] == {}


def test_a_watchdog_recovery_does_not_lift_a_kill_switch_halt():
    watchdog = Watchdog(WatchdogConfig(bar_types=[BAR_TYPE], heartbeat_s=30, broker_grace_s=30))
    bars = minute_bars(INSTRUMENT, [100.0] * 6, "2024-03-05 09:31")
    engine, gate, strategy = build_engine(bars, PERMISSIVE, strategy_config={"first_quantity": 10},
                                          extra_actors=[watchdog])
    calls = {"n": 0}

    def broker_probe() -> bool:
        calls["n"] += 1
        if calls["n"] == 2:  # 09:32:00: the kill switch halts too
            watchdog.msgbus.send(CONTROL_ENDPOINT, RiskControl(ControlAction.HALT, "day loss", "kill_switch"))
        return calls["n"] not in (2, 3, 4)

    watchdog.set_probes(broker=broker_probe, data=lambda: True)
    engine.run()
    assert engine.kernel.risk_engine.trading_state == TradingState.HALTED
    assert gate.halt_reason == "kill_switch: day loss"


def _bars(closes, highs, lows, volumes, start="2024-03-05 09:31"):
    index = pd.date_range(pd.Timestamp(start, tz="America/New_York"), periods=len(closes), freq="1min")
    frame = pd.DataFrame({"open": closes, "high": highs, "low": lows, "close": closes, "volume": volumes},
                         index=index.tz_convert("UTC"))
    return bars_from_frame(INSTRUMENT, BAR_TYPE, frame)


def test_circuit_breakers_alert_and_pause_the_instrument():
    # 20 quiet bars (high-low 0.10, volume 1,000), then bar 21 spans 99.0-101.0 on volume 9,000.
    # Rolling 3-bar range: 0.10 in the quiet part; at bar 21 it is 101.0 - 99.0 = 2.0, 20x the
    # norm (> 4x). Volume 9,000 is 9x the 1,000 average (> 5x). The watchdog sees the bar
    # before the strategy and pauses the instrument for 2 minutes from the spike bar (09:51):
    # the buys at 09:51 and 09:52 are refused, the one at 09:53 passes.
    n = 24
    closes = [100.0] * n
    highs = [100.05] * n
    lows = [99.95] * n
    volumes = [1000.0] * n
    highs[20], lows[20], volumes[20] = 101.0, 99.0, 9000.0
    watchdog = Watchdog(WatchdogConfig(bar_types=[BAR_TYPE], volatility_window=3, norm_bars=10,
                                       pause_on_breaker=True, pause_minutes=2, heartbeat_s=60))
    engine, gate, strategy = build_engine(_bars(closes, highs, lows, volumes), PERMISSIVE,
                                          strategy_config={"first_quantity": 1}, extra_actors=[watchdog])
    engine.run()
    trips = watchdog.snapshot()["circuit_breaker_trips"]
    assert [(t["ts"], t["breaker"]) for t in trips] == [
        ("2024-03-05T14:51:00+00:00", "volatility_spike"),
        ("2024-03-05T14:51:00+00:00", "unusual_volume"),
    ]
    assert trips[0]["detail"] == "SPY.SIM range 2 over the last 3 bars is 20.0x its norm 0.1000"
    assert trips[1]["detail"] == "SPY.SIM volume 9000 is 9.0x the average 1000.0 of the last 10 bars"
    denied_at = [d.ts_init for d in strategy.denied]
    assert denied_at == [ts("2024-03-05 09:51"), ts("2024-03-05 09:52")]
    assert strategy.denied[0].reason == (
        "PreTradeGate trading_halted: SPY.SIM is paused (watchdog: unusual_volume: SPY.SIM volume 9000 "
        "is 9.0x the average 1000.0 of the last 10 bars, until 2024-03-05T14:53:00+00:00)"
    )
    filled = [o for o in engine.cache.orders() if o.status == OrderStatus.FILLED]
    assert len(filled) == n - 2
