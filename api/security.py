"""HTTP hardening: caps on request bodies (64 KiB) and headers (16 KiB); CORS, off by default."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from semsearch.search.settings import Settings

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "RequestSizeLimits",
    "cors_origins",
    "install_security",
]

MAX_BODY_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024  # far above any real client's; uvicorn's parser stops at ~100 KiB


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


async def _refuse(send: Send, status: int, detail: str) -> None:
    payload = json.dumps({"detail": detail}).encode("utf-8")
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode("ascii")),
        (b"connection", b"close"),  # the unread body makes the connection unusable
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def cors_origins(settings: Settings) -> list[str]:
    """The origins named by SEMSEARCH_CORS_ORIGINS (comma-separated); empty means CORS is off."""
    return [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]


def install_security(app: FastAPI, settings: Settings) -> None:
    """Add CORS (only when origins are configured) and the size limits (outside CORS)."""
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
