"""HTTP hardening: CORS off by default and configurable, size limits on a real server."""

from __future__ import annotations

import contextlib
import socket

import httpx
import pytest
from fastapi.testclient import TestClient

from semsearch.search.settings import Settings
from tests.reliability.conftest import live_server, make_app

ORIGIN = "https://search.example.org"


def test_the_server_binds_loopback_by_default() -> None:
    assert Settings().host == "127.0.0.1"


def test_cors_is_off_by_default(seeded) -> None:
    _, index_dir = seeded
    with TestClient(make_app(index_dir)) as client:
        response = client.get("/search", params={"q": "talks"}, headers={"Origin": ORIGIN})
        preflight = client.options(
            "/search", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
        )
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in preflight.headers


@pytest.mark.parametrize(("origin", "allowed"), [(ORIGIN, True), ("https://evil.example", False)])
def test_cors_allows_only_the_configured_origins(seeded, origin: str, allowed: bool) -> None:
    _, index_dir = seeded
    app = make_app(index_dir, cors_origins=f"{ORIGIN}, http://localhost:3000")
    with TestClient(app) as client:
        response = client.get("/search", params={"q": "talks"}, headers={"Origin": origin})
        preflight = client.options(
            "/search",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
    assert response.status_code == 200
    assert (response.headers.get("access-control-allow-origin") == origin) is allowed
    assert (preflight.status_code == 200) is allowed


def test_cors_never_allows_the_admin_token_header(seeded) -> None:
    _, index_dir = seeded
    with TestClient(make_app(index_dir, cors_origins=ORIGIN)) as client:
        preflight = client.options(
            "/admin/reload",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
    assert preflight.status_code == 400


def raw_request(base: str, request: bytes) -> bytes:
    """Send raw bytes to the server and read its answer (the status line and some more)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # The server may answer and close before reading everything.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        return sock.recv(4096)


def refused_body(client: httpx.Client, **request) -> httpx.Response:
    """POST an oversized body. The server answers 413 and closes without reading the rest, so a
    loaded machine can see the close while still sending: that attempt is retried (3 at most)."""
    for attempt in range(3):
        content = request.get("content")
        sent = {**request, "content": content()} if callable(content) else request
        try:
            return client.post("/search", **sent)
        except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def test_size_limits_on_a_real_server(seeded) -> None:
    _, index_dir = seeded
    with live_server(make_app(index_dir)) as base, httpx.Client(base_url=base) as client:
        small = client.post("/search", json={"query": "talks", "k": 2})
        assert small.status_code == 200
        big = refused_body(client, json={"query": "talks", "pad": "x" * 70_000})
        assert big.status_code == 413
        assert "64 KiB" in big.json()["detail"]
        chunked = refused_body(
            client,
            content=lambda: iter([b'{"query": "', b"a" * 40_000, b"b" * 40_000, b'"}']),
            headers={"content-type": "json"},
        )
        assert chunked.status_code == 413
        header = client.get("/search", params={"q": "x"}, headers={"X-Big": "a" * 20_000})
        assert header.status_code == 431
        # Past what uvicorn's HTTP parser buffers, it answers 400 itself and closes.
        huge = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n"
        assert raw_request(base, huge).startswith(b"HTTP/1.1 400 ")
        assert client.get("/health").status_code == 200  # and it still serves


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(seeded) -> None:
    _, index_dir = seeded
    with live_server(make_app(index_dir)) as base:
        head = (
            b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000\r\n\r\n"
        )
        answer = raw_request(base, head)
    assert answer.startswith(b"HTTP/1.1 413 ")
