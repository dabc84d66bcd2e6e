"""The GnuCash chart of accounts and where the books live (settings, no behaviour)."""

from __future__ import annotations

from dataclasses import dataclass

EXPORT_MODES = ("auto", "paper", "live", "off")
BOOK_FILES = {"paper": "gnu_paper.gnucash", "live": "gnu_live.gnucash"}


@dataclass(frozen=True)
class ChartOfAccounts:
    """Full account names (GnuCash ':' paths); positions get one STOCK child per symbol."""

    cash: str = "Assets:Broker:Cash"
    positions: str = "Assets:Broker:Positions"
    realized: str = "Income:Trading:Realized Gains"
    commissions: str = "Expenses:Commissions"
    opening: str = "Equity:Opening Balances"
    currency: str = "USD"
    # GnuCash commodity namespace of the stocks (one for all US listings).
    stock_namespace: str = "US-EQUITY"

    def __post_init__(self) -> None:
        tops = {"cash": "Assets", "positions": "Assets", "realized": "Income",
                "commissions": "Expenses", "opening": "Equity"}
        for name, top in tops.items():
            path = getattr(self, name)
            if path.split(":")[0] != top or any(not part for part in path.split(":")):
                raise ValueError(f"ledger account {name} must be a path under {top}:, got {path!r}")


def export_mode_book(export_mode: str, run_mode: str) -> str | None:
    """
    Which book a run writes (GNC_EXPORT_MODE): auto follows the run mode (paper or live;
    backtests write a book only on request), paper or live forces that book, off writes none.
    """
    if export_mode not in EXPORT_MODES:
        raise ValueError(f"GNC_EXPORT_MODE must be one of {', '.join(EXPORT_MODES)}, got {export_mode!r}")
    if export_mode == "off":
        return None
    if export_mode == "auto":
        return BOOK_FILES.get(run_mode)
    return BOOK_FILES[export_mode]
