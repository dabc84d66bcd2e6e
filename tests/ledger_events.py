"""Hand-made fills for tests that do not need an engine."""

from __future__ import annotations

from decimal import Decimal

from actors.fills import FillRecord


def sell_fill_without_position() -> FillRecord:
    return FillRecord(1_709_564_460_000_000_000, "S-1", "SPY.ARCX", "SELL", Decimal("5"),
                      Decimal("101.00"), Decimal("1.00"), "USD", "O-1", "V-1", "E-1", "TAKER", "ib")
