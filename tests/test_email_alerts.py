"""Email alerts against a real aiosmtpd server on loopback (STARTTLS, login, batching, outage)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.email_alerts import EmailAlerts
from actors.email_alerts import EmailAlertsConfig
from actors.email_alerts import EmailSender
from actors.kill_switch import KillSwitch
from actors.kill_switch import KillSwitchConfig
from catalog.instruments import make_instrument
from catalog.store import bar_type_for
from config.risk import RiskConfig
from risk.messages import Alert
from risk.messages import AlertKind
from tests.risk_support import build_engine
from tests.risk_support import minute_bars
from tests.smtp_support import PASSWORD
from tests.smtp_support import USERNAME
from tests.smtp_support import SmtpServer
from tests.smtp_support import free_port
from nautilus_trader.common.actor import Actor
from strategies.records import SignalRecord
from strategies.records import publish_signal

CRASH_CLOSES = [100.0] * 5 + [96.0, 94.0, 92.0, 91.0, 90.0, 89.0, 88.0]
PERMISSIVE = RiskConfig(
    symbol_cap_pct=Decimal(100), max_risk_per_trade_pct=Decimal(100),
    max_open_risk_pct=Decimal(100), min_volume_threshold=Decimal(0),
)


@pytest.fixture
def smtp(tmp_path):
    with SmtpServer(tmp_path) as server:
        yield server


def mail_config(port: int, ca_file: str | None, **overrides) -> EmailAlertsConfig:
    settings = dict(
        host="127.0.0.1", port=port, sender="bot@example.test", recipients=["desk@example.test"],
        username=USERNAME, password=PASSWORD, ca_file=ca_file, batch_window_s=0.3,
        max_attempts=2, retry_delay_s=0.0, timeout_s=5.0,
    )
    settings.update(overrides)
    return EmailAlertsConfig(**settings)


def alert(n: int, kind: AlertKind = AlertKind.SIGNAL, critical: bool = False) -> Alert:
    return Alert(kind, f"signal {n} on SPY", f"body {n}", 1_709_649_060_000_000_000 + n, critical)


def test_an_alert_is_delivered_over_starttls_with_a_login(smtp):
    errors: list[str] = []
    sender = EmailSender(mail_config(smtp.port, str(smtp.cert)), log_error=errors.append)
    sender.submit(alert(1))
    sender.close()
    [message] = smtp.mailbox.wait_for(1)
    assert message["Subject"] == "[nautilus-equities] signal 1 on SPY"
    assert message["To"] == "desk@example.test"
    assert "2024-03-05T14:31:00.000000001+00:00 [signal] signal 1 on SPY" in message.get_content()
    assert smtp.mailbox.tls_sessions == 1 and smtp.mailbox.logins == [USERNAME]
    assert errors == []


def test_a_burst_is_batched_into_one_message(smtp):
    sender = EmailSender(mail_config(smtp.port, str(smtp.cert), batch_window_s=1.0), log_error=print)
    for n in range(5):
        sender.submit(alert(n, critical=n == 3))
    sender.close()
    messages = smtp.mailbox.wait_for(1)
    assert len(messages) == 1
    assert messages[0]["Subject"] == "[nautilus-equities] CRITICAL 5 alerts: signal 0 on SPY (+4 more)"
    body = messages[0].get_content()
    assert [f"signal {n} on SPY" in body for n in range(5)] == [True] * 5


def test_a_down_server_is_logged_retried_and_never_leaks_the_password(tmp_path):
    errors: list[str] = []
    sleeps: list[float] = []
    config = mail_config(free_port(), None, max_attempts=3, retry_delay_s=7.5)
    sender = EmailSender(config, log_error=errors.append, sleep=sleeps.append)
    sender.submit(alert(1))
    sender.close()
    assert sender.failed_attempts == 3 and sender.failed_messages == 1 and sender.sent_messages == 0
    assert sleeps == [7.5, 7.5]
    assert errors[0].startswith(f"Alert email to 127.0.0.1:{config.port} failed (attempt 1/3): ConnectionRefusedError")
    assert errors[-1] == "Alert email dropped after 3 attempts: [nautilus-equities] signal 1 on SPY"
    assert all(PASSWORD not in line for line in errors)
    assert PASSWORD not in repr(config) and PASSWORD not in str(config)


def _crash_engine(tmp_path, email_config: EmailAlertsConfig):
    instrument = make_instrument("SPY")
    bars = minute_bars(instrument, CRASH_CLOSES, "2024-03-05 09:31")
    kill_switch = KillSwitch(KillSwitchConfig(risk=PERMISSIVE, bar_types=[bar_type_for(instrument.id, "1min")]))
    emails = EmailAlerts(email_config)
    engine, gate, strategy = build_engine(
        bars, PERMISSIVE, strategy_config={"first_quantity": 800}, extra_actors=[kill_switch, emails],
    )
    return engine, kill_switch, emails, strategy


def test_kill_switch_alert_is_delivered_by_email_from_a_backtest(smtp, tmp_path):
    config = mail_config(smtp.port, str(smtp.cert), notify_on_fill=False, notify_on_cancel=False,
                         notify_on_exit=False)
    engine, kill_switch, emails, _ = _crash_engine(tmp_path, config)
    engine.run()
    engine.dispose()  # stops the actors: the sender flushes its queue
    [message] = smtp.mailbox.wait_for(1)
    assert message["Subject"] == "[nautilus-equities] CRITICAL Kill switch: trading HALTED, day loss 6.44%"
    assert "equity 93562.00 vs session start 100000.00" in message.get_content()


def test_trading_continues_when_the_smtp_server_is_down(tmp_path):
    config = mail_config(free_port(), None, max_attempts=2)
    engine, kill_switch, emails, strategy = _crash_engine(tmp_path, config)
    engine.run()
    sender = emails.sender
    engine.dispose()
    # The run is the same as with a working server: halt on the 8th bar, position flattened.
    assert [e.action for e in kill_switch.events] == ["HALT"]
    assert engine.portfolio.is_flat(strategy.config.instrument_id)
    assert sender.sent_messages == 0 and sender.failed_messages >= 1
    assert "ConnectionRefusedError" in sender.errors[0]


LOGGED_RUN = """
import sys
from decimal import Decimal
import tests.risk_support as support
from nautilus_trader.config import LoggingConfig
from actors.email_alerts import EmailAlerts, EmailAlertsConfig

