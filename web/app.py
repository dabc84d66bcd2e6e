"""
The dashboard: a FastAPI app beside the node (its own process), reading the node's snapshots
and sending it validated commands through web/node_link.py.

Security: every route needs a session (HttpOnly, SameSite=Strict cookie, or the same token as
a bearer token) except the login page, /health and /robots.txt. Cookie-authenticated requests
that change state must carry the session's CSRF token in X-CSRF-Token and, when the browser
sends an Origin, come from this site; WebSocket handshakes are checked the same way, and a
session's sockets close when it ends. Requests naming another Host are refused (DNS
rebinding), bodies over the limit are refused before they are read (web/guards.py), and
forwarded headers count only from a configured proxy. Failed logins are limited per client
address and per user name (LOGIN_FAILURES, then 429), the password is hashed off the event
loop, and the whole API is limited by SlowAPI. Request models are strict: unknown fields,
numbers for booleans and text with line breaks are refused naming the field.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import ipaddress
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from typing import Any

import anyio
import plotly
from fastapi import Depends
from fastapi import FastAPI
from fastapi import HTTPException
from fastapi import Path as FastPath
from fastapi import Query
from fastapi import Request
from fastapi import WebSocket
from fastapi import WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.responses import HTMLResponse
from fastapi.responses import JSONResponse
from fastapi.responses import PlainTextResponse
from fastapi.responses import RedirectResponse
from fastapi.responses import Response
from limits import parse as parse_limit
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import generate_latest
from pydantic import AfterValidator
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.middleware import SlowAPIMiddleware
from slowapi.util import get_remote_address
from starlette.middleware.trustedhost import TrustedHostMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from config.settings import KEYS
from config.settings import SettingsError
from config.settings import load_settings
from livenode.control import breaks_lines
from web.auth import Session
from web.auth import SessionStore
from web.auth import verify_password
from web.guards import BodyLimit
from web.logs import LogFilter
from web.logs import LogTail
from web.logs import read_logs
from web.guards import SecurityHeaders
from web.metrics import WebMetrics
from web.node_link import Liveness
from web.node_link import NodeLink
from web.node_link import Outcome
from web.pages import PAGES
from web.pages import login_page
from web.pages import page

COOKIE = "bot_session"
LOGIN_FAILURES = "5/minute"
STATIC = Path(__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
INT_LIMIT = 2**31 - 1  # the engine's indicator periods and counts are 32-bit


@dataclass(frozen=True)
class WebConfig:
    state_dir: Path
    user: str
    password_hash: str
    session_hours: int = 12
    settings_public: dict[str, Any] | None = None  # the run's settings, secrets masked
    backtest_results: Path | None = None
    api_limit: str = "300/second"
    push_interval_s: float = 0.25
    env_file: Path | None = None  # the run's env file: settings edits are validated and saved there
    key_file: Path | None = None  # the Fernet key file of its secrets file (else the environment)
    node_stale_s: float = 5.0  # a snapshot older than this: the node is not responding
    command_expiry_s: float = 10.0  # a command the node has not taken by then is never run
    clock: Callable[[], float] = time.time  # wall clock (snapshot ages, command expiry, sessions)
    command_wait_s: float = 5.0  # how long a command request waits for the node's verdict (then 202)
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost")  # Host header values answered
    trusted_proxies: tuple[str, ...] = ()  # whose X-Forwarded-For / -Proto are believed
    max_body_bytes: int = 65_536  # larger request bodies: 413 before reading


def one_line(text: str) -> str:
    """Text that cannot split or forge a line where it is written (logs, the env file)."""
    bad = next((i for i, c in enumerate(text) if breaks_lines(c)), None)
    if bad is not None:
        raise ValueError(f"expected one line of text, got a line break or control character "
                         f"(U+{ord(text[bad]):04X}) at position {bad}")
    return text


def is_loopback(host: str) -> bool:
    """An address only this machine reaches (binding there exposes nothing)."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def must_be_true(value: bool) -> bool:
    if value is not True:
        raise ValueError("expected true: the confirmation step")
    return value


