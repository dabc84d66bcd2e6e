"""Where the tests' real services are, and how a test skips when one is absent (never on CI)."""

from __future__ import annotations

import os
import shutil
import socket
import uuid

import pytest

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


def on_ci() -> bool:
    return os.environ.get("CI") == "true"


def require(available: bool, reason: str) -> None:
    """Skip when a service is missing; on CI a missing service is a failure."""
    if available:
        return
    if on_ci():
        pytest.fail(f"{reason} (CI=true: the service must be there)")
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_postgres() -> str:
    require(port_open("127.0.0.1", 5432), "no PostgreSQL server on 127.0.0.1:5432")
    return POSTGRES_URL


def unique_schema() -> str:
    return f"test_journal_{uuid.uuid4().hex[:12]}"


def require_gnucash_cli() -> str:
    path = shutil.which("gnucash-cli")
    require(path is not None, "gnucash-cli is not installed (Debian packages gnucash, libdbd-sqlite3)")
    return path
