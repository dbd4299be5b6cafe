"""A real server on 127.0.0.1, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from semsearch.api.app import create_app
from semsearch.search.settings import Settings

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Headless, no sandbox (tests run as root in CI), nothing in the background that phones home,
# and every host name but the loopback address unresolvable: the page must work offline.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


@pytest.fixture(scope="session")
def server(real_index: Path, real_embedder) -> Iterator[str]:
    """The app with the real model on the seed index, served by uvicorn on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(Settings(index_dir=real_index), real_embedder)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium; skipped only where it is not installed (`make test` installs it)."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found: `make test` installs it (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server: str):
    """A fresh page at desktop size whose requests must all stay on the test server."""
    context = browser.new_context(viewport={"width": 1100, "height": 760}, base_url=server)
    page = context.new_page()
    page.set_default_timeout(15_000)
    elsewhere: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server) else elsewhere.append(r.url))
    yield page
    context.close()
    assert elsewhere == [], f"the page asked for something off the test server: {elsewhere}"


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: a temporary folder, or SCREENSHOT_DIR (`make screenshots`)."""
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
