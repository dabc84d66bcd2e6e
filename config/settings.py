"""
The settings of a live run: one schema for every key of the bot's env file, the secrets, and
the validation that reports every problem at once.

The env file holds `KEY=VALUE` lines (`#` starts a comment line, blank lines are ignored,
values may be quoted). Every key is declared once in SCHEMA with its form, default and meaning;
`config/env_bot.template` is generated from SCHEMA (`python -m config template`) and a test
keeps the two identical. Secrets (SECRET keys) are only accepted from a secrets file (the
Fernet-encrypted one, or a plain, git-ignored one), never from the env file, and are held as
`Secret` so they never print.

Every problem names the key, the expected form and the value found, with the file and line it
came from: `bot.env:7: WEIGHTS: 4 weights must sum to 1.0, got 0.4,0.2,0.2,0.1`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from decimal import InvalidOperation
from pathlib import Path
from typing import Any

from config.ledger import EXPORT_MODES
from config.risk import RiskConfig
from config.secrets import Secret

MODES = ("dry-run", "paper", "live")
BROKERS = ("ib", "replay")
TRADE_LOG_FORMATS = ("csv", "json")
ENGINE_LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MARKET_DATA_TYPES = ("REALTIME", "FROZEN", "DELAYED", "DELAYED_FROZEN")
CACHE_BACKENDS = ("memory", "redis")
BEARISH_CHOICES = ("inverse_etf", "disabled")
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class SettingsError(ValueError):
    """Every problem found in a settings file, one a line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Problem:
    key: str
    message: str
    source: str = ""  # "file:line" or "" for a key that is absent

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.key}: {self.message}"


class _Invalid(ValueError):
    """A value not of the expected form; the message says what was expected."""


# -- value forms ------------------------------------------------------------------------------


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options:
            raise _Invalid(f"expected one of {', '.join(options)}, got {raw!r}")
        return raw

    parse.form = " | ".join(options)  # type: ignore[attr-defined]
    return parse


def _bool(raw: str) -> bool:
    low = raw.lower()
    if low in ("true", "yes", "1", "on"):
        return True
    if low in ("false", "no", "0", "off"):
        return False
    raise _Invalid(f"expected true or false, got {raw!r}")


_bool.form = "true | false"  # type: ignore[attr-defined]


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise _Invalid(f"expected an integer from {low} to {high}, got {raw!r}") from None
        if not low <= value <= high:
            raise _Invalid(f"expected an integer from {low} to {high}, got {raw!r}")
        return value

    parse.form = f"integer {low}..{high}"  # type: ignore[attr-defined]
    return parse


