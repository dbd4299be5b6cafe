"""End to end: `semsearch serve` (uvicorn) on 127.0.0.1 with the real model, queried over HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.model
SEMSEARCH = str(Path(sys.executable).parent / "semsearch")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_answers_over_http(real_index: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    command = [SEMSEARCH, "serve", "--port", str(port), "--index", str(real_index)]
    with open(log, "wb") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/health", timeout=2).json()["index"] == "loaded":
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"no answer in 90 s:\n{log.read_text()}"
            time.sleep(0.3)
        response = httpx.get(f"{base}/search", params={"q": "power outages", "k": 3}, timeout=30)
        assert response.status_code == 200
        hits = response.json()["hits"]
        assert len(hits) == 3
        assert any("1.2 million people" in " ".join(h["text"].split()) for h in hits)
        assert httpx.get(f"{base}/search", params={"q": ""}, timeout=10).status_code == 422
    finally:
        server.terminate()
        server.wait(timeout=20)
