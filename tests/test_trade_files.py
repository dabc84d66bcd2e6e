import json

import pytest

from actors.trade_files import TRADE_HISTORY_COLUMNS
from actors.trade_files import TradeFileError
from actors.trade_files import TradeHistory
from actors.trade_files import read_trade_history
from actors.trade_files import write_daily_summary


def test_csv_history_appends_with_one_header_across_reopens(tmp_path) -> None:
    TradeHistory(tmp_path, "csv").append({"ticker": "SPY", "side": "BUY", "size": "10"})
    TradeHistory(tmp_path, "csv").append({"ticker": "QQQ", "side": "SELL", "size": "5"})
    lines = (tmp_path / "trade_history.csv").read_text().splitlines()
    assert lines[0] == ",".join(TRADE_HISTORY_COLUMNS)
    assert len(lines) == 3
    assert [r["ticker"] for r in read_trade_history(tmp_path / "trade_history.csv")] == ["SPY", "QQQ"]


def test_json_history_is_json_lines_and_a_bad_line_is_named(tmp_path) -> None:
    history = TradeHistory(tmp_path, "json")
    history.append({"ticker": "SPY", "PnL": "1.50"})
    with (tmp_path / "trade_history.json").open("a") as handle:
        handle.write("{not json\n")
    with pytest.raises(TradeFileError, match=r"trade_history.json line 2: not a JSON object"):
        read_trade_history(tmp_path / "trade_history.json")


def test_a_foreign_csv_header_is_refused_not_rewritten(tmp_path) -> None:
    path = tmp_path / "trade_history.csv"
    path.write_text("date,symbol\n2024-01-02,SPY\n")
    with pytest.raises(TradeFileError, match=r"trade_history.csv line 1: header \['date', 'symbol'\]"):
        TradeHistory(tmp_path, "csv")
    assert path.read_text() == "date,symbol\n2024-01-02,SPY\n"
    with pytest.raises(TradeFileError, match="LOG_FORMAT must be csv or json, got 'xml'"):
        TradeHistory(tmp_path, "xml")


def test_daily_summary_keeps_earlier_sessions(tmp_path) -> None:
    path = tmp_path / "daily_summary.json"
    write_daily_summary(path, "2024-03-04", {"pnl": "1"})
    write_daily_summary(path, "2024-03-05", {"pnl": "2"})
    assert json.loads(path.read_text()) == {"2024-03-04": {"pnl": "1"}, "2024-03-05": {"pnl": "2"}}