def _decimal(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise _Invalid(f"expected a number, got {raw!r}") from None
    if not value.is_finite():
        raise _Invalid(f"expected a finite number, got {raw!r}")
    return value


def _decimal_range(low: Decimal, high: Decimal, low_open: bool = False) -> Callable[[str], Decimal]:
    bracket = "(" if low_open else "["

    def parse(raw: str) -> Decimal:
        try:
            value = _decimal(raw)
        except _Invalid:
            raise _Invalid(f"expected a number in {bracket}{low}, {high}], got {raw!r}") from None
        if value > high or value < low or (low_open and value == low):
            raise _Invalid(f"expected a number in {bracket}{low}, {high}], got {raw!r}")
        return value

    parse.form = f"number in {bracket}{low}, {high}]"  # type: ignore[attr-defined]
    return parse


def _percent(raw: str) -> Decimal:
    """
    A percent, written `2.5%` or `2.5`. A bare number below 1 is refused: `0.05` is 0.05% to
    this file and 5% to the many bots that write fractions, and a limit read a hundred times too
    tight or too loose must never pass unnoticed; with the sign it is unambiguous (`0.5%`).
    """
    text = raw.strip()
    signed = text.endswith("%")
    number = _decimal_range(Decimal(0), Decimal(100), low_open=True)(text.removesuffix("%").rstrip())
    if not signed and number < 1:
        raise _Invalid(
            f"{raw!r} is ambiguous: as a percent it is {number.normalize():f}%, as a fraction "
            f"{(number * 100).normalize():f}%; write {number.normalize():f}% or "
            f"{(number * 100).normalize():f}% (values below 1 need the % sign)",
        )
    return number


_percent.form = "percent in (0, 100], e.g. 2.5% (below 1 only with the % sign: 0.5%)"  # type: ignore[attr-defined]


def _optional_decimal(raw: str) -> Decimal | None:
    if raw == "":
        return None
    value = _decimal(raw)
    if value <= 0:
        raise _Invalid(f"expected a positive number or nothing, got {raw!r}")
    return value


_optional_decimal.form = "positive number, or empty for none"  # type: ignore[attr-defined]


def _symbol(raw: str) -> str:
    if not _SYMBOL.match(raw):
        raise _Invalid(f"expected a ticker symbol in capitals (e.g. SPY), got {raw!r}")
    return raw


_symbol.form = "ticker symbol"  # type: ignore[attr-defined]


def _distinct_list(
    pattern: re.Pattern[str], items_text: str, example: str, item: str, form: str,
) -> Callable[[str], tuple[str, ...]]:
    """A parser of comma-separated items that each match `pattern` and appear once."""

    def parse(raw: str) -> tuple[str, ...]:
        items = tuple(s.strip() for s in raw.split(","))
        if not raw or any(not pattern.match(s) for s in items):
            raise _Invalid(f"expected comma-separated {items_text} (e.g. {example}), got {raw!r}")
        if len(set(items)) != len(items):
            raise _Invalid(f"expected each {item} once, got {raw!r}")
        return items

    parse.form = form  # type: ignore[attr-defined]
    return parse


_symbols = _distinct_list(
    _SYMBOL, "ticker symbols", "SPY,QQQ", "symbol", "comma-separated ticker symbols",
)
_names = _distinct_list(
    _NAME, "strategy names", "core_rsi,ma_cross", "strategy",
    "comma-separated strategy names, in priority order",
)

_hosts = _distinct_list(
    re.compile(r"^[A-Za-z0-9.-]+$"), "host names or IPv4 addresses", "127.0.0.1,localhost", "host",
    "comma-separated host names or IPv4 addresses",
)


def _weights(raw: str) -> tuple[Decimal, ...]:
    if raw == "":
        return ()
    try:
        items = tuple(Decimal(s.strip()) for s in raw.split(","))
    except InvalidOperation:
        raise _Invalid(f"expected comma-separated numbers (e.g. 0.5,0.5), got {raw!r}") from None
    if any(not w.is_finite() or w <= 0 for w in items):
        raise _Invalid(f"expected positive weights, got {raw!r}")
    return items


_weights.form = "comma-separated numbers summing to 1.0, one per strategy"  # type: ignore[attr-defined]


def _clock_time(raw: str) -> dt.time:
    try:
        return dt.datetime.strptime(raw, "%H:%M").time()
    except ValueError:
        raise _Invalid(f"expected a time HH:MM (exchange time), got {raw!r}") from None


_clock_time.form = "HH:MM, America/New_York"  # type: ignore[attr-defined]


def _optional_clock_time(raw: str) -> dt.time | None:
    return None if raw == "" else _clock_time(raw)


_optional_clock_time.form = "HH:MM, America/New_York, or empty"  # type: ignore[attr-defined]


def _date(raw: str) -> dt.date | None:
    if raw == "":
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise _Invalid(f"expected a date YYYY-MM-DD, got {raw!r}") from None


_date.form = "YYYY-MM-DD, or empty"  # type: ignore[attr-defined]


def _speed(raw: str) -> float:
    """'realtime' -> 1, 'x60' -> 60, 'max' -> 0 (as fast as the node takes the data)."""
    if raw == "realtime":
        return 1.0
    if raw == "max":
        return 0.0
    if raw.startswith("x"):
        try:
            value = float(raw[1:])
        except ValueError:
            value = -1.0
        if value > 0:
            return value
    raise _Invalid(f"expected realtime, xN (N > 0, e.g. x60) or max, got {raw!r}")


_speed.form = "realtime | xN | max"  # type: ignore[attr-defined]


def _text(raw: str) -> str:
    return raw


_text.form = "text"  # type: ignore[attr-defined]


def _path(raw: str) -> Path | None:
    return Path(raw).expanduser() if raw else None


_path.form = "path, or empty"  # type: ignore[attr-defined]


def _trader_id(raw: str) -> str:
    if not re.match(r"^[A-Z][A-Z0-9]*-[A-Z0-9]+$", raw):
        raise _Invalid(f"expected NAME-TAG in capitals and digits (e.g. BOT-001), got {raw!r}")
    return raw


_trader_id.form = "NAME-TAG, e.g. BOT-001"  # type: ignore[attr-defined]


def _emails(raw: str) -> tuple[str, ...]:
    if raw == "":
        return ()
    items = tuple(s.strip() for s in raw.split(","))
    if any(not re.match(r"^[^@\s,]+@[^@\s,]+$", s) for s in items):
        raise _Invalid(f"expected comma-separated e-mail addresses, got {raw!r}")
    return items


_emails.form = "comma-separated e-mail addresses"  # type: ignore[attr-defined]


def _host(raw: str) -> str:
    if not raw or any(c.isspace() for c in raw):
        raise _Invalid(f"expected a host name or IP address, got {raw!r}")
    return raw


_host.form = "host name or IP address"  # type: ignore[attr-defined]


def _networks(raw: str) -> tuple[str, ...]:
    if raw == "":
        return ()
    items = tuple(s.strip() for s in raw.split(","))
    for item in items:
        try:
            ipaddress.ip_network(item)
        except ValueError:
            raise _Invalid(f"expected comma-separated IP addresses or networks (e.g. 127.0.0.1,"
                           f"10.0.0.0/8), got {item!r}") from None
    return items


_networks.form = "comma-separated IP addresses or networks, or empty"  # type: ignore[attr-defined]


# -- the schema -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    name: str
    parse: Callable[[str], Any]
    default: str | None  # None: no default (required where `required` says, else absent)
    meaning: str
    section: str
    secret: bool = False
    # (mode, broker) pairs that need the key set explicitly; "*" matches any.
    required: tuple[tuple[str, str], ...] = ()
    risk_field: str | None = None  # the RiskConfig field it maps onto

    @property
    def form(self) -> str:
        return getattr(self.parse, "form", "text")

    def required_for(self, mode: str, broker: str) -> bool:
        return any(m in ("*", mode) and b in ("*", broker) for m, b in self.required)


def _k(*args: Any, **kwargs: Any) -> Key:
    return Key(*args, **kwargs)


SCHEMA: tuple[Key, ...] = (
    # run
    _k("MODE", _choice(MODES), "paper",
       "dry-run: live data, orders logged never sent; paper: IB paper account or the replay feed "
       "with simulated fills; live: real money (needs LIVE_CONFIRM or --confirm-live)", "run"),
    _k("BROKER", _choice(BROKERS), "replay", "ib: Interactive Brokers gateway; replay: the "
       "offline replay of a catalog with simulated (sandbox) execution", "run"),
    _k("LIVE_CONFIRM", _bool, "false", "the explicit confirmation a live run needs", "run"),
    _k("STRATEGIES", _names, "ma_cross", "the strategy sequence, in priority order", "run"),
    _k("SYMBOLS", _symbols, "SPY", "the symbols each strategy trades", "run"),
    _k("ALLOCATION", _percent, "100%", "share of account equity the bot may use, percent; when "
       "ALLOCATION or WEIGHTS is set, each strategy with a capital_fraction parameter gets "
       "ALLOCATION x its weight (otherwise the strategies' own defaults apply)", "run"),
    _k("WEIGHTS", _weights, "", "each strategy's share of the allocation, in STRATEGIES order; "
       "empty: equal shares", "run"),
    _k("BEARISH_INSTRUMENT", _choice(BEARISH_CHOICES), "inverse_etf", "how strategies with a "
       "bearish side express it (their bearish_instrument): a 1x inverse ETF, or disabled (long "
       "puts are not supported yet)", "run"),
    _k("STARTING_CAPITAL", _decimal_range(Decimal(1), Decimal(10**9)), "100000",
       "USD starting cash of the simulated (replay) account", "run"),
    # risk limits (RiskConfig)
    _k("DISABLE_ALL_TRADES", _bool, "false", "refuse every order that opens or adds exposure",
       "risk", risk_field="disable_all_trades"),
    _k("MAX_RISK_PER_TRADE", _percent, "2.5%", "quantity x stop distance, percent of equity",
       "risk", required=(("live", "*"),), risk_field="max_risk_per_trade_pct"),
    _k("MAX_OPEN_RISK", _percent, "5%", "sum of open positions' and orders' risk, percent of equity",
       "risk", risk_field="max_open_risk_pct"),
    _k("DEFAULT_STOP", _percent, "2%", "stop distance assumed for an order without a stop, percent",
       "risk", risk_field="default_stop_pct"),
    _k("SYMBOL_CAP", _percent, "10%", "market value one symbol may reach, percent of equity",
       "risk", risk_field="symbol_cap_pct"),
    _k("MAX_OPEN_POSITIONS", _int_range(1, 1000), "10", "distinct symbols held at once", "risk",
       risk_field="max_open_positions"),
    _k("MAX_SPREAD", _percent, "1.5%", "widest accepted bid-ask spread, percent of the mid",
       "risk", risk_field="max_spread_pct"),
    _k("REQUIRE_QUOTES", _bool, "false", "refuse orders while no quote is known", "risk",
       risk_field="require_quotes"),
    _k("MIN_PRICE", _decimal_range(Decimal(0), Decimal(10**6)), "1", "lowest tradable price, USD",
       "risk", risk_field="min_price"),
    _k("MAX_PRICE", _decimal_range(Decimal(0), Decimal(10**6), low_open=True), "10000",
       "highest tradable price, USD", "risk", risk_field="max_price"),
    _k("MIN_VOLUME_THRESHOLD", _decimal_range(Decimal(0), Decimal(10**12)), "1000",
       "least average volume per bar", "risk", risk_field="min_volume_threshold"),
    _k("MAX_SLIPPAGE", _percent, "0.5%", "largest expected slippage, percent", "risk",
       risk_field="max_slippage_pct"),
    _k("DAILY_LOSS_LIMIT", _percent, "5%", "day loss (percent of the day's start equity) that "
       "halts trading", "risk", required=(("live", "*"),), risk_field="daily_loss_limit_pct"),
    _k("MAX_DRAWDOWN", _percent, "10%", "drawdown from the peak (percent) that switches to "
       "reduce-only", "risk", risk_field="max_drawdown_pct"),
    _k("FLATTEN_ON_HALT", _bool, "true", "the kill switch closes positions when it halts", "risk",
       risk_field="flatten_on_halt"),
    _k("API_RETRY_LIMIT", _int_range(0, 100), "3", "retries of a transient broker error", "risk",
       risk_field="api_retry_limit"),
    _k("CRITICAL_ERROR_LIMIT", _int_range(1, 1000), "5", "critical errors before trading halts",
       "risk", risk_field="critical_error_limit"),
    _k("MAX_NOTIONAL_PER_ORDER", _decimal_range(Decimal(1), Decimal(10**9)), "1000000",
       "the Nautilus RiskEngine's cap per order, USD", "risk", risk_field="max_notional_per_order"),
    # filters
    _k("VIX_MIN", _optional_decimal, "", "VIX gate of strategies that have one (min_vix): no "
       "entries in a session whose latest VIX close is below this; empty: off", "filters"),
    _k("EXTENDED_HOURS", _bool, "false", "trade pre-market and after-hours (orders marked "
       "outsideRth live)", "filters"),
    # timing
    _k("TRADING_START", _optional_clock_time, "09:30", "first time new entries (orders that open "
       "or add to a position) are taken, every strategy, in the pre-trade gate; exits and "
       "cancels pass at any time; no entries on days without an NYSE session; empty together "
       "with TRADING_END: no window (backtests have none unless their RiskConfig sets one)",
       "timing", risk_field="trading_start"),
    _k("TRADING_END", _optional_clock_time, "16:00", "last time new entries are taken, "
       "inclusive (cut at an early close: 13:00 on a half day)", "timing",
       risk_field="trading_end"),
    _k("WARMUP_DAYS", _int_range(0, 3650), "70", "calendar days of IB history read at start by "
       "strategies that warm up (warmup_days: core RSI's weekly RSI needs its period + 1 NYSE "
       "weeks, the session strategies' average daily volume 20 sessions); 0: none, they wait "
       "for live bars; the replay starts cold as its backtest does",
       "timing"),
    _k("HEARTBEAT_SECONDS", _int_range(1, 3600), "5", "watchdog connectivity check interval",
       "timing"),
    _k("BROKER_GRACE_SECONDS", _int_range(1, 3600), "30", "broker outage tolerated before new "
       "orders halt", "timing"),
    _k("CONNECT_TIMEOUT_SECONDS", _int_range(1, 600), "20", "how long the node's clients may "
       "take to connect after start before the run stops with an error", "timing"),
    _k("CANCEL_ON_SHUTDOWN", _bool, "true", "cancel working orders on a graceful shutdown",
       "timing"),
    # notifications
    _k("NOTIFY_EMAIL", _bool, "false", "send alerts by e-mail (needs the SMTP_ keys)",
       "notifications"),
    _k("NOTIFY_ON_SIGNAL", _bool, "true", "mail signals", "notifications"),
    _k("NOTIFY_ON_FILL", _bool, "true", "mail fills", "notifications"),
    _k("SMTP_HOST", _host, None, "SMTP server", "notifications"),
    _k("SMTP_PORT", _int_range(1, 65535), "587", "SMTP port", "notifications"),
    _k("SMTP_USERNAME", _text, "", "SMTP login; empty: no login", "notifications"),
    _k("SMTP_STARTTLS", _bool, "true", "upgrade the SMTP connection with STARTTLS",
       "notifications"),
    _k("SMTP_SENDER", _text, None, "From address of alert mails", "notifications"),
    _k("SMTP_RECIPIENTS", _emails, None, "comma-separated alert recipients", "notifications"),
    # records and logs
    _k("JOURNAL", _bool, "true", "keep the trade journal (database, trade_history, strategy logs, "
       "daily_summary.json in STATE_DIR); dry runs keep none", "records"),
    _k("JOURNAL_URL", _text, "", "journal database URL (sqlite:///... or postgresql+psycopg2://...); "
       "empty: STATE_DIR/journal_<mode>.sqlite", "records"),
    _k("JOURNAL_SCHEMA", _text, "", "PostgreSQL schema of the journal tables; empty: the default",
       "records"),
    _k("GNC_EXPORT_MODE", _choice(EXPORT_MODES), "auto", "GnuCash book: auto follows the mode "
       "(gnu_paper.gnucash / gnu_live.gnucash in STATE_DIR), paper or live forces one, off: none",
       "records"),
    _k("LOG_FORMAT", _choice(TRADE_LOG_FORMATS), "csv", "trade_history.csv or trade_history.json "
       "(one JSON object a line)", "records"),
    _k("ENGINE_LOG_FORMAT", _choice(ENGINE_LOG_FORMATS), "text", "engine log file as text or JSON "
       "lines", "records"),
    _k("LOG_LEVEL", _choice(LOG_LEVELS), "INFO", "engine log level", "records"),
    _k("TRADER_ID", _trader_id, "BOT-001", "the Nautilus trader id; names the run's records "
       "and its Redis keys (one id per bot sharing a Redis)", "records"),
    _k("STATE_DIR", _path, "live_state", "run state: control files, snapshots, strategy state, "
       "logs", "records"),
    _k("CACHE_BACKEND", _choice(CACHE_BACKENDS), "memory", "memory: orders and positions are "
       "rebuilt from the venue at start (reconciliation); redis: also kept in Redis", "records"),
    _k("REDIS_HOST", _host, "127.0.0.1", "Redis host for CACHE_BACKEND=redis", "records"),
    _k("REDIS_PORT", _int_range(1, 65535), "6379", "Redis port", "records"),
    # Interactive Brokers
    _k("IB_HOST", _host, "127.0.0.1", "IB Gateway / TWS host", "ib"),
    _k("IB_PORT", _int_range(1, 65535), "4002", "IB Gateway port (4002 paper, 4001 live; TWS "
       "7497/7496)", "ib"),
    _k("IB_CLIENT_ID", _int_range(0, 2**31 - 1), "1", "API client id", "ib"),
    _k("IB_ACCOUNT", _text, None, "the account id (DU... paper, U... live)", "ib",
       required=(("paper", "ib"), ("live", "ib"), ("dry-run", "ib"))),
    _k("IB_MARKET_DATA_TYPE", _choice(MARKET_DATA_TYPES), "REALTIME", "IB market data type "
       "(DELAYED_FROZEN for an account without a data subscription)", "ib"),
    _k("IB_PREFLIGHT_TIMEOUT_SECONDS", _int_range(1, 60), "5", "how long the preflight waits "
       "for the gateway", "ib"),
    # replay
    _k("REPLAY_CATALOG", _path, "", "catalog to replay; empty: the embedded sample", "replay"),
    _k("REPLAY_START", _date, "", "first session date replayed; empty: the catalog's last "
       "session", "replay"),
    _k("REPLAY_END", _date, "", "last session date replayed; empty: REPLAY_START", "replay"),
    _k("REPLAY_SPEED", _speed, "realtime", "realtime, xN (N times faster) or max", "replay"),
    # web dashboard (python -m web)
    _k("WEB_HOST", _host, "127.0.0.1", "address the dashboard listens on (loopback unless you "
       "mean to expose it)", "web"),
    _k("WEB_PORT", _int_range(1, 65535), "8080", "dashboard port", "web"),
    _k("WEB_USER", _text, "admin", "dashboard login name (the password is WEB_PASSWORD in the "
       "secrets file)", "web"),
    _k("WEB_SESSION_HOURS", _int_range(1, 720), "12", "how long a dashboard login lasts", "web"),
    _k("WEB_NODE_STALE_SECONDS", _int_range(2, 300), "5", "the node's snapshot (rewritten every "
       "second) older than this: the dashboard shows the node as not responding and refuses "
       "control actions", "web"),
    _k("WEB_ALLOWED_HOSTS", _hosts, "127.0.0.1,localhost", "the names the dashboard answers to "
       "in the Host header (any other is refused, as a DNS-rebinding page would send its own); "
       "WEB_HOST itself is always allowed unless it is 0.0.0.0", "web"),
    _k("WEB_TRUSTED_PROXIES", _networks, "", "reverse proxies whose X-Forwarded-For and "
       "X-Forwarded-Proto the dashboard believes; empty: none, the connecting address is the "
       "client (login limits count per address and per user name)", "web"),
    _k("WEB_MAX_BODY_BYTES", _int_range(1024, 10_485_760), "65536", "request bodies larger than "
       "this are refused (413) before they are read", "web"),
    _k("WEB_COMMAND_EXPIRY_SECONDS", _int_range(1, 3600), "10", "a dashboard command the node "
       "has not taken within this is discarded, never run late", "web"),
    _k("BACKTEST_RESULTS", _path, "backtest_results", "folder of run_backtest.py results the "
       "dashboard lists", "web"),
    # secrets (only from the secrets file)
    _k("SECRETS_FILE", _path, "", "the Fernet-encrypted secrets file (python -m config "
       "encrypt); empty: none", "secrets"),
    _k("IB_PASSWORD", _text, None, "IB login (used by a dockerized gateway)", "secrets",
       secret=True),
    _k("SMTP_PASSWORD", _text, None, "SMTP login password", "secrets", secret=True),
    _k("WEB_PASSWORD", _text, None, "dashboard login", "secrets", secret=True),
)
KEYS: dict[str, Key] = {key.name: key for key in SCHEMA}
SECRET_KEYS = tuple(key.name for key in SCHEMA if key.secret)


# -- reading files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    value: str
    source: str  # file:line


def _unquote(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def _strip_inline_comment(raw: str) -> tuple[str, str | None]:
    """
    A value without its trailing `# comment` (a `#` after whitespace, as shells read it); a `#`
    inside quotes or without whitespace before it (`pa#ss`) is part of the value. Returns the
    value and a problem for a quoted value followed by anything but a comment.
    """
    text = raw.strip()
    if text[:1] in ("'", '"'):
        end = text.find(text[0], 1)
        if end > 0:
            rest = text[end + 1:].strip()
            if rest and not rest.startswith("#"):
                return raw, f"unexpected text {rest!r} after the quoted value; a comment starts with #"
            return text[: end + 1], None
    match = re.search(r"\s#", raw)
    return (raw[: match.start()] if match else raw), None


def parse_env_text(text: str, origin: str) -> tuple[dict[str, Entry], list[Problem]]:
    """`KEY=VALUE` lines -> entries with their file:line; malformed lines are problems."""
    entries: dict[str, Entry] = {}
    problems: list[Problem] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        source = f"{origin}:{lineno}"
        if stripped.startswith("export "):
            stripped = stripped[len("export "):].lstrip()
        name, sep, raw = stripped.partition("=")
        raw, comment_problem = _strip_inline_comment(raw)
        if comment_problem:
            problems.append(Problem(name.strip(), comment_problem, f"{origin}:{lineno}"))
            continue
        name = name.strip()
        if not sep or not re.match(r"^[A-Z][A-Z0-9_]*$", name):
            shown = stripped if not sep else name
            problems.append(Problem(
                "(syntax)", f"expected KEY=VALUE with KEY in capitals, got {shown!r}", source,
            ))
            continue
        if name in entries:
            problems.append(Problem(
                name, f"set twice (first at {entries[name].source}); expected once", source,
            ))
            continue
        entries[name] = Entry(_unquote(raw), source)
    return entries, problems


# -- the settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)  # key -> file:line (absent: default)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def get(self, name: str) -> Any:
        return self.values.get(name)

    @property
    def mode(self) -> str:
        return self.values["MODE"]

    @property
    def broker(self) -> str:
        return self.values["BROKER"]

    @property
    def strategies(self) -> tuple[str, ...]:
        return self.values["STRATEGIES"]

    def strategy_weights(self) -> dict[str, Decimal]:
        """Each strategy's share of the allocated equity (WEIGHTS x ALLOCATION / 100)."""
        names = self.strategies
        weights = self.values["WEIGHTS"] or tuple(Decimal(1) / len(names) for _ in names)
        allocation = self.values["ALLOCATION"] / Decimal(100)
        return {name: weight * allocation for name, weight in zip(names, weights, strict=True)}

    def explicitly_set(self, name: str) -> bool:
        return name in self.sources

    def risk_config(self) -> RiskConfig:
        fields = {key.risk_field: self.values[key.name] for key in SCHEMA if key.risk_field}
        return RiskConfig(**fields)

    def public(self) -> dict[str, Any]:
        """Every value as plain text for logs, reports and the dashboard; secrets masked."""
        out: dict[str, Any] = {}
        for name, value in self.values.items():
            if isinstance(value, Secret) or name in SECRET_KEYS:
                out[name] = str(value) if value is not None else None
            elif isinstance(value, tuple):
                out[name] = ",".join(str(v) for v in value)
            elif value is None:
                out[name] = None
            else:
                out[name] = str(value)
        return out

    def source_of(self, name: str) -> str:
        return self.sources.get(name, "default")


def _cross_checks(values: dict[str, Any], sources: dict[str, str]) -> list[Problem]:
    problems: list[Problem] = []

    def src(name: str) -> str:
        return sources.get(name, "")

    strategies = values.get("STRATEGIES")
    weights = values.get("WEIGHTS")
    if strategies is not None and weights:
        shown = ",".join(str(w) for w in weights)
        if len(weights) != len(strategies):
            problems.append(Problem(
                "WEIGHTS",
                f"expected one weight per strategy ({len(strategies)}: "
                f"{','.join(strategies)}), got {len(weights)} weights {shown}",
                src("WEIGHTS"),
            ))
        elif sum(weights) != Decimal(1):
            problems.append(Problem(
                "WEIGHTS", f"{len(weights)} weights must sum to 1.0, got {shown}", src("WEIGHTS"),
            ))
    low, high = values.get("MIN_PRICE"), values.get("MAX_PRICE")
    if low is not None and high is not None and low >= high:
        problems.append(Problem(
            "MIN_PRICE", f"expected below MAX_PRICE ({high}), got {low}",
            src("MIN_PRICE") or src("MAX_PRICE"),
        ))
    start, end = values.get("TRADING_START"), values.get("TRADING_END")
    if "TRADING_START" in values and "TRADING_END" in values and (start is None) != (end is None):
        empty, set_ = ("TRADING_START", "TRADING_END") if start is None else ("TRADING_END", "TRADING_START")
        problems.append(Problem(
            empty, f"expected a time like {set_} ({(start or end):%H:%M}), or both empty for no "
            f"entry window, got nothing", src(empty) or src(set_),
        ))
    if start is not None and end is not None and start >= end:
        problems.append(Problem(
            "TRADING_START", f"expected before TRADING_END ({end:%H:%M}), got {start:%H:%M}",
            src("TRADING_START") or src("TRADING_END"),
        ))
    r_start, r_end = values.get("REPLAY_START"), values.get("REPLAY_END")
    if r_start is not None and r_end is not None and r_end < r_start:
        problems.append(Problem(
            "REPLAY_END", f"expected on or after REPLAY_START ({r_start}), got {r_end}",
            src("REPLAY_END"),
        ))
    if values.get("MODE") == "live" and values.get("BROKER") == "replay":
        problems.append(Problem(
            "BROKER", "expected ib in live mode (the replay feed has no real account), got 'replay'",
            src("BROKER") or src("MODE"),
        ))
    if values.get("NOTIFY_EMAIL"):
        for name in ("SMTP_HOST", "SMTP_SENDER", "SMTP_RECIPIENTS"):
            if not values.get(name):
                problems.append(Problem(
                    name, f"required when NOTIFY_EMAIL=true; expected {KEYS[name].form}, got nothing",
                    src("NOTIFY_EMAIL"),
                ))
        if values.get("SMTP_USERNAME") and values.get("SMTP_PASSWORD") is None:
            problems.append(Problem(
                "SMTP_PASSWORD",
                "required with SMTP_USERNAME; expected it in the secrets file, got nothing",
                src("SMTP_USERNAME"),
            ))
    return problems


def build_settings(
    entries: dict[str, Entry],
    secret_entries: dict[str, Entry] | None = None,
    overrides: dict[str, str] | None = None,
    known_strategies: Iterable[str] | None = None,
    problems: list[Problem] | None = None,
    origin: str = "",
) -> Settings:
    """
    Validate env-file entries (+ secrets, + command-line overrides such as --mode) against the
    schema; raises SettingsError listing every problem.
    """
    problems = list(problems or [])
    merged = dict(entries)
    for name, value in (overrides or {}).items():
        merged[name] = Entry(value, "command line")
    for name, entry in merged.items():
        if name not in KEYS:
            close = [k for k in KEYS if k.split("_")[0] == name.split("_")[0]]
            hint = f" (known keys of this kind: {', '.join(close)})" if close else ""
            problems.append(Problem(
                name, f"unknown key; expected one of the keys in config/env_bot.template{hint}, "
                f"got {name}={entry.value!r}", entry.source,
            ))
        elif KEYS[name].secret:
            problems.append(Problem(
                name, "a secret; expected it in the secrets file (python -m config encrypt), "
                "got it in the plain settings (value not shown)", entry.source,
            ))
    for name, entry in (secret_entries or {}).items():
        if name not in KEYS or not KEYS[name].secret:
            problems.append(Problem(
                name, f"not a secret key; expected one of {', '.join(SECRET_KEYS)} "
                "(value not shown)", entry.source,
            ))

    # The mode and broker decide which keys are required, so they are read first.
    def raw_of(name: str) -> str | None:
        if name in merged:
            return merged[name].value
        return KEYS[name].default

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in SCHEMA:
        if key.secret:
            entry = (secret_entries or {}).get(key.name)
            values[key.name] = Secret(entry.value) if entry is not None else None
            if entry is not None:
                sources[key.name] = entry.source
            continue
        entry = merged.get(key.name)
        raw = entry.value if entry is not None else key.default
        if entry is not None:
            sources[key.name] = entry.source
        if raw is None:
            values[key.name] = None
            continue
        try:
            values[key.name] = key.parse(raw)
        except _Invalid as exc:
            problems.append(Problem(key.name, str(exc), entry.source if entry else "default"))
    mode, broker = raw_of("MODE"), raw_of("BROKER")
    for key in SCHEMA:
        if key.required_for(str(mode), str(broker)) and (
            key.name not in merged or merged[key.name].value == ""
        ):
            problems.append(Problem(
                key.name, f"required in {mode} mode with the {broker} broker; expected "
                f"{key.form} ({key.meaning}), got nothing", origin,
            ))
    if known_strategies is not None and isinstance(values.get("STRATEGIES"), tuple):
        known = set(known_strategies)
        unknown = [name for name in values["STRATEGIES"] if name not in known]
        if unknown:
            problems.append(Problem(
                "STRATEGIES", f"expected names from {', '.join(sorted(known))}, got unknown "
                f"{', '.join(unknown)}", sources.get("STRATEGIES", "default"),
            ))
    problems += _cross_checks(values, sources)
    if not problems:
        try:
            Settings(values, sources).risk_config()
        except ValueError as exc:
            problems.append(Problem("(risk limits)", str(exc)))
    if problems:
        raise SettingsError(problems)
    return Settings(values, sources)


def load_settings(
    path: Path | None,
    overrides: dict[str, str] | None = None,
    known_strategies: Iterable[str] | None = None,
    key_file: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """The env file (None: defaults only), its secrets file, and the command-line overrides."""
    from config.secrets import SecretsError
    from config.secrets import decrypt_file
    from config.secrets import load_key

    problems: list[Problem] = []
    entries: dict[str, Entry] = {}
    if path is not None:
        try:
            text = path.read_text()
        except OSError as exc:
            raise SettingsError([Problem("--config", f"cannot read {path}: {exc.strerror}")]) from None
        entries, problems = parse_env_text(text, str(path))
    secret_entries: dict[str, Entry] = {}
    secrets_entry = entries.get("SECRETS_FILE")
    if secrets_entry is not None and secrets_entry.value:
        secrets_path = Path(secrets_entry.value).expanduser()
        if path is not None and not secrets_path.is_absolute():
            secrets_path = path.parent / secrets_path
        try:
            if secrets_path.suffix == ".secrets" or secrets_path.name == "secrets.env":
                # A plain secrets file (git-ignored by its name); handy on a dev machine.
                secret_text = secrets_path.read_text()
            else:
                key, key_source = load_key(key_file, environ)
                secret_text = decrypt_file(secrets_path, key, key_source)
        except SecretsError as exc:
            problems.append(Problem("SECRETS_FILE", str(exc), secrets_entry.source))
        except OSError as exc:
            problems.append(Problem(
                "SECRETS_FILE", f"expected a readable file, got {str(secrets_path)!r} "
                f"({exc.strerror})", secrets_entry.source,
            ))
        else:
            secret_entries, secret_problems = parse_env_text(secret_text, str(secrets_path))
            # A malformed secrets line could hold a password: report the line, not its text.
            problems += [
                Problem(p.key, "expected KEY=VALUE (line not shown)", p.source)
                if p.key == "(syntax)" else p
                for p in secret_problems
            ]
    return build_settings(
        entries, secret_entries, overrides, known_strategies, problems,
        origin=str(path) if path is not None else "",
    )


def render_template() -> str:
    """config/env_bot.template: every key, its form, default and meaning, grouped by section."""
    lines = [
        "# Settings of a live run (run_live.py --config FILE). Every key the bot knows is listed",
        "# here with its default; remove the leading '# ' to set one. Unknown keys are errors.",
        "# Generated from config/settings.py (python -m config template); keep them in step.",
        "#",
        "# Percents are written with the sign (DAILY_LOSS_LIMIT=5%); a bare number is read as a",
        "# percent too (5 is 5%), but a bare number below 1 is refused as ambiguous: write 0.5%, or",
        "# 5% for the fraction 0.05. A value may end in a comment after a space: KEY=value  # why",
        "# (quote a value that holds ' #').",
        "#",
        "# Secrets (*_PASSWORD) never go in this file: put them in a secrets file, encrypt it with",
        "# `python -m config encrypt PLAIN OUT` and name OUT in SECRETS_FILE.",
    ]
    section = None
    for key in SCHEMA:
        if key.section != section:
            section = key.section
            lines += ["", f"# ---- {section} " + "-" * (70 - len(section))]
        lines.append(f"# {key.meaning}.")
        required = ", ".join(f"{m}/{b}" for m, b in key.required)
        lines.append(f"# Form: {key.form}." + (f" Required for {required}." if required else ""))
        if key.secret:
            lines.append(f"# (secrets file only) {key.name}=")
        elif key.default is None:
            lines.append(f"# {key.name}=")
        else:
            lines.append(f"# {key.name}={key.default}")
    return "\n".join(lines) + "\n"
