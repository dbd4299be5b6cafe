"""A real Milvus server stopped and started again (`make test-milvus`, .ci/milvus-tests).

While it is down, searches answer 503 with Retry-After and /health says the store is
unreachable; once it is back, the server recovers by itself, and the index built before the
stop opens and answers from its manifest rows (a Milvus 2.3 server loses collection properties
when it restarts). Skipped unless SEMSEARCH_TEST_MILVUS_CONTROL names the command that stops
and starts the server SEMSEARCH_TEST_MILVUS_URI points at: `CONTROL stop`, `CONTROL start`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import semsearch.search.serving
from semsearch.api.app import create_app
from semsearch.index.builder import build_index
from semsearch.search.settings import store_for
from tests.conftest import SEEDS, FakeEmbedder, milvus_settings

pytest.importorskip("pymilvus")

# Read at import: `clean_environ` hides every SEMSEARCH_* variable from the tests themselves.
CONTROL = os.environ.get("SEMSEARCH_TEST_MILVUS_CONTROL", "")
pytestmark = pytest.mark.skipif(
    not CONTROL, reason="no SEMSEARCH_TEST_MILVUS_CONTROL: run by `make test-milvus`"
)
# A restarted Milvus 2.3 answers health checks some seconds before it answers searches (it
# waits for the stopped server's sessions to lapse), and gRPC retries with a growing backoff.
RECOVERY_SECONDS = 120


def control(action: str) -> None:
    subprocess.run([*shlex.split(CONTROL), action], check=True, timeout=RECOVERY_SECONDS)


def test_a_restarted_server_keeps_the_index_and_serving_recovers_by_itself(
    tmp_path: Path, milvus_uri: str, milvus_alias: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = milvus_settings(tmp_path / "index", milvus_uri, milvus_alias)
    build_index(SEEDS, settings.index_dir, FakeEmbedder(), store=store_for(settings))
    monkeypatch.setattr(semsearch.search.serving, "STORE_CHECK_SECONDS", 0.0)
    query = {"q": "power outages", "k": 5}
    answered: set[int] = set()  # what /health and /search answered while the server recovered
    # (raise_server_exceptions=False: an error while it recovers is an answer, a 500, to count)
    with TestClient(create_app(settings, FakeEmbedder()), raise_server_exceptions=False) as client:
        before = client.get("/search", params=query)
        assert before.status_code == 200, before.text
        control("stop")
        refused = client.get("/search", params=query)
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "5"
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["store"] == "unreachable"
        control("start")
        deadline = time.monotonic() + RECOVERY_SECONDS
        while True:
            health, after = client.get("/health"), client.get("/search", params=query)
            answered |= {health.status_code, after.status_code}
            if health.status_code == after.status_code == 200:
                break
            assert time.monotonic() < deadline, f"not back within {RECOVERY_SECONDS} s: {answered}"
            time.sleep(0.5)
        assert after.json()["hits"] == before.json()["hits"]
        assert after.headers["X-Semsearch-Generation"] == "gen-1"
    store = store_for(settings)  # a client of its own, as a process started now would have
    opened = store.open()
    try:
        assert (opened.generation, opened.count()) == ("gen-1", 18)
    finally:
        opened.close()
        store.drop()
    # While it reloads its collections a restarted server says "collection not loaded": a 503
    # to retry, never a 500.
    assert answered <= {200, 503}
