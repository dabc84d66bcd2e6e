"""
The dashboard under a hostile network, at the HTTP level on loopback (the production CLI
`python -m web` where uvicorn's own configuration matters, the app in-process elsewhere):
forwarded headers believed only from a configured proxy, login limits per address and per user
name, password hashing off the event loop, a Host allow-list, a body-size limit enforced before
reading, WebSockets closed with their session, settings edits that cannot break the env file,
strict request models naming the field, and the security headers.
"""

from __future__ import annotations

import json
import re
import socket
import stat
import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from config.settings import load_settings
from livenode.control import validate_command
from tests.test_web_api import login
from tests.web_support import PASSWORD
from tests.web_support import USER
from tests.web_support import clock_after_snapshot
from tests.web_support import dashboard_process
from tests.web_support import serving
from tests.web_support import snapshot
from tests.web_support import web_config
from tests.web_support import write_snapshot
from web.app import create_app

WRONG = {"username": USER, "password": "wrong"}
GOOD = {"username": USER, "password": PASSWORD}


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    write_snapshot(tmp_path, snapshot())
    return TestClient(create_app(web_config(tmp_path, command_wait_s=0.2)))


def csrf(client: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": login(client)}


# -- forwarded headers, login limits (the production CLI) ----------------------------------------


def test_a_new_x_forwarded_for_per_try_does_not_buy_more_logins(tmp_path: Path) -> None:
    with dashboard_process(tmp_path) as url:
        codes = [httpx.post(f"{url}/api/login", json=WRONG, headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code
                 for i in range(12)]
        assert codes == [401] * 5 + [429] * 7
        # Nor does the right password with a spoofed header while this address is locked.
        spoofed = httpx.post(f"{url}/api/login", json=GOOD, headers={"X-Forwarded-For": "10.0.0.99"})
        assert spoofed.status_code == 429


def test_failed_logins_count_per_user_name_across_addresses(tmp_path: Path) -> None:
    with dashboard_process(tmp_path) as url:
        codes = []
        for i in range(2, 8):  # six loopback addresses, one wrong password each
            transport = httpx.HTTPTransport(local_address=f"127.0.0.{i}")
            with httpx.Client(transport=transport) as other:
                codes.append(other.post(f"{url}/api/login", json=WRONG).status_code)
        assert codes == [401] * 5 + [429]
        # Another name from a fresh address is not locked with it.
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.9")) as fresh:
            assert fresh.post(f"{url}/api/login", json={"username": "x", "password": "y"}).status_code == 401


def test_behind_a_configured_proxy_the_client_is_the_address_it_saw(tmp_path: Path) -> None:
    with dashboard_process(tmp_path, WEB_TRUSTED_PROXIES="127.0.0.1") as url:
        # The proxy appends the address it saw; what the client wrote before it is not believed.
        codes = [httpx.post(f"{url}/api/login", json={"username": f"nobody{i}", "password": "x"},
                            headers={"X-Forwarded-For": f"203.0.113.{i}, 10.1.1.1"}).status_code
                 for i in range(6)]
        assert codes == [401] * 5 + [429]
        other = httpx.post(f"{url}/api/login", json={"username": "nobody9", "password": "x"},
                           headers={"X-Forwarded-For": "10.1.1.2"})
        assert other.status_code == 401


def test_password_hashing_does_not_hold_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow_verify(password: str, stored: str) -> bool:
        entered.set()
        release.wait(30)  # a hash that takes until the test lets it finish
        return False

    monkeypatch.setattr("web.app.verify_password", slow_verify)
    write_snapshot(tmp_path, snapshot())
    config = web_config(tmp_path, allowed_hosts=("127.0.0.1",), clock=clock_after_snapshot(1.0))
    with serving(create_app(config)) as url:
        attempt = threading.Thread(target=httpx.post, args=(f"{url}/api/login",), kwargs={"json": WRONG, "timeout": 60})
        attempt.start()
        try:
            assert entered.wait(30)
            # While the hash runs, the server still answers (on the old code the loop was held).
            assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        finally:
            release.set()
            attempt.join(60)


def test_parallel_wrong_logins_get_no_more_tries_than_serial_ones(tmp_path: Path) -> None:
    write_snapshot(tmp_path, snapshot())
    config = web_config(tmp_path, allowed_hosts=("127.0.0.1",))
    with serving(create_app(config)) as url:
        start = threading.Barrier(12)
        codes: list[int] = []

        def attempt() -> None:
            start.wait()
            codes.append(httpx.post(f"{url}/api/login", json=WRONG, timeout=60).status_code)

        threads = [threading.Thread(target=attempt) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert sorted(codes) == [401] * 5 + [429] * 7


# -- Host allow-list, body size (the production CLI) -----------------------------------------------


def test_a_host_not_in_the_allow_list_is_refused(tmp_path: Path) -> None:
    with dashboard_process(tmp_path) as url:
        rebinding = {"Host": "rebind.attacker.example", "Origin": "http://rebind.attacker.example"}
        refused = httpx.post(f"{url}/api/login", json=GOOD, headers=rebinding)
        assert refused.status_code == 400 and "set-cookie" not in refused.headers
        port = url.rsplit(":", 1)[1]
        allowed = httpx.post(f"{url}/api/login", json=GOOD, headers={"Host": f"localhost:{port}"})
        assert allowed.status_code == 200


def test_a_150_mb_body_is_refused_with_413_before_it_is_read(tmp_path: Path) -> None:
    with dashboard_process(tmp_path) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
            raw.sendall(b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 157286400\r\n\r\n" + b"x" * 65536)
            # The answer comes while 150 MB are still unsent (the old server waited for them all).
            answer = raw.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 413")
        assert "WEB_MAX_BODY_BYTES" in answer
        assert httpx.get(f"{url}/login").status_code == 200


def test_a_chunked_body_over_the_limit_is_refused(client: TestClient) -> None:
    def chunks():
        for _ in range(100):
            yield b"x" * 4096

    response = client.post("/api/login", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["detail"] == "request body over the limit of 65536 bytes (WEB_MAX_BODY_BYTES)"


# -- sessions and their sockets ---------------------------------------------------------------------


def test_logging_out_closes_the_sessions_websocket(client: TestClient, tmp_path: Path) -> None:
    headers = csrf(client)
    with client.websocket_connect("/ws") as ws:
        ws.receive_text()
        assert client.post("/api/logout", headers=headers).status_code == 200
        write_snapshot(tmp_path, snapshot(equity="1.00"))  # the old server streamed this on
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 4401


def test_an_expired_session_closes_its_websocket(tmp_path: Path) -> None:
    write_snapshot(tmp_path, snapshot())
    clock = clock_after_snapshot(1.0)
    client = TestClient(create_app(web_config(tmp_path, clock=clock, session_hours=1)))
    login(client)
    with client.websocket_connect("/ws") as ws:
        ws.receive_text()
        clock.advance(3601.0)
        messages = []
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:  # the liveness notice of the older snapshot may come first
                messages.append(json.loads(ws.receive_text()))
    assert closed.value.code == 4401
    assert all("snapshot" not in m for m in messages)


# -- settings edits ---------------------------------------------------------------------------------


def settings_client(tmp_path: Path) -> tuple[TestClient, Path, dict[str, str]]:
    env = tmp_path / "bot.env"
    env.write_text("# my bot\nMODE=paper\n")
    env.chmod(0o600)
    write_snapshot(tmp_path, snapshot())
    client = TestClient(create_app(web_config(tmp_path, env_file=env)))
    return client, env, csrf(client)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x1c", "\r", "\x00"])
def test_a_setting_with_a_line_separator_is_refused(tmp_path: Path, separator: str) -> None:
    client, env, headers = settings_client(tmp_path)
    refused = client.post("/api/settings", json={"changes": {"SMTP_USERNAME": f"x{separator}MODE=live"}},
                          headers=headers)
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "changes", "SMTP_USERNAME"]
    assert error["msg"] == (f"expected one line of text, got a line break or control character "
                            f"(U+{ord(separator):04X}) at position 1")
    assert env.read_text() == "# my bot\nMODE=paper\n"
    assert load_settings(env)["MODE"] == "paper"


def test_a_saved_setting_replaces_the_file_atomically_with_a_backup(tmp_path: Path) -> None:
    client, env, headers = settings_client(tmp_path)
    saved = client.post("/api/settings", json={"changes": {"SMTP_USERNAME": "ops"}}, headers=headers)
    assert saved.status_code == 200
    assert env.read_text() == "# my bot\nMODE=paper\nSMTP_USERNAME=ops\n"
    assert (tmp_path / "bot.env.bak").read_text() == "# my bot\nMODE=paper\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600  # a file that may name secrets stays private
    assert load_settings(env)["SMTP_USERNAME"] == "ops"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".bot.env")]


def test_exposing_the_dashboard_needs_a_confirmation(tmp_path: Path) -> None:
    client, env, headers = settings_client(tmp_path)
    unconfirmed = client.post("/api/settings", json={"changes": {"WEB_HOST": "0.0.0.0"}}, headers=headers)
    assert unconfirmed.status_code == 409
    [error] = unconfirmed.json()["detail"]
    assert error["loc"] == ["body", "changes", "WEB_HOST"] and "confirm_exposure: true" in error["msg"]
    assert "WEB_HOST" not in env.read_text()
    confirmed = client.post("/api/settings", json={"changes": {"WEB_HOST": "0.0.0.0"}, "confirm_exposure": True},
                            headers=headers)
    assert confirmed.status_code == 200 and "WEB_HOST=0.0.0.0" in env.read_text()
    # Loopback needs no confirmation.
    assert client.post("/api/settings", json={"changes": {"WEB_HOST": "127.0.0.1"}}, headers=headers).status_code == 200


# -- strict requests, one-line reasons ----------------------------------------------------------------


@pytest.mark.parametrize(("path", "body", "loc", "message"), [
    ("/api/kill-switch", {"confirm": 1}, ["body", "confirm"], "Input should be a valid boolean"),
    ("/api/kill-switch", {"confirm": False}, ["body", "confirm"], "expected true: the confirmation step"),
    ("/api/kill-switch", {"confirm": True, "flatten": 0}, ["body", "flatten"], "Input should be a valid boolean"),
    ("/api/kill-switch", {"confirm": True, "flaten": False}, ["body", "flaten"], "Extra inputs are not permitted"),
    ("/api/kill-switch/reset", {"reason": "ok", "force": True}, ["body", "force"], "Extra inputs are not permitted"),
    ("/api/strategies/MACross-SPY/pause", {"reason": "lunch\n2024-12-16T15:00:00Z [ERROR] BOT.RiskEngine: FORGED"},
     ["body", "reason"], "expected one line of text, got a line break or control character (U+000A) at position 5"),
    ("/api/strategies/MACross-SPY/parameters", {"parameters": {"slow_period": 2**31}},
     ["body", "parameters", "slow_period"], "expected an integer from -2147483647 to 2147483647, got 2147483648"),
    ("/api/strategies/MACross-SPY/parameters", {"parameters": {"position_fraction": 1e-320}},
     ["body", "parameters", "position_fraction"], "expected a finite number of normal magnitude"),
    ("/api/strategies/MACross-SPY/parameters", {"parameters": {"average": "SIMPLE\nx"}},
     ["body", "parameters", "average"], "expected one line of text"),
    ("/api/strategies/MACross-SPY/parameters", {"parameters": {"fast_period": 5}, "apply": "now"},
     ["body", "apply"], "Extra inputs are not permitted"),
])
def test_loose_requests_are_refused_naming_the_field(
    client: TestClient, tmp_path: Path, path: str, body: dict, loc: list, message: str,
) -> None:
    response = client.post(path, json=body, headers=csrf(client))
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == loc and message in error["msg"]
    assert not list((tmp_path / "control" / "inbox").glob("*.json")), "nothing may reach the node"


def test_the_node_escapes_line_breaks_in_what_it_logs() -> None:
    command = validate_command({"command": "halt", "reason": "lunch\n[ERROR] RiskEngine: FORGED\u2028x",
                                "actor": "ops\r", "sent_at": 1.0, "expires_s": 10})
    assert command.reason == "lunch\\n[ERROR] RiskEngine: FORGED\\u2028x" and command.actor == "ops\\r"


# -- headers ----------------------------------------------------------------------------------------


def test_security_headers(client: TestClient, tmp_path: Path) -> None:
    login(client)
    for path in ("/api/status", "/", "/login", "/health"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        script_src = re.search(r"script-src ([^;]*)", csp).group(1)
        assert script_src == "'self'", path
        assert "frame-ancestors 'none'" in csp
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store", path
    assert "no-store" not in client.get("/static/style.css").headers.get("cache-control", "")
    # The pages hold no inline script for the policy to refuse.
    for path in ("/", "/page/logs", "/page/settings", "/docs", "/login"):
        assert not re.search(r"<script(?![^>]*\bsrc=)", client.get(path).text), path
    assert not re.search(r"\son[a-z]+=", client.get("/").text)  # no inline event handlers either


# -- the settings behind these guards -------------------------------------------------------------


@pytest.mark.parametrize(("key", "value", "message"), [
    ("WEB_TRUSTED_PROXIES", "proxy.local", "expected comma-separated IP addresses or networks"),
    ("WEB_ALLOWED_HOSTS", "localhost,evil example", "expected comma-separated host names or IPv4 addresses"),
    ("WEB_MAX_BODY_BYTES", "10", "expected an integer from 1024 to 10485760"),
    ("WEB_NODE_STALE_SECONDS", "1", "expected an integer from 2 to 300"),
])
def test_the_guards_settings_are_validated(key: str, value: str, message: str) -> None:
    from config.settings import SettingsError

    with pytest.raises(SettingsError) as refused:
        load_settings(None, {key: value})
    assert [p.key for p in refused.value.problems] == [key] and message in str(refused.value)


def test_the_address_the_dashboard_listens_on_is_always_an_allowed_host() -> None:
    from web.__main__ import allowed_hosts

    assert allowed_hosts(("127.0.0.1", "localhost"), "192.168.1.5") == ("127.0.0.1", "localhost", "192.168.1.5")
    assert allowed_hosts(("127.0.0.1", "localhost"), "0.0.0.0") == ("127.0.0.1", "localhost")
    assert allowed_hosts(("127.0.0.1",), "127.0.0.1") == ("127.0.0.1",)
