"""
How bearish signals are expressed: buying a 1x inverse ETF mapped to the underlying, never a
short sale and never a leveraged ETF. Long puts are named in config but not yet supported.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping

BEARISH_CHOICES = ("inverse_etf", "long_put", "disabled")

# Underlying -> 1x inverse ETF (ProShares Short S&P500, QQQ, Dow30, Russell2000).
DEFAULT_INVERSE_ETFS: dict[str, str] = {"SPY": "SH", "QQQ": "PSQ", "DIA": "DOG", "IWM": "RWM"}

# Leveraged and inverse-leveraged ETFs (2x, 3x, -2x, -3x, and volatility products with a
# leverage factor): never bought by any strategy. The listings hold several of them.
LEVERAGED_ETFS: frozenset[str] = frozenset(
    {
        "TQQQ", "SQQQ", "QLD", "QID", "SSO", "SDS", "UPRO", "SPXU", "SPXL", "SPXS",
        "SOXL", "SOXS", "TNA", "TZA", "FAS", "FAZ", "TECL", "TECS", "WEBL", "WEBS",
        "NAIL", "UVXY", "SVXY", "UDOW", "SDOW", "DDM", "DXD", "URTY", "SRTY", "LABU",
        "LABD", "TMF", "TMV", "NUGT", "DUST", "YINN", "YANG", "TSLL", "NVDL", "NVDU",
    },
)


def bearish_choice_problems(choice: str) -> list[str]:
    if choice not in BEARISH_CHOICES:
        return [f"bearish_instrument: must be one of {', '.join(BEARISH_CHOICES)}, got {choice!r}"]
    return []


def assert_bearish_supported(choice: str) -> None:
    """Start-up check: long puts are a later issue and must not pass silently."""
    if choice == "long_put":
        raise NotImplementedError(
            "bearish_instrument='long_put' is not yet supported (long puts come in a later "
            "issue); use 'inverse_etf' or 'disabled'",
        )


def leveraged_problems(
    inverse_etfs: Mapping[str, str],
    traded_symbols: Iterable[str],
) -> list[str]:
    """Every leveraged ticker in the inverse map or among the symbols a strategy may buy."""
    problems = [
        f"inverse_etfs: {underlying} -> {inverse} is a leveraged ETF; only 1x inverse ETFs "
        f"are allowed (e.g. SPY -> SH, QQQ -> PSQ)"
        for underlying, inverse in sorted(inverse_etfs.items())
        if inverse in LEVERAGED_ETFS
    ]
    mapped = set(inverse_etfs.values())
    problems += [
        f"watchlist/bar_types: {symbol} is a leveraged ETF and is never traded"
        for symbol in sorted(set(traded_symbols) - mapped)
        if symbol in LEVERAGED_ETFS
    ]
    return problems


def inverse_map_problems(inverse_etfs: Mapping[str, str]) -> list[str]:
    problems = []
    for underlying, inverse in sorted(inverse_etfs.items()):
        if not underlying or not inverse or underlying == inverse:
            problems.append(f"inverse_etfs: bad pair {underlying!r} -> {inverse!r}")
        elif underlying != underlying.upper() or inverse != inverse.upper():
            problems.append(f"inverse_etfs: symbols are upper case, got {underlying!r} -> {inverse!r}")
    return problems
