"""Fixtures shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.sample import ensure_sample_catalog
from catalog.store import DEFAULT_CATALOG


@pytest.fixture(scope="session")
def sample_catalog() -> Path:
    """The embedded sample catalog (generated once, on first use, like the README's demo)."""
    return ensure_sample_catalog(DEFAULT_CATALOG, progress=False)
