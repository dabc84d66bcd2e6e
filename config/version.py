"""
The one version source: pyproject.toml's [project] version, read with tomllib.

The project is run from a checkout, not installed, so importlib.metadata has no record of it.
"""

from __future__ import annotations

import platform
import tomllib
from functools import cache
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
PROJECT_NAME = "nautilus-equities"


@cache
def project_version(pyproject: Path = PYPROJECT) -> str:
    try:
        with pyproject.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise RuntimeError(f"{pyproject}: not found; the version is read from it") from None
    try:
        return str(data["project"]["version"])
    except KeyError:
        raise RuntimeError(f"{pyproject}: no [project] version field") from None


def version_banner(run_kind: str) -> str:
    """One line naming the project version, the engine version and Python, for every run."""
    import nautilus_trader

    return (
        f"{PROJECT_NAME} {project_version()} ({run_kind}) | nautilus_trader "
        f"{nautilus_trader.__version__} | Python {platform.python_version()}"
    )