OneLine = Annotated[str, AfterValidator(one_line)]


class Strict(BaseModel):
    """Refuses unknown fields and coercion (1 is not true, "5" is not 5), naming the field."""

    model_config = ConfigDict(extra="forbid", strict=True)


class LoginBody(Strict):
    username: OneLine = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=500)


class ReasonBody(Strict):
    reason: OneLine = Field(default="dashboard", min_length=1, max_length=200)


class KillSwitchBody(Strict):
    confirm: Annotated[bool, AfterValidator(must_be_true)]  # the page asks before sending it
    flatten: bool = True
    reason: OneLine = Field(default="kill switch from the dashboard", min_length=1, max_length=200)


class SettingsBody(Strict):
    changes: dict[str, str] = Field(min_length=1)
    # Saving a WEB_HOST other than loopback exposes the dashboard beyond this machine.
    confirm_exposure: bool = False


class ParametersBody(Strict):
    parameters: dict[str, int | float | bool | str] = Field(min_length=1)
    reason: OneLine = Field(default="dashboard", min_length=1, max_length=200)


def _field_error(field: str, message: str) -> HTTPException:
    return HTTPException(422, detail=[{"loc": ["body", "parameters", field], "msg": message,
                                       "type": "value_error"}])


def check_parameters(strategy: dict[str, Any], parameters: dict[str, Any]) -> None:
    """Each value against the schema the node published for the strategy (422 naming it)."""
    schema: dict[str, dict[str, Any]] = strategy.get("schema") or {}
    if not schema:
        raise HTTPException(409, detail=f"{strategy['id']} takes no parameter changes while it runs")
    for name, value in parameters.items():
        rule = schema.get(name)
        if rule is None:
            raise _field_error(name, f"not a parameter of {strategy['id']}; expected one of {', '.join(schema)}")
        kind = rule["type"]
        ok = {
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "string": isinstance(value, str),
        }[kind]
        if not ok:
            raise _field_error(name, f"expected {kind}, got {value!r}")
        if kind == "integer" and not -INT_LIMIT <= value <= INT_LIMIT:
            raise _field_error(name, f"expected an integer from {-INT_LIMIT} to {INT_LIMIT}, got {value!r}")
        if kind == "number" and not (value == 0 or sys.float_info.min <= abs(value) < math.inf):
            raise _field_error(name, f"expected a finite number of normal magnitude (0 or at least "
                                     f"{sys.float_info.min:g}), got {value!r}")
        if kind == "string":
            try:
                one_line(value)
            except ValueError as exc:
                raise _field_error(name, str(exc)) from None
        for key, test, words in (
            ("exclusiveMinimum", lambda v, b: v > b, "greater than"),
            ("minimum", lambda v, b: v >= b, "at least"),
            ("exclusiveMaximum", lambda v, b: v < b, "less than"),
            ("maximum", lambda v, b: v <= b, "at most"),
        ):
            if key in rule and kind in ("integer", "number") and not test(value, rule[key]):
                raise _field_error(name, f"expected a value {words} {rule[key]}, got {value!r}")


def status_of(snapshot: dict[str, Any] | None, alive: Liveness) -> dict[str, Any]:
    """The small status document (what /api/status serves and the load check measures); a node
    that is not alive is never reported connected, whatever its last snapshot said."""
    if snapshot is None:
        return {"node": "absent", "liveness": alive.as_dict()}
    gate = snapshot.get("gate") or {}
    return {
        "node": snapshot.get("phase"), "liveness": alive.as_dict(), "mode": snapshot.get("mode"),
        "broker": snapshot.get("broker"), "connected": bool(snapshot.get("connected")) and alive.alive,
        "ts": snapshot.get("ts"),
        "market_time": snapshot.get("market_time"), "equity": snapshot.get("equity"),
        "pnl_day": snapshot.get("pnl_day"), "pnl_session": snapshot.get("pnl_session"),
        "trading_state": gate.get("trading_state"), "halt_reasons": gate.get("holds", {}),
        "positions": len(snapshot.get("positions", [])),
        "open_orders": len(snapshot.get("open_orders", [])),
        "strategies": {s["id"]: s["state"] for s in snapshot.get("strategies", [])},
    }


