"""
The dashboard's API against a state folder written like the node writes it: every protected
route refuses a request without a session, cross-site requests are refused, the sixth failed
login in a minute answers 429, bad parameter values answer 422 naming the field, and commands
reach the node's inbox with who sent them.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.routing import APIWebSocketRoute
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from livenode.control import ControlChannel
from tests.web_support import PASSWORD
from tests.web_support import USER
from tests.web_support import snapshot
from tests.web_support import web_config
from tests.web_support import write_snapshot
from web.app import COOKIE
from web.app import create_app
from web.auth import password_hash_from_secret
from web.auth import verify_password

OPEN = {"/health", "/robots.txt", "/login", "/api/login", "/static-login/{name}"}


@pytest.fixture
def state(tmp_path: Path) -> Path:
    write_snapshot(tmp_path, snapshot())
    return tmp_path


@pytest.fixture
def client(state: Path) -> TestClient:
    return TestClient(create_app(web_config(state)))


def login(client: TestClient) -> str:
    response = client.post("/api/login", json={"username": USER, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()["csrf"]


def test_every_protected_route_needs_a_session(client: TestClient) -> None:
    checked = []
    for route in client.app.routes:
        if route.path in OPEN:
            continue
        path = route.path.replace("{strategy_id}", "MACross-SPY").replace("{name}", "x")
        if isinstance(route, APIWebSocketRoute):
            with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(path) as ws:
                ws.receive_text()
            assert refused.value.code == 4401
            checked.append(f"WS {route.path}")
            continue
        if not isinstance(route, APIRoute):
            continue
        for method in route.methods - {"HEAD"}:
            response = client.request(method, path, json={})
            assert response.status_code == 401, (method, route.path, response.status_code)
            checked.append(f"{method} {route.path}")
    # The pages, the read API, every command, the docs and /metrics were among them.
    for expected in ("GET /", "GET /api/status", "GET /metrics", "GET /docs", "GET /openapi.json",
                     "POST /api/kill-switch", "POST /api/strategies/{strategy_id}/parameters",
                     "WS /ws", "GET /static/{name}"):
        assert expected in checked
    assert len(checked) >= 20


def test_a_page_without_a_session_sends_the_browser_to_login(client: TestClient) -> None:
    response = client.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"


def test_open_routes(client: TestClient) -> None:
    assert client.get("/robots.txt").text == "User-agent: *\nDisallow: /\n"
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"web": "ok", "node": "live", "since": "2024-12-16T15:00:00+00:00",
                             "age_s": 1, "message": "node running"}
    assert client.get("/login").status_code == 200


def test_login_sets_a_strict_http_only_cookie_and_opens_the_api(client: TestClient) -> None:
    response = client.post("/api/login", json={"username": USER, "password": PASSWORD})
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    status = client.get("/api/status").json()
    assert status["equity"] == "100012.50" and status["trading_state"] == "ACTIVE"
    assert status["strategies"] == {"MACross-SPY": "RUNNING"}
    assert "/api/kill-switch" in client.get("/openapi.json").json()["paths"]


def test_bearer_token_for_api_clients(state: Path) -> None:
    app_client = TestClient(create_app(web_config(state)))
    token = app_client.post("/api/login", json={"username": USER, "password": PASSWORD}).json()["token"]
    fresh = TestClient(app_client.app)  # no cookie
    assert fresh.get("/api/status").status_code == 401
    assert fresh.get("/api/status", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert fresh.get("/api/status", headers={"Authorization": "Bearer forged"}).status_code == 401


def test_sixth_failed_login_in_a_minute_answers_429(client: TestClient) -> None:
    codes = [client.post("/api/login", json={"username": USER, "password": f"wrong{i}"}).status_code
             for i in range(6)]
    assert codes == [401] * 5 + [429]
    # Even the right password waits out the minute.
    assert client.post("/api/login", json={"username": USER, "password": PASSWORD}).status_code == 429


def test_forged_cross_site_requests_are_refused(client: TestClient, state: Path) -> None:
    csrf = login(client)
    inbox = state / "control" / "inbox"
    body = {"confirm": True}
    no_token = client.post("/api/kill-switch", json=body)
    assert no_token.status_code == 403 and "CSRF" in no_token.json()["detail"]
    wrong_token = client.post("/api/kill-switch", json=body, headers={"X-CSRF-Token": "guess"})
    assert wrong_token.status_code == 403
    other_site = client.post("/api/kill-switch", json=body,
                             headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"})
    assert other_site.status_code == 403 and "Origin" in other_site.json()["detail"]
    login_from_elsewhere = client.post("/api/login", json={"username": USER, "password": PASSWORD},
                                       headers={"Origin": "http://evil.example"})
    assert login_from_elsewhere.status_code == 403
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(
        "/ws", headers={"Origin": "http://evil.example"},
    ) as ws:
        ws.receive_text()
    assert not list(inbox.glob("*.json")), "no refused request may reach the node"


@pytest.mark.parametrize(("parameters", "field", "message"), [
    ({"fast_period": -1}, "fast_period", "greater than 0"),
    ({"fast_period": "ten"}, "fast_period", "expected integer"),
    ({"position_fraction": 0}, "position_fraction", "greater than 0.0"),
    ({"regular_hours_only": 1}, "regular_hours_only", "expected boolean"),
    ({"instrument_id": "QQQ.SIM"}, "instrument_id", "not a parameter of MACross-SPY"),
])
def test_bad_parameter_values_answer_422_naming_the_field(
    client: TestClient, state: Path, parameters: dict, field: str, message: str,
) -> None:
    csrf = login(client)
    response = client.post("/api/strategies/MACross-SPY/parameters", json={"parameters": parameters},
                           headers={"X-CSRF-Token": csrf})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "parameters", field] and message in error["msg"]
    assert not list((state / "control" / "inbox").glob("*.json"))


def test_kill_switch_needs_its_confirmation(client: TestClient) -> None:
    csrf = login(client)
    response = client.post("/api/kill-switch", json={"flatten": True}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "confirm"]
    unknown = client.post("/api/strategies/Nope-1/pause", json={}, headers={"X-CSRF-Token": csrf})
    assert unknown.status_code == 404


class NodeStandIn:
    """Plays the runner's side of the control files with the real ControlChannel."""

    def __init__(self, client: TestClient, state: Path, refuse: str | None = None) -> None:
        # The dashboard's clock: commands are judged by the clock their expiry was set with.
        self.channel = ControlChannel(state, clock=client.app.state.node.clock)
        self.refuse = refuse
        self.taken: list = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.02):
            commands, _ = self.channel.take_commands()
            for command in commands:
                self.taken.append(command)
                if self.refuse:
                    self.channel.refuse(command, self.refuse)
                else:
                    self.channel.accept(command)

    def __enter__(self) -> "NodeStandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def test_commands_reach_the_node_with_who_sent_them(client: TestClient, state: Path) -> None:
    csrf = login(client)
    headers = {"X-CSRF-Token": csrf}
    with NodeStandIn(client, state) as node:
        assert client.post("/api/strategies/MACross-SPY/pause", json={"reason": "lunch"}, headers=headers).json()["status"] == "done"
        done = client.post("/api/strategies/MACross-SPY/parameters",
                           json={"parameters": {"fast_period": 5}}, headers=headers)
        assert done.status_code == 200
        assert client.post("/api/kill-switch", json={"confirm": True}, headers=headers).status_code == 200
        assert client.post("/api/kill-switch/reset", json={}, headers=headers).status_code == 200
    assert [(c.name, c.actor, c.strategy) for c in node.taken] == [
        ("pause_strategy", f"{USER} (web)", "MACross-SPY"),
        ("set_parameters", f"{USER} (web)", "MACross-SPY"),
        ("flatten", f"{USER} (web)", ""),
        ("resume", f"{USER} (web)", ""),
    ]
    assert node.taken[0].reason == "lunch" and node.taken[1].parameters == {"fast_period": 5}