engine_config = support.BacktestEngineConfig
support.BacktestEngineConfig = lambda **kw: engine_config(**{**kw, "logging": LoggingConfig(log_level="DEBUG")})
risk = support.RiskConfig(symbol_cap_pct=Decimal(100), max_risk_per_trade_pct=Decimal(100),
                          max_open_risk_pct=Decimal(100), min_volume_threshold=Decimal(0))
instrument = support.make_instrument("SPY")
emails = EmailAlerts(EmailAlertsConfig(
    host="127.0.0.1", port=int(sys.argv[1]), sender="bot@example.test", recipients=["desk@example.test"],
    username="alerts@example.test", password=sys.argv[2], batch_window_s=0.2, max_attempts=2, retry_delay_s=0.0,
))
engine, gate, strategy = support.build_engine(
    support.minute_bars(instrument, [100.0] * 5, "2024-03-05 09:31"), risk, extra_actors=[emails],
)
engine.run()
filled = len(engine.cache.orders_closed())
engine.dispose()
print("FILLS", filled, flush=True)
"""


def test_the_engine_log_shows_the_failure_but_never_the_password(tmp_path):
    # The engine's logger writes from Rust straight to stdout, so the run goes in a child
    # process with full DEBUG logging and its whole output is searched.
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "logged_run.py"
    script.write_text(LOGGED_RUN)
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, str(script), str(free_port()), PASSWORD],
        cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120, check=True,
    )
    output = done.stdout + done.stderr
    assert "FILLS 5" in output  # trading went on: all five buys filled
    assert "Alert email dropped after 2 attempts: [nautilus-equities] 5 alerts: Filled BUY 100 SPY.SIM" in output
    assert "ConnectionRefusedError" in output
    assert PASSWORD not in output


class _SignalPublisher(Actor):
    """Publishes what a strategy publishes when it decides: a signal and a rebalance."""

    def on_start(self) -> None:
        publish_signal(self.msgbus, SignalRecord(1, "CoreRSI-SPY", "SPY.SIM", "rsi_cross_up",
                                                 {"rsi_15m": "31.20"}))
        publish_signal(self.msgbus, SignalRecord(2, "CoreRSI-SPY", "SPY.SIM", "rebalance", {},
                                                 "Rebalance: core 11 shares is above 5%; trimming 1"))


def test_strategy_signals_and_rebalances_are_mailed_each_as_its_kind(smtp):
    config = mail_config(smtp.port, str(smtp.cert), notify_on_fill=False, notify_on_cancel=False,
                         notify_on_exit=False, notify_on_kill_switch=False, notify_on_signal=False)
    instrument = make_instrument("SPY")
    engine, _, _ = build_engine(
        minute_bars(instrument, CRASH_CLOSES[:3], "2024-03-05 09:31"), PERMISSIVE,
        extra_actors=[EmailAlerts(config), _SignalPublisher()],
    )
    engine.run()
    engine.dispose()
    # Signals are switched off: only the rebalance goes out.
    [message] = smtp.mailbox.wait_for(1)
    assert message["Subject"].endswith("rebalance SPY.SIM (CoreRSI-SPY)")
    assert "trimming 1" in message.get_content()
