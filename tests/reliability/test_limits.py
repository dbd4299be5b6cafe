"""Bounds a client cannot push past: requests at once, slow headers, Host names, metric labels,
what /stats tells a stranger, /docs without a CDN, the admin token's length, leased pages."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from semsearch.index.builder import build_index
from semsearch.search.cli import app as cli
from semsearch.search.http_server import uvicorn_options
from semsearch.search.service import SearchService
from semsearch.search.settings import Settings
from tests.conftest import FakeEmbedder
from tests.reliability.conftest import AUTH, TOKEN, add_article, make_app


def _serve(app, settings: Settings):  # type: ignore[no-untyped-def]
    """Serve `app` on 127.0.0.1 with `semsearch serve`'s protocol and limits; (server, url)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="on", **uvicorn_options(settings))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    return server, thread, sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


class _Gate:
    """Makes every search wait until opened, counting the searches waiting."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.open = threading.Event()
        self.waiting = 0
        real = SearchService.search

        def held(service, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.waiting += 1
            self.open.wait(30)
            return real(service, *args, **kwargs)

        monkeypatch.setattr(SearchService, "search", held)


def test_past_the_request_cap_a_503_with_retry_after_and_health_still_answers(
    seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 10: a flood of searches fills the cap and the thread pool; /health stays quick."""
    _, index_dir = seeded
    # A cap above the thread pool's 40 threads: the pool itself is full while /health is asked.
    settings = Settings(index_dir=index_dir, max_requests=48, reload_interval=0)
    server, thread, sock, base = _serve(make_app(index_dir, max_requests=48), settings)
    gate = _Gate(monkeypatch)
    statuses: list[int] = []
    try:

        def search() -> None:
            with httpx.Client(base_url=base, timeout=60) as client:
                statuses.append(client.get("/search", params={"q": "power"}).status_code)

        flood = [threading.Thread(target=search) for _ in range(48)]
        for t in flood:
            t.start()
        deadline = time.monotonic() + 20
        while gate.waiting < 40 and time.monotonic() < deadline:  # every pool thread is taken
            time.sleep(0.02)
        assert gate.waiting >= 40
        with httpx.Client(base_url=base, timeout=5) as client:
            started = time.perf_counter()
            health = client.get("/health")
            assert time.perf_counter() - started < 1.0
            assert health.status_code == 200 and health.json()["index"] == "loaded"
            assert client.get("/metrics").status_code == 200
            busy = client.get("/search", params={"q": "power"})
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "1"
        assert "busy" in busy.json()["detail"]
        gate.open.set()
        for t in flood:
            t.join(30)
        assert statuses == [200] * 48  # the ones admitted are all answered
    finally:
        gate.open.set()
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def test_a_connection_that_never_finishes_its_headers_is_closed(seeded) -> None:
    """Finding 10: slow or idle connections do not stay open forever."""
    _, index_dir = seeded
    settings = Settings(index_dir=index_dir, header_timeout=0.5, keep_alive_timeout=0.5)
    server, thread, sock, base = _serve(make_app(index_dir), settings)
    port = urlparse(base).port
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as slow:
            slow.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never ends its head
            started = time.monotonic()
            assert slow.recv(1024) == b""  # closed by the server
            assert time.monotonic() - started < 3
        with socket.create_connection(("127.0.0.1", port), timeout=5) as idle:
            assert idle.recv(1024) == b""  # never sent anything: closed too
        with socket.create_connection(("127.0.0.1", port), timeout=5) as kept:
            # A complete request is answered; the connection is then closed once idle.
            kept.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
                answer += kept.recv(4096)
            assert answer.startswith(b"HTTP/1.1 200 ")
            assert kept.recv(1024) == b""
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def test_only_loopback_host_names_by_default_on_loopback(
    seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 11: DNS rebinding. Bound to 127.0.0.1, another Host name is refused."""
    _, index_dir = seeded
    monkeypatch.delenv("SEMSEARCH_ALLOWED_HOSTS")  # the default, not the tests' own list
    with TestClient(make_app(index_dir), base_url="http://127.0.0.1:8000") as client:
        assert client.get("/health").status_code == 200
        for host in ("localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST"):
            assert client.get("/health", headers={"host": host}).status_code == 200, host
        for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example"):
            answer = client.get("/search", params={"q": "power"}, headers={"host": host})
            assert answer.status_code == 400, host
    with TestClient(make_app(index_dir, host="0.0.0.0"), base_url="http://search.lan") as client:
        assert client.get("/health").status_code == 200  # bound to every address: any name
    named = make_app(index_dir, host="0.0.0.0", allowed_hosts="search.lan")
    with TestClient(named, base_url="http://search.lan") as client:
        assert client.get("/health").status_code == 200
        assert client.get("/health", headers={"host": "other.lan"}).status_code == 400


def test_stats_shows_paths_only_to_the_admin(seeded) -> None:
    """Finding 11: /stats is public; the server's folders are not."""
    _, index_dir = seeded
    with TestClient(make_app(index_dir, admin_token=TOKEN)) as client:
        public = client.get("/stats").json()
        assert public["source"] is None and public["index_dir"] is None
        assert public["passages"] > 0
        wrong = client.get("/stats", headers={"Authorization": "Bearer " + "x" * 40}).json()
        assert wrong["index_dir"] is None
        admin = client.get("/stats", headers=AUTH).json()
        assert admin["index_dir"] == str(index_dir)
        assert Path(admin["source"]).is_absolute()


def test_docs_load_their_assets_from_the_server_itself(seeded) -> None:
    """Finding 11: /docs works offline and asks no third party."""
    _, index_dir = seeded
    with TestClient(make_app(index_dir)) as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
            assets += re.findall(r"""url: ?["']([^"']+)["']""", html)
            assert assets, page
            assert not [a for a in assets if "://" in a or a.startswith("//")], assets
            for asset in assets:
                assert client.get(asset).status_code == 200, asset


@pytest.mark.parametrize("token", ["s3cret", "x" * 31])
def test_a_short_admin_token_is_refused_at_start(token: str, tmp_path: Path) -> None:
    """Finding 11: the server does not start with a guessable admin token; the token itself is
    never printed."""
    with pytest.raises(ValueError, match="at least 32"):
        Settings(admin_token=token)
    result = CliRunner().invoke(
        cli, ["serve", "--index", str(tmp_path)], env={"SEMSEARCH_ADMIN_TOKEN": token}
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("semsearch: error: bad configuration: SEMSEARCH_ADMIN_TOKEN")
    assert "at least 32" in result.stderr and token not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert Settings(admin_token="x" * 32).admin_token is not None


def test_unknown_methods_share_one_metrics_label(seeded) -> None:
    """Finding 3: a client sending made-up methods cannot add time series."""
    _, index_dir = seeded
    with TestClient(make_app(index_dir)) as client:
        for n in range(20):
            assert client.request(f"X{n}METHOD", "/search").status_code == 405
        client.request("PURGE", "/nowhere")
        metrics = client.get("/metrics").text
    methods = set(re.findall(r'semsearch_http_requests_total\{[^}]*method="([^"]*)"', metrics))
    assert methods == {"other"}, methods  # (this scrape itself is counted after it)
    routes = set(re.findall(r'semsearch_http_requests_total\{[^}]*route="([^"]*)"', metrics))
    assert routes <= {"/search", "/metrics", "unmatched"}, routes


def test_the_search_page_keeps_its_generation_through_a_reload(seeded) -> None:
    """Finding 4: a reload during a page search never closes the service under it (no 500)."""
    seeds, index_dir = seeded
    app = make_app(index_dir)
    with TestClient(app, raise_server_exceptions=False) as client:
        holder = app.state.holder
        served = holder.get()
        real_search = served.search_page  # what the page calls
        reloaded: list[str] = []

        def search_across_a_reload(*args, **kwargs):  # type: ignore[no-untyped-def]
            if not reloaded:  # the first search: a new generation is published and served
                add_article(seeds, "n.txt", "Note", "An extra note about power.")
                build_index(seeds, index_dir, FakeEmbedder())
                reloaded.append(holder.reload().generation)
            return real_search(*args, **kwargs)

        served.search_page = search_across_a_reload  # type: ignore[method-assign]
        page = client.get("/", params={"q": "power talks"}, headers={"accept": "text/html"})
        assert reloaded == ["gen-2"]
        assert page.status_code == 200, page.text[:500]
        assert "<mark>" in page.text
        assert client.get("/", params={"q": "extra note"}).status_code == 200
