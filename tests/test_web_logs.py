"""
The logs page's data: level filters that match what Nautilus writes (`[WARN]`, not WARNING),
each keeping its level and the more severe, in plain and JSON files; and the live tail over the
WebSocket, which sends lines as the node appends them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.test_web_api import login
from tests.web_support import snapshot
from tests.web_support import web_config
from tests.web_support import write_snapshot
from web.app import create_app

LINES = [
    "2024-12-16T15:00:00.000000000Z [INFO] BOT-001.MACross-SPY: bar 572.28",
    "2024-12-16T15:00:01.000000000Z [WARN] BOT-001.Watchdog: Watchdog: Market data down",
    "2024-12-16T15:00:02.000000000Z [ERROR] BOT-001.MACross-SPY: order refused",
    "Traceback (most recent call last):",  # a continuation: the ERROR line's
    "2024-12-16T15:00:03.000000000Z [DEBUG] BOT-001.Cache: nothing",
]


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    write_snapshot(tmp_path, snapshot())
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "node.log").write_text("\n".join(LINES) + "\n")
    client = TestClient(create_app(web_config(tmp_path)))
    login(client)
    return client


@pytest.mark.parametrize(("level", "expected"), [
    ("WARNING", LINES[1:4]),  # what the page sent, which never matched
    ("WARN", LINES[1:4]),
    ("error", LINES[2:4]),
    ("INFO", LINES[:4]),
    ("", LINES),
])
def test_level_filters_match_what_nautilus_writes(client: TestClient, level: str, expected: list[str]) -> None:
    assert client.get("/api/logs", params={"level": level}).json()["lines"] == expected


def test_level_and_strategy_together_and_json_files(client: TestClient, tmp_path: Path) -> None:
    assert client.get("/api/logs", params={"level": "WARN", "strategy": "MACross-SPY"}).json()["lines"] == [LINES[2]]
    entry = {"timestamp": "2024-12-16T15:00:04Z", "trader_id": "BOT-001", "level": "WARN",
             "component": "RiskEngine", "message": "denied"}
    (tmp_path / "logs" / "node.json").write_text(json.dumps(entry, separators=(",", ":")) + "\n")
    assert client.get("/api/logs", params={"level": "WARN"}).json()["lines"][-1] == json.dumps(entry, separators=(",", ":"))


def test_an_unknown_level_is_refused_naming_it(client: TestClient) -> None:
    response = client.get("/api/logs", params={"level": "LOUD"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "level"] and "expected one of DEBUG, INFO, WARN, ERROR" in error["msg"]


def test_the_live_tail_sends_new_lines_as_they_are_written(client: TestClient, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "node.log"
    with client.websocket_connect("/ws/logs?level=WARNING") as ws:
        with log.open("a") as handle:
            handle.write("2024-12-16T15:01:00Z [INFO] BOT-001.X: quiet\n")
            handle.write("2024-12-16T15:01:01Z [WARN] BOT-001.X: loud\n2024-12-16T15:01:02Z [ERR")
        assert json.loads(ws.receive_text()) == {"lines": ["2024-12-16T15:01:01Z [WARN] BOT-001.X: loud"]}
        with log.open("a") as handle:
            handle.write("OR] BOT-001.X: louder\n")  # the line being written, now complete
        assert json.loads(ws.receive_text()) == {"lines": ["2024-12-16T15:01:02Z [ERROR] BOT-001.X: louder"]}
        # A restart writes a fresh file: the tail follows it from its start.
        log.write_text("2024-12-16T16:00:00Z [ERROR] BOT-001.X: after restart\n")
        assert json.loads(ws.receive_text()) == {"lines": ["2024-12-16T16:00:00Z [ERROR] BOT-001.X: after restart"]}


def test_the_live_tail_refuses_an_unknown_level(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws/logs?level=LOUD") as ws:
        ws.receive_text()
    assert refused.value.code == 4422
