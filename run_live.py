"""
Run strategies live: paper or real accounts on Interactive Brokers, or the offline replay feed.

Not built yet: the live node (validated configuration, encrypted secrets, the IB preflight,
the replay adapter) comes with the live-node issue. Until then this exits with a message
rather than pretending to trade.
"""

from __future__ import annotations

import sys

from config.version import version_banner


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    print(version_banner("live"))
    if "--version" in args:
        return 0
    print(
        "run_live.py: the live node is not built yet. Backtest with run_backtest.py; "
        "live and paper trading arrive with the live-node work (see README).",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
