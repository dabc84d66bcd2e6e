"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from catalog.sample import ensure_sample_catalog
from catalog.store import DEFAULT_CATALOG


@pytest.fixture(scope="session")
def sample_catalog() -> Path:
    """The embedded sample catalog (generated once, on first use, like the README's demo)."""
    return ensure_sample_catalog(DEFAULT_CATALOG, progress=False)


MARKET_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "market"


@pytest.fixture(scope="session")
def market_data() -> Path:
    """The shared real market data (never in the repo): skipped where absent, except on CI."""
    if not MARKET_DATA.is_dir():
        reason = f"real market data not found at {MARKET_DATA}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return MARKET_DATA
