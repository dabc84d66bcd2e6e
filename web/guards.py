"""
ASGI guards around the dashboard app, outside everything that reads a request: a body-size
limit (413 before the body is read, so a huge unauthenticated POST costs neither memory nor the
event loop's time) and the security headers every response carries.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp
from starlette.types import Message
from starlette.types import Receive
from starlette.types import Scope
from starlette.types import Send

# No inline script anywhere (the pages load their code from /static); Plotly sets inline styles.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
# A backtest report is a self-contained file with Plotly inline: sandboxed into an opaque
# origin, its scripts run but can neither read the session cookie nor call the API as the user.
REPORT_CSP = ("sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
              "style-src 'unsafe-inline'; img-src data: blob:; font-src data:")


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuses request bodies over `max_bytes` with 413: at once from Content-Length, else
    (chunked) as soon as the bytes received pass it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"request body over the limit of {self.max_bytes} bytes (WEB_MAX_BODY_BYTES)"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _send_json(send, 400, "Content-Length: expected a number of bytes")
                return
            if int(length) > self.max_bytes:
                await _send_json(send, 413, too_large)
                return
        received = 0
        refused = False

        async def limited_receive() -> Message:
            # Past the limit the 413 goes out at once and the app is told the client left: the
            # app's own reading code (which turns read errors into 400) never sees the rest.
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    await _send_json(send, 413, too_large)
                    return {"type": "http.disconnect"}
            return message

        async def quiet_after_refusal(message: Message) -> None:
            if not refused:  # after the 413, whatever the app answers is dropped
                await send(message)

        await self.app(scope, limited_receive, quiet_after_refusal)


class SecurityHeaders:
    """Headers on every response: CSP, no referrer, no framing or sniffing, not indexed, and
    `Cache-Control: no-store` on everything but the static files (API answers and pages carry
    account figures and the CSRF token)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        report = path.startswith("/backtests/")
        cacheable = path.startswith(("/static/", "/static-login/"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if cacheable or k != b"cache-control"]
                headers += [
                    (b"content-security-policy", (REPORT_CSP if report else CSP).encode()),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"x-robots-tag", b"noindex, nofollow"),
                ]
                if not cacheable:
                    headers.append((b"cache-control", b"no-store"))
                message = message | {"headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