def test_a_refusal_by_the_node_answers_422_with_its_reason(client: TestClient, state: Path) -> None:
    csrf = login(client)
    reason = "parameters.fast_period: fast_period must be less than slow_period, got 40 >= 30"
    with NodeStandIn(client, state, refuse=reason):
        response = client.post("/api/strategies/MACross-SPY/parameters",
                               json={"parameters": {"fast_period": 40}}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 422
    assert response.json()["detail"] == [{"loc": ["body", "parameters", "fast_period"], "msg": reason,
                                          "type": "value_error"}]


def test_metrics_and_websocket_serve_the_snapshot(client: TestClient, state: Path) -> None:
    login(client)
    text = client.get("/metrics").text
    assert "bot_equity_usd 100012.5" in text
    assert 'bot_position_quantity{instrument="SPY.SIM"} 83.0' in text
    assert 'bot_orders{status="FILLED"} 1.0' in text
    assert 'bot_recent_refusals{rule="symbol_cap"} 1.0' in text
    assert 'bot_trading_state{state="ACTIVE"} 1.0' in text
    assert 'bot_order_latency_ms{stat="p50"} 1.2' in text and "bot_retries 2.0" in text
    assert 'bot_alerts{kind="circuit_breaker"} 1.0' in text
    with client.websocket_connect("/ws") as ws:
        first = json.loads(ws.receive_text())
        assert first["snapshot"]["equity"] == "100012.50" and first["node"]["alive"]
        write_snapshot(state, snapshot(equity="99000.00"))
        assert json.loads(ws.receive_text())["snapshot"]["equity"] == "99000.00"


def test_plotly_is_served_by_the_app_itself(client: TestClient) -> None:
    login(client)
    html = client.get("/").text
    assert '<script src="/static/plotly.min.js"></script>' in html and "cdn" not in html.lower()
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and js.text.startswith("/**") and "plotly" in js.text[:400].lower()


def test_password_hash_from_secret() -> None:
    stored = password_hash_from_secret("s3cret")
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    assert verify_password("s3cret", stored) and not verify_password("s3cret ", stored)
    assert password_hash_from_secret(stored) == stored  # an already hashed secret is kept


def test_settings_edits_are_validated_with_the_schema_and_saved(state: Path, tmp_path: Path) -> None:
    env = tmp_path / "bot.env"
    env.write_text("# my bot\nMODE=paper\nMAX_OPEN_POSITIONS=10\n")
    client = TestClient(create_app(web_config(state, env_file=env)))
    headers = {"X-CSRF-Token": login(client)}
    bad = client.post("/api/settings", json={"changes": {"MAX_OPEN_POSITIONS": "0", "TRADING_START": "9h30"}},
                      headers=headers)
    assert bad.status_code == 422
    assert {(e["loc"][-1], e["msg"]) for e in bad.json()["detail"]} == {
        ("MAX_OPEN_POSITIONS", "command line: MAX_OPEN_POSITIONS: expected an integer from 1 to 1000, got '0'"),
        ("TRADING_START", "command line: TRADING_START: expected a time HH:MM (exchange time), got '9h30'"),
    }
    secret = client.post("/api/settings", json={"changes": {"WEB_PASSWORD": "x"}}, headers=headers)
    assert secret.status_code == 422 and secret.json()["detail"][0]["loc"] == ["body", "changes", "WEB_PASSWORD"]
    assert env.read_text() == "# my bot\nMODE=paper\nMAX_OPEN_POSITIONS=10\n"  # nothing saved
    good = client.post("/api/settings", json={"changes": {"MAX_OPEN_POSITIONS": "4", "DEFAULT_STOP": "1.5"}},
                       headers=headers)
    assert good.status_code == 200 and good.json()["saved"] == ["DEFAULT_STOP", "MAX_OPEN_POSITIONS"]
    assert env.read_text() == "# my bot\nMODE=paper\nMAX_OPEN_POSITIONS=4\nDEFAULT_STOP=1.5\n"


def test_settings_view_masks_secrets(client: TestClient) -> None:
    login(client)
    assert client.get("/api/settings").json()["settings"]["WEB_PASSWORD"] == "********"


def test_the_dashboard_refuses_to_start_without_a_password(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = tmp_path / "bot.env"
    env.write_text(f"STATE_DIR={tmp_path / 'state'}\n")
    result = subprocess.run([sys.executable, "-m", "web", "--config", str(env)], capture_output=True,
                            text=True, timeout=60, cwd=Path(__file__).resolve().parents[1], check=False)
    assert result.returncode == 2
    assert "WEB_PASSWORD: expected it in the secrets file" in result.stderr


def test_the_dashboard_binds_loopback_unless_configured() -> None:
    from config.settings import KEYS

    assert KEYS["WEB_HOST"].default == "127.0.0.1"


def test_the_web_layer_imports_only_config_and_the_control_interface() -> None:
    # (config/ itself uses Nautilus's config classes; nothing of the node is loaded.)
    import subprocess
    import sys

    code = (
        "import sys, web.app, web.__main__\n"
        "ours = ('actors', 'strategies', 'risk', 'adapters', 'backtesting', 'catalog', 'livenode')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ours))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parents[1], check=True)
    assert result.stdout.strip() == "['livenode', 'livenode.control']"
