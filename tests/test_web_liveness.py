"""
The dashboard never shows a dead node as alive, and commands never run late: the node's
liveness is judged from its snapshot's age (the dashboard's clock is set by the test, so ages
are chosen, not waited for) and, on this host, from its pid; a node that is not alive answers
/health with 503 and the age, and the dashboard refuses control actions with 409. Every
command carries an expiry; the node discards one taken later into rejected/ with the reason,
and the dashboard reports it expired.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from livenode.control import ControlChannel
from livenode.control import command_outcome
from livenode.control import send_command
from tests.test_web_api import NodeStandIn
from tests.test_web_api import login
from tests.web_support import SNAPSHOT_TS
from tests.web_support import Clock
from tests.web_support import clock_after_snapshot
from tests.web_support import snapshot
from tests.web_support import web_config
from tests.web_support import write_snapshot
from web.app import create_app

SILENT = f"node not responding since {SNAPSHOT_TS}"


def dashboard(state: Path, clock: Clock, **changes: object) -> TestClient:
    write_snapshot(state, snapshot(**changes))
    return TestClient(create_app(web_config(state, clock=clock, command_wait_s=0.2)))


def test_a_node_silent_past_the_limit_is_not_responding(tmp_path: Path) -> None:
    clock = clock_after_snapshot(5.0)  # the limit: still alive
    client = dashboard(tmp_path, clock)
    assert client.get("/health").status_code == 200
    clock.advance(40.0)  # 45 s: what a kill -9 left on the old dashboard as "running"
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json() == {"web": "ok", "node": "not_responding", "since": SNAPSHOT_TS, "age_s": 45,
                             "message": f"{SILENT} (no snapshot for 45 s)"}
    login(client)
    status = client.get("/api/status").json()
    assert status["connected"] is False and status["liveness"]["alive"] is False
    assert status["liveness"]["message"] == f"{SILENT} (no snapshot for 45 s)"
    assert "bot_node_alive 0.0" in client.get("/metrics").text


def test_control_actions_to_a_silent_node_are_refused_with_409(tmp_path: Path) -> None:
    client = dashboard(tmp_path, clock_after_snapshot(45.0))
    headers = {"X-CSRF-Token": login(client)}
    for path, body in (("/api/kill-switch", {"confirm": True}), ("/api/kill-switch/reset", {}),
                       ("/api/strategies/MACross-SPY/pause", {}),
                       ("/api/strategies/MACross-SPY/parameters", {"parameters": {"fast_period": 5}})):
        refused = client.post(path, json=body, headers=headers)
        assert refused.status_code == 409, path
        assert refused.json()["detail"].endswith(f"not sent: {SILENT} (no snapshot for 45 s)")
    assert not list((tmp_path / "control" / "inbox").glob("*.json")), "nothing may wait for the node"


def test_a_node_whose_process_is_gone_is_not_responding_at_once(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    client = dashboard(tmp_path, clock_after_snapshot(1.0), pid=gone.pid)  # stamped with this host
    assert json.loads((tmp_path / "control" / "state.json").read_text())["host"] == socket.gethostname()
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json()["message"] == f"{SILENT}: its process {gone.pid} is gone"
    # The same pid written on another host proves nothing here: the age decides.
    (tmp_path / "control" / "state.json").write_text(json.dumps(snapshot(pid=gone.pid, host="elsewhere")))
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize(("changes", "node", "message"), [
    ({"phase": "stopped"}, "stopped", f"node stopped at {SNAPSHOT_TS}"),
    ({"ts": "yesterday"}, "not_responding", "node snapshot without a valid ts ('yesterday')"),
])
def test_a_stopped_node_or_a_bad_snapshot_is_not_alive(tmp_path: Path, changes: dict, node: str,
                                                         message: str) -> None:
    health = dashboard(tmp_path, clock_after_snapshot(1.0), **changes).get("/health")
    assert health.status_code == 503
    assert (health.json()["node"], health.json()["message"]) == (node, message)


def test_a_node_silent_while_stopping_says_so(tmp_path: Path) -> None:
    health = dashboard(tmp_path, clock_after_snapshot(30.0), phase="stopping").get("/health")
    assert health.status_code == 503
    assert health.json()["message"] == f"node stopping, not responding since {SNAPSHOT_TS} (no snapshot for 30 s)"


def test_no_snapshot_at_all_is_503(tmp_path: Path) -> None:
    client = TestClient(create_app(web_config(tmp_path)))
    assert client.get("/health").status_code == 503
    assert client.get("/health").json()["node"] == "absent"


def test_the_websocket_tells_the_page_when_the_node_falls_silent(tmp_path: Path) -> None:
    clock = clock_after_snapshot(1.0)
    client = dashboard(tmp_path, clock)
    login(client)
    with client.websocket_connect("/ws") as ws:
        first = json.loads(ws.receive_text())
        assert first["node"]["alive"] and first["snapshot"]["phase"] == "running"
        clock.advance(44.0)  # no new snapshot comes; the liveness message still does
        silent = json.loads(ws.receive_text())
        assert "snapshot" not in silent
        assert silent["node"] == {"state": "not_responding", "since": SNAPSHOT_TS, "age_s": 45,
                                  "message": f"{SILENT} (no snapshot for 45 s)", "alive": False}


# -- commands never run late ------------------------------------------------------------------


def test_the_node_discards_an_expired_command_into_rejected_with_the_reason(tmp_path: Path) -> None:
    clock = Clock(1_700_000_000.0)
    channel = ControlChannel(tmp_path, clock=clock)
    stale = send_command(tmp_path, "flatten", "kill switch", "trader (web)", expires_s=10, clock=clock)
    clock.advance(90.0)  # the node comes back 1.5 minutes later
    fresh = send_command(tmp_path, "resume", "lunch over", expires_s=10, clock=clock)
    clock.advance(1.0)
    commands, problems = channel.take_commands()
    assert [c.name for c in commands] == ["resume"]
    reason = "expired: flatten by trader (web) sent 91.0 s ago, valid for 10 s; not applied"
    assert problems == [f"{stale.name}: {reason}"]
    assert (channel.root / "rejected" / stale.name).exists()
    assert command_outcome(tmp_path, stale, clock) == ("expired", reason)
    assert command_outcome(tmp_path, fresh, clock) == ("pending", "")  # taken, being applied


def test_a_command_file_without_its_expiry_is_refused_naming_the_field(tmp_path: Path) -> None:
    channel = ControlChannel(tmp_path)
    (channel.inbox / "old.json").write_text(json.dumps({"command": "halt", "reason": "x"}))
    (channel.inbox / "forever.json").write_text(json.dumps(
        {"command": "halt", "sent_at": 1_700_000_000, "expires_s": 1e9}))
    commands, problems = channel.take_commands()
    assert commands == []
    assert sorted(problems) == [
        "forever.json: expires_s: expected seconds it stays valid, at most 86400, got 1000000000.0",
        "old.json: sent_at: expected the epoch seconds it was sent at, got None",
    ]


def test_the_dashboard_reports_a_command_the_node_did_not_take_in_time(tmp_path: Path) -> None:
    clock = clock_after_snapshot(1.0)
    client = dashboard(tmp_path, clock)
    headers = {"X-CSRF-Token": login(client)}
    # The node's snapshot is fresh but its loop takes nothing (hung): the answer is pending,
    # with the time after which the command never runs.
    pending = client.post("/api/kill-switch", json={"confirm": True}, headers=headers)
    assert pending.status_code == 202
    body = pending.json()
    assert body["status"] == "pending" and body["expires_at"] == "2024-12-16T15:00:11+00:00"
    clock.advance(11.0)
    write_snapshot(tmp_path, snapshot(ts="2024-12-16T15:00:12+00:00"))  # still writing snapshots
    expired = client.get(f"/api/commands/{body['id']}")
    assert expired.status_code == 409 and expired.json()["command"] == "flatten"
    assert expired.json()["detail"] == ("not run: expired: not taken by the node before it "
                                        "expired; it will never run")
    with NodeStandIn(client, tmp_path) as node:  # the node's loop wakes up
        while (tmp_path / "control" / "inbox" / f"{body['id']}.json").exists():
            time.sleep(0.02)
    assert node.taken == []
    discarded = client.get(f"/api/commands/{body['id']}").json()["detail"]
    assert discarded == "not run: expired: flatten by trader (web) sent 11.0 s ago, valid for 10 s; not applied"
    assert client.get("/api/commands/not-an-id").status_code == 422
    assert client.get(f"/api/commands/{'0' * 32}").status_code == 404
