"""HTTP hardening: allowed Host names, a cap on requests at once, caps on request bodies (64 KiB)
and headers (16 KiB); CORS, off by default; who counts as the admin."""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Any

from fastapi import FastAPI, Request
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from semsearch.search.settings import Settings

__all__ = [
    "LOOPBACK_HOSTS",
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "UNLIMITED_PATHS",
    "RequestLimit",
    "RequestSizeLimits",
    "admin_token_matches",
    "allowed_hosts",
    "cors_origins",
    "install_security",
    "is_admin",
]

MAX_BODY_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024  # far above any real client's; uvicorn's parser stops at ~100 KiB
# Host headers answered by default by a server bound to a loopback address: a page on another
# site that points its own name at 127.0.0.1 (DNS rebinding) sends its name, and gets a 400.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
# Answered however busy the server is: a monitor must be able to tell "busy" from "down".
UNLIMITED_PATHS = frozenset({"/health", "/metrics"})
# Seconds a client told "busy" (503) is asked to wait before trying again.
RETRY_AFTER_SECONDS = 1


class RequestLimit:
    """Answer 503 with Retry-After to a request past `limit` already in progress.

    /health and /metrics are never refused (they run on the event loop, not in the thread pool
    the searches share). The count is kept on the event loop's thread, so it needs no lock.
    """

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_progress >= self.limit:
            detail = (
                f"the server is busy ({self.limit} requests in progress): "
                f"try again in {RETRY_AFTER_SECONDS} s"
            )
            await _refuse(send, 503, detail, [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())])
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1


class RequestSizeLimits:
    """Answer 413 to a body over `max_bytes` and 431 to headers over `max_header_bytes`.

    Both are checked before the app reads anything. A declared Content-Length is checked at
    once; a chunked body (no length) is read up to the limit and handed on only if it fits, so
    no route ever sees a partial body.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header_bytes = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if header_bytes > self.max_header_bytes:
            detail = f"the request headers are over {self.max_header_bytes // 1024} KiB"
            await _refuse(send, 431, detail)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _refuse(send, 400, "the Content-Length header is not a number")
            elif int(length) > self.max_bytes:
                await _refuse(send, 413, self._too_large())
            else:
                await self.app(scope, receive, send)
            return
        if b"chunked" not in headers.get(b"transfer-encoding", b"").lower():
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await _refuse(send, 413, self._too_large())
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    def _too_large(self) -> str:
        return f"the request body is over {self.max_bytes // 1024} KiB ({self.max_bytes} bytes)"


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(
    send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps({"detail": detail}).encode("utf-8")
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode("ascii")),
        (b"connection", b"close"),  # the unread body makes the connection unusable
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def cors_origins(settings: Settings) -> list[str]:
    """The origins named by SEMSEARCH_CORS_ORIGINS (comma-separated); empty means CORS is off."""
    return [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]


def allowed_hosts(settings: Settings) -> list[str]:
    """The Host names the server answers: SEMSEARCH_ALLOWED_HOSTS when set (`*`: any); else the
    loopback names when it is bound to a loopback address, and any name otherwise."""
    named = [host.strip().lower() for host in settings.allowed_hosts.split(",") if host.strip()]
    if named:
        return named
    return list(LOOPBACK_HOSTS) if _is_loopback(settings.host) else ["*"]


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def admin_token_matches(given: str, settings: Settings) -> bool:
    """True when `given` is the configured admin token, compared in constant time; always
    False when no token is configured."""
    token = settings.admin_token.get_secret_value() if settings.admin_token else ""
    return bool(token) and hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def is_admin(request: Request, settings: Settings) -> bool:
    """True when the request carries the admin token (`Authorization: Bearer <token>`)."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and admin_token_matches(given.strip(), settings)


def install_security(app: FastAPI, settings: Settings) -> None:
    """Add CORS (only when origins are configured), the size limits (outside CORS), the cap on
    requests at once and the allowed Host names (outermost)."""
    origins = cors_origins(settings)
    if origins:
        # Browsers may search from these origins; the admin token header is not allowed, so the
        # admin endpoints stay out of reach of pages.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"],
            max_age=600,
        )
    app.add_middleware(RequestSizeLimits)
    app.add_middleware(RequestLimit, limit=settings.max_requests)
    hosts = allowed_hosts(settings)
    if hosts != ["*"]:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
