"""Which of a running strategy's parameters may change: the one check both strategies apply."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec


def refuse_frozen_changes(current: msgspec.Struct, new: msgspec.Struct, live: Iterable[str]) -> None:
    """Raise ValueError naming the first parameter outside `live` that `new` changes."""
    allowed = set(live)
    for name in type(current).__struct_fields__:
        if name not in allowed and getattr(new, name) != getattr(current, name):
            raise ValueError(f"{name} cannot change while the strategy runs")
