"""
Allocation weights: how a strategy splits its capital among the n candidates that passed.

Weights are exact decimals keyed by the number of candidates; each row must have as many
weights as candidates, all positive, summing to exactly 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from decimal import Decimal

# 1 -> 100%, 2 -> 60/40, 3 -> 40/30/30, 4 -> 40/20/20/20 (the best-ranked candidate first).
DEFAULT_ALLOCATION_WEIGHTS: dict[int, tuple[Decimal, ...]] = {
    1: (Decimal("1"),),
    2: (Decimal("0.6"), Decimal("0.4")),
    3: (Decimal("0.4"), Decimal("0.3"), Decimal("0.3")),
    4: (Decimal("0.4"), Decimal("0.2"), Decimal("0.2"), Decimal("0.2")),
}


def default_allocation_weights() -> dict[int, tuple[Decimal, ...]]:
    return dict(DEFAULT_ALLOCATION_WEIGHTS)


def allocation_problems(
    weights: Mapping[int, Sequence[Decimal]],
    field: str = "allocation_weights",
) -> list[str]:
    """Every reason the table is unusable, each naming the field, the row and its values."""
    problems: list[str] = []
    if not weights:
        return [f"{field}: at least one row (for 1 candidate) is required"]
    counts = sorted(weights)
    if counts != list(range(1, len(counts) + 1)):
        problems.append(f"{field}: rows must be keyed 1..n without gaps, got keys {counts}")
    for n in counts:
        row = tuple(Decimal(w) for w in weights[n])
        shown = "[" + ", ".join(str(w) for w in row) + "]"
        if len(row) != n:
            problems.append(f"{field}[{n}]: expected {n} weights, got {len(row)} {shown}")
        if any(w <= 0 for w in row):
            problems.append(f"{field}[{n}]: every weight must be positive, got {shown}")
        if sum(row, Decimal(0)) != 1:
            problems.append(f"{field}[{n}]: weights {shown} sum to {sum(row, Decimal(0))}, must sum to 1")
    return problems


def weights_for(weights: Mapping[int, Sequence[Decimal]], n_candidates: int) -> tuple[Decimal, ...]:
    """The weights for n ranked candidates; more candidates than rows keeps the top rows' count."""
    if n_candidates <= 0:
        return ()
    n = min(n_candidates, max(weights))
    return tuple(Decimal(w) for w in weights[n])