def create_app(config: WebConfig) -> FastAPI:
    node = NodeLink(config.state_dir, config.node_stale_s, config.command_expiry_s, config.clock)
    sessions = SessionStore(config.session_hours * 3600, config.clock)
    metrics = WebMetrics(node.snapshot, node.liveness)
    limiter = Limiter(key_func=get_remote_address, default_limits=[config.api_limit])
    login_limit = parse_limit(LOGIN_FAILURES)
    app = FastAPI(title="nautilus-equities dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.limiter = limiter
    app.state.node = node
    app.state.sessions = sessions
    app.add_middleware(SlowAPIMiddleware)

    @app.exception_handler(RateLimitExceeded)
    async def too_many(request: Request, exc: RateLimitExceeded) -> JSONResponse:
        return JSONResponse({"detail": f"rate limit exceeded: {exc.detail}"}, status_code=429)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    def token_of(request: Request | WebSocket) -> tuple[str | None, bool]:
        """The session token and whether it came as a bearer token."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip(), True
        return request.cookies.get(COOKIE), False

    def same_origin(request: Request | WebSocket) -> bool:
        origin = request.headers.get("origin")
        if origin is None:
            return True  # not a browser-initiated cross-site request (browsers send Origin on POST)
        host = request.headers.get("host", "")
        return origin in (f"http://{host}", f"https://{host}")

    async def session(request: Request) -> Session:
        token, bearer = token_of(request)
        found = sessions.get(token)
        if found is None:
            raise HTTPException(401, detail="login required", headers={"WWW-Authenticate": "Bearer"})
        if request.method in UNSAFE and not bearer:
            if not same_origin(request):
                raise HTTPException(403, detail="cross-site request refused (Origin)")
            if not hmac.compare_digest(request.headers.get("x-csrf-token", ""), found.csrf):
                raise HTTPException(403, detail="cross-site request refused (missing or wrong CSRF token)")
        return found

    async def page_session(request: Request) -> Session:
        found = sessions.get(token_of(request)[0])
        if found is None:
            raise HTTPException(401, detail="login required")
        return found

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/api")
        if exc.status_code == 401 and wants_html and request.method == "GET":
            return RedirectResponse("/login", status_code=303)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    # -- open routes ------------------------------------------------------------------------------

    @app.get("/health", include_in_schema=False)
    @limiter.exempt
    async def health() -> JSONResponse:
        """200 while the node is alive; 503 with its last sign of life otherwise."""
        alive = node.liveness()
        body = {"web": "ok", "node": alive.state, "since": alive.since, "age_s": alive.age_s,
                "message": alive.message}
        return JSONResponse(body, status_code=200 if alive.alive else 503)

    @app.get("/robots.txt", include_in_schema=False)
    @limiter.exempt
    async def robots() -> PlainTextResponse:
        return PlainTextResponse("User-agent: *\nDisallow: /\n")

    @app.get("/login", include_in_schema=False)
    async def login_form() -> HTMLResponse:
        return HTMLResponse(login_page())

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str, _: Session = Depends(page_session)) -> FileResponse:
        if name == "plotly.min.js":
            return FileResponse(PLOTLY_JS, media_type="application/javascript")
        path = STATIC / name
        if "/" in name or not path.is_file():
            raise HTTPException(404, detail=f"no static file {name}")
        return FileResponse(path)

    @app.get("/static-login/{name}", include_in_schema=False)
    async def static_login(name: str) -> FileResponse:
        if name not in ("style.css", "login.js"):
            raise HTTPException(404, detail=f"no static file {name}")
        return FileResponse(STATIC / name)

    # One login check at a time: the limit is tested and hit around each hash, so parallel
    # tries cannot all pass the test before the first failure is counted (and at most one
    # scrypt, 16 MiB and tens of milliseconds of CPU, runs at once).
    checking = asyncio.Lock()

    @app.post("/api/login")
    async def login(body: LoginBody, request: Request) -> JSONResponse:
        """Log in: sets the session cookie and returns the token (usable as a bearer token)."""
        if not same_origin(request):
            raise HTTPException(403, detail="cross-site request refused (Origin)")
        # Failures count per client address (the proxy's view of it only when the proxy is
        # trusted) and per user name, so neither new addresses nor new names buy more tries.
        counters = (("login-failures", "address", get_remote_address(request)),
                    ("login-failures", "user", body.username))
        async with checking:
            if not all(limiter.limiter.test(login_limit, *counter) for counter in counters):
                raise HTTPException(429, detail=f"too many failed logins; limit {LOGIN_FAILURES} "
                                                "per address and per user name")
            user_ok = hmac.compare_digest(body.username.encode(), config.user.encode())
            # In a thread: the event loop keeps serving /health, the API and the WebSockets.
            password_ok = await anyio.to_thread.run_sync(verify_password, body.password,
                                                         config.password_hash)
            if not (user_ok and password_ok):
                for counter in counters:
                    limiter.limiter.hit(login_limit, *counter)
                metrics.login_failures.inc()
                raise HTTPException(401, detail="wrong user name or password")
        token, found = sessions.create(body.username)
        response = JSONResponse({"token": token, "csrf": found.csrf, "user": found.user})
        response.set_cookie(COOKIE, token, max_age=config.session_hours * 3600, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https", path="/")
        return response

    # -- pages ----------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def home(who: Session = Depends(page_session)) -> HTMLResponse:
        return HTMLResponse(page("dashboard", who))

    @app.get("/page/{name}", include_in_schema=False)
    async def other_page(name: str, who: Session = Depends(page_session)) -> HTMLResponse:
        if name not in PAGES:
            raise HTTPException(404, detail=f"no page {name}")
        return HTMLResponse(page(name, who))

    @app.post("/api/logout")
    async def logout(request: Request, who: Session = Depends(session)) -> JSONResponse:
        sessions.drop(token_of(request)[0])
        response = JSONResponse({"logged_out": who.user})
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/docs", include_in_schema=False)
    async def docs(who: Session = Depends(page_session)) -> HTMLResponse:
        return HTMLResponse(page("docs", who))

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_: Session = Depends(page_session)) -> JSONResponse:
        return JSONResponse(app.openapi())

    # -- read API -------------------------------------------------------------------------------

    @app.get("/api/status")
    async def status(_: Session = Depends(session)) -> dict[str, Any]:
        """Mode, connection, equity, P&L, trading state and counts."""
        return status_of(node.snapshot(), node.liveness())

    @app.get("/api/snapshot")
    async def snapshot(_: Session = Depends(session)) -> dict[str, Any]:
        """The node's full snapshot (positions, orders, fills, bars, strategies)."""
        snap = node.snapshot()
        if snap is None:
            raise HTTPException(503, detail="no node snapshot yet")
        return snap

    @app.get("/api/settings")
    async def settings(_: Session = Depends(session)) -> dict[str, Any]:
        """The run's settings, secrets masked."""
        return {"settings": config.settings_public or {}}

    @app.post("/api/settings")
    async def edit_settings(body: SettingsBody, who: Session = Depends(session)) -> dict[str, Any]:
        """Validate changed settings with the config schema (every problem, 422 naming each key)
        and save them in the env file; the node reads them at its next start."""
        if config.env_file is None:
            raise HTTPException(409, detail="the dashboard was started without --config; nothing to edit")
        host = body.changes.get("WEB_HOST")
        if host is not None and not is_loopback(host) and not body.confirm_exposure:
            raise HTTPException(409, detail=[{
                "loc": ["body", "changes", "WEB_HOST"], "type": "confirmation_required",
                "msg": f"WEB_HOST={host} exposes the dashboard beyond this machine; send "
                       "confirm_exposure: true to save it"}])
        problems = save_settings(config.env_file, body.changes, config.key_file)
        if problems:
            raise HTTPException(422, detail=[{"loc": ["body", "changes", key], "msg": msg,
                                              "type": "value_error"} for key, msg in problems])
        return {"saved": sorted(body.changes), "by": who.user, "applies": "at the next start of run_live.py"}

    @app.get("/api/logs")
    async def logs(_: Session = Depends(session), level: str = "", strategy: str = "",
                   limit: int = Query(default=200, ge=1, le=5000)) -> dict[str, Any]:
        """The engine log's last lines: `level` keeps that level and the more severe (DEBUG,
        INFO, WARN or WARNING, ERROR), `strategy` lines that name it."""
        try:
            chosen = LogFilter.of(level, strategy)
        except ValueError as exc:
            raise HTTPException(422, detail=[{"loc": ["query", "level"], "msg": str(exc),
                                              "type": "value_error"}]) from None
        return {"lines": read_logs(config.state_dir, chosen, int(limit))}

    @app.get("/api/deals")
    async def deals(_: Session = Depends(session)) -> dict[str, Any]:
        """The journal's round trips of this state folder's SQLite journals."""
        return {"deals": read_deals(config.state_dir)}

    @app.get("/api/backtests")
    async def backtests(_: Session = Depends(session)) -> dict[str, Any]:
        """The backtest result folders that hold a report."""
        root = config.backtest_results
        found = sorted(p.parent.name for p in root.glob("*/report.html")) if root and root.is_dir() else []
        return {"results": found}

    @app.get("/backtests/{name}/report.html", include_in_schema=False)
    async def backtest_report(name: str, _: Session = Depends(page_session)) -> FileResponse:
        root = config.backtest_results
        path = (root / name / "report.html") if root else None
        if path is None or "/" in name or name.startswith(".") or not path.is_file():
            raise HTTPException(404, detail=f"no backtest result {name}")
        return FileResponse(path)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus(_: Session = Depends(session)) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # -- commands -------------------------------------------------------------------------------

    def answer(name: str, outcome: Outcome) -> JSONResponse:
        """done 200, pending 202 (with when it expires), expired 409, refused 422 naming the field."""
        body: dict[str, Any] = {"command": name, "status": outcome.status, "id": outcome.command_id}
        if outcome.status == "rejected":
            field = outcome.reason.split(":", 1)[0]
            loc = ["body", *field.split(".")] if field.replace(".", "").replace("_", "").isalnum() else ["body"]
            return JSONResponse({"detail": [{"loc": loc, "msg": outcome.reason, "type": "value_error"}]},
                                status_code=422)
        if outcome.status == "expired":
            return JSONResponse(body | {"detail": f"not run: {outcome.reason}"}, status_code=409)
        if outcome.status == "pending" and outcome.expires_at is not None:
            body["expires_at"] = dt.datetime.fromtimestamp(outcome.expires_at, dt.UTC).isoformat()
        return JSONResponse(body, status_code=200 if outcome.status == "done" else 202)

    async def command(name: str, who: Session, reason: str, strategy: str = "",
                      parameters: dict[str, Any] | None = None) -> JSONResponse:
        alive = node.liveness()
        if not alive.alive:
            # A command to a node that does not answer would wait in its inbox; refused here,
            # the operator knows at once that nothing happened.
            metrics.commands.labels(name, "refused_node_down").inc()
            raise HTTPException(409, detail=f"{name} not sent: {alive.message}")
        outcome = await node.send(name, f"{who.user} (web)", reason, strategy, parameters,
                                  config.command_wait_s)
        metrics.commands.labels(name, outcome.status).inc()
        return answer(name, outcome)

    @app.get("/api/commands/{command_id}")
    async def command_status(command_id: str = FastPath(pattern=r"^[0-9a-f]{32}$"),
                             _: Session = Depends(session)) -> JSONResponse:
        """The node's verdict on a command answered 202 pending: done, rejected, expired or
        still pending."""
        name = node.command_name(command_id)
        if name is None:
            raise HTTPException(404, detail=f"no command {command_id}")
        return answer(name, node.outcome(command_id))

    def known_strategy(strategy_id: str) -> dict[str, Any]:
        found = node.strategy(strategy_id)
        if found is None:
            raise HTTPException(404, detail=f"no strategy {strategy_id} in the node's snapshot")
        return found

    @app.post("/api/strategies/{strategy_id}/pause")
    async def pause(strategy_id: str, body: ReasonBody, who: Session = Depends(session)) -> JSONResponse:
        """Hold one strategy's new exposure: the pre-trade gate refuses its orders that open or
        add to a position; its exits, working orders and positions are untouched."""
        known_strategy(strategy_id)
        return await command("pause_strategy", who, body.reason, strategy_id)

    @app.post("/api/strategies/{strategy_id}/resume")
    async def resume(strategy_id: str, body: ReasonBody, who: Session = Depends(session)) -> JSONResponse:
        """Lift a strategy's pause: its new orders pass the gate again."""
        known_strategy(strategy_id)
        return await command("resume_strategy", who, body.reason, strategy_id)

    @app.post("/api/strategies/{strategy_id}/parameters")
    async def set_parameters(strategy_id: str, body: ParametersBody,
                             who: Session = Depends(session)) -> JSONResponse:
        """Change running parameters (validated here by type and bounds, by the strategy's
        config class in the node), applied at once and persisted for the next start."""
        check_parameters(known_strategy(strategy_id), body.parameters)
        return await command("set_parameters", who, body.reason, strategy_id, dict(body.parameters))

    @app.post("/api/kill-switch")
    async def kill_switch(body: KillSwitchBody, who: Session = Depends(session)) -> JSONResponse:
        """Halt trading (and by default close every position); needs confirm=true."""
        return await command("flatten" if body.flatten else "halt", who, body.reason)

    @app.post("/api/kill-switch/reset")
    async def kill_switch_reset(body: ReasonBody, who: Session = Depends(session)) -> JSONResponse:
        """Lift the operator's halt: trading resumes."""
        return await command("resume", who, body.reason)

    # -- live updates ---------------------------------------------------------------------------

    async def stream(socket: WebSocket, next_message: Callable[[], dict[str, Any] | None]) -> None:
        """Serve one WebSocket: refused without a session or from another site, closed when the
        session ends (logout, expiry); sends what `next_message` gives every push interval."""
        token = token_of(socket)[0]
        if sessions.get(token) is None or not same_origin(socket):
            await socket.close(code=4401)
            return
        await socket.accept()
        try:
            while True:
                if sessions.get(token) is None:
                    await socket.close(code=4401, reason="session ended")
                    return
                message = next_message()
                if message is not None:
                    await socket.send_text(json.dumps(message))
                # Waiting on the socket (not a plain sleep) sees a client leaving or the server
                # shutting down even while there is nothing to send.
                try:
                    received = await asyncio.wait_for(socket.receive(), timeout=config.push_interval_s)
                except TimeoutError:
                    continue
                if received["type"] == "websocket.disconnect":
                    return
        except (WebSocketDisconnect, RuntimeError):
            return

    @app.websocket("/ws")
    async def updates(socket: WebSocket) -> None:
        """Pushes {"node": liveness, "snapshot": ...} with each new snapshot, and {"node":
        liveness} whenever the node's liveness changes (its age counts up while it is silent)."""
        sent: dict[str, Any] = {"version": -1, "alive": None}

        def next_message() -> dict[str, Any] | None:
            snap = node.snapshot()
            alive = node.liveness().as_dict()
            message: dict[str, Any] = {}
            if snap is not None and node.version != sent["version"]:
                sent["version"] = node.version
                message["snapshot"] = snap
            if not message and alive == sent["alive"]:
                return None
            sent["alive"] = alive
            return message | {"node": alive}

        await stream(socket, next_message)

    @app.websocket("/ws/logs")
    async def log_tail(socket: WebSocket, level: str = "", strategy: str = "") -> None:
        """The engine log's new lines as they are written, {"lines": [...]}, filtered like
        /api/logs (the page loads the backlog from there first)."""
        try:
            tail = LogTail(config.state_dir, LogFilter.of(level, strategy))
        except ValueError as exc:
            await socket.close(code=4422, reason=f"level: {exc}")
            return

        def next_message() -> dict[str, Any] | None:
            lines = tail.poll()
            return {"lines": lines} if lines else None

        await stream(socket, next_message)

    @app.middleware("http")
    async def timing(request: Request, call_next: Any) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.latency.labels(getattr(route, "path", "other")).observe(time.perf_counter() - start)
        return response

    # Added last, so outermost (each wraps what came before): the client's address is settled
    # first, then the Host is checked and the body limited before anything reads the request.
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(config.allowed_hosts),
                       www_redirect=False)
    app.add_middleware(SecurityHeaders)
    # Without a configured proxy no forwarded header is believed (uvicorn's own default would
    # trust 127.0.0.1, where any local process can claim to be a proxy).
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(config.trusted_proxies))

    return app


