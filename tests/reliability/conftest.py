"""Helpers for the reliability tests: apps over fake-embedder indexes, a live server in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from semsearch.api.app import create_app
from semsearch.index.builder import build_index
from semsearch.search.settings import Settings
from tests.conftest import FakeEmbedder

TOKEN = "s3cret-admin-token-of-32-characters"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def add_article(seeds: Path, name: str, title: str, body: str) -> Path:
    """Write a small article (title, blank line, body) into the seeds folder."""
    path = seeds / name
    path.write_text(f"{title}\n\n{body}\n", encoding="utf-8")
    return path


def make_app(index_dir: Path, seeds: Path | None = None, **overrides: Any) -> FastAPI:
    """The app over `index_dir` with the fake embedder; auto-reload off unless asked for."""
    settings = Settings(
        index_dir=index_dir,
        seeds_dir=seeds or index_dir.parent / "seeds",
        **{"reload_interval": 0, **overrides},
    )
    return create_app(settings, FakeEmbedder())


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # h11, as `semsearch serve` runs it (httptools, when installed, buffers headers of any size).
    config = uvicorn.Config(app, log_level="warning", lifespan="on", http="h11")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@pytest.fixture
def seeded(tmp_path: Path, copy_seeds: Path, fake_embedder: FakeEmbedder) -> tuple[Path, Path]:
    """(seeds, index): a private copy of seeds/ indexed once as gen-1 with the fake embedder."""
    index_dir = tmp_path / "index"
    build_index(copy_seeds, index_dir, fake_embedder)
    return copy_seeds, index_dir