def save_settings(env_file: Path, changes: dict[str, str], key_file: Path | None) -> list[tuple[str, str]]:
    """(key, problem) pairs; none: the env file now holds the changes (other lines untouched),
    replaced atomically, the previous version kept beside it as `<name>.bak`."""
    problems = []
    for key, value in changes.items():
        if key not in KEYS:
            problems.append((key, "unknown key; expected one of the keys in config/env_bot.template"))
        elif KEYS[key].secret:
            problems.append((key, "a secret: change it in the encrypted secrets file, not here"))
        else:
            # Any line or paragraph separator would split the line when the file is read again
            # (a value could then set a second key, and the file would no longer load).
            try:
                one_line(value)
            except ValueError as exc:
                problems.append((key, str(exc)))
    if problems:
        return problems
    try:
        load_settings(env_file, changes, key_file=key_file)
    except SettingsError as exc:
        return [(p.key, str(p)) for p in exc.problems]
    lines = env_file.read_text().splitlines()
    pending = dict(changes)
    for i, line in enumerate(lines):
        name = line.strip().removeprefix("export ").partition("=")[0].strip()
        if name in pending and not line.lstrip().startswith("#"):
            lines[i] = f"{name}={pending.pop(name)}"
    lines += [f"{name}={value}" for name, value in pending.items()]
    write_atomically(env_file, "\n".join(lines) + "\n")
    return []


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` by rename (a reader sees the old file or the new, never half of one), with
    its permissions, after copying the old one to `<name>.bak`."""
    shutil.copy2(path, path.with_name(path.name + ".bak"))
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(text)
        tmp.flush()
        os.fsync(tmp.fileno())
    shutil.copymode(path, tmp.name)
    os.replace(tmp.name, path)


def read_deals(state_dir: Path) -> list[dict[str, Any]]:
    """Round trips from the journal's `trades` table (SQLite journals in the state folder)."""
    import sqlite3

    deals: list[dict[str, Any]] = []
    for path in sorted(state_dir.glob("journal_*.sqlite")):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            db.row_factory = sqlite3.Row
            try:
                rows = db.execute("SELECT * FROM trades ORDER BY entry_ns").fetchall()
            except sqlite3.OperationalError:
                continue  # a journal created before its first round trip
            deals += [dict(row) | {"journal": path.name} for row in rows]
    return deals
