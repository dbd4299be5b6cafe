"""Shared fixtures: a clean environment, a deterministic fake embedder, built indexes."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from semsearch.index.builder import build_index
from semsearch.index.embedders import make_embedder
from semsearch.index.embedding import Embedder
from semsearch.search.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_FILE = SEEDS / "000_9d59a1cdc1672ff3.txt"
SHARED = ROOT.parent / "shared"
# Starlette's TestClient sends `Host: testserver`, and a server bound to loopback answers only
# loopback names unless told otherwise (tests/reliability/test_limits.py checks that default).
# Set for the whole run, module-scoped fixtures and collection included.
TEST_ALLOWED_HOSTS = "testserver,127.0.0.1,localhost"
os.environ["SEMSEARCH_ALLOWED_HOSTS"] = TEST_ALLOWED_HOSTS


class FakeEmbedder:
    """Hashes each word into one of `dimension` signed buckets: texts sharing words are close.

    Deterministic, instant, and good enough to assert exact ids and scores in unit tests.
    """

    runtime = "fake"
    spreads_queries = False

    def __init__(self, dimension: int = 64, max_tokens: int = 254, model_id: str = "fake-hash"):
        self.model_id = model_id
        self._dimension = dimension
        self._max_tokens = max_tokens
        self.calls: list[int] = []

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self._dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.sha256(word.encode()).digest()
            vector[digest[0] % self._dimension] += 1.0 if digest[1] % 2 else -1.0
        norm = np.linalg.norm(vector)
        if norm == 0:
            vector[0] = 1.0
            norm = 1.0
        return vector / norm

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, 64))

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's one folder of OpenVINO exports: each model is exported once per session.

    Every test that loads a real model uses it: as `make_embedder(cache_dir=...)`, or through
    SEMSEARCH_MODEL_CACHE (set for every test by `clean_environ`) where Settings choose the
    embedder (the CLI, the server, `semsearch bench` and `eval`, which would otherwise export
    into each test's own index folder). Exports in it are keyed by the model:
    `openvino_runtime.export_folder` names each one by model id, the model's files and the
    openvino version. Only tests of the export itself (one refused, an unwritable folder) use
    folders of their own.
    """
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, model_cache: Path) -> None:
    """No SEMSEARCH_* variable from the caller's shell leaks into a test."""

    for name in list(os.environ):
        if name.startswith("SEMSEARCH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SEMSEARCH_MODEL_CACHE", str(model_cache))
    monkeypatch.setenv("SEMSEARCH_ALLOWED_HOSTS", TEST_ALLOWED_HOSTS)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def fake_index(tmp_path: Path, fake_embedder: FakeEmbedder) -> Path:
    """The seed article indexed with the fake embedder; returns the index folder."""
    index_dir = tmp_path / "index"
    build_index(SEEDS, index_dir, fake_embedder)
    return index_dir


@pytest.fixture(scope="session")
def real_embedder(model_cache: Path) -> Embedder:
    """The packaged all-MiniLM-L6-v2 on the default backend, loaded once for the session."""
    return make_embedder(cache_dir=model_cache).load()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory, real_embedder) -> Path:
    """The seed article indexed with the real model, shared by the session (read-only)."""
    index_dir = tmp_path_factory.mktemp("real") / "index"
    build_index(SEEDS, index_dir, real_embedder)
    return index_dir


@pytest.fixture
def copy_seeds(tmp_path: Path) -> Path:
    """A private copy of seeds/ that a test may change."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


# A Milvus server to test against instead of Milvus Lite (`make test-milvus` sets it). Read at
# import: `clean_environ` hides every SEMSEARCH_* variable from the tests themselves.
TEST_MILVUS_URI = os.environ.get("SEMSEARCH_TEST_MILVUS_URI", "")


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One Milvus Lite folder for the session, or the Milvus server SEMSEARCH_TEST_MILVUS_URI
    names (`http://127.0.0.1:19530`); each test takes an alias of its own in it, as users of
    one Milvus cluster would."""
    return TEST_MILVUS_URI or str(tmp_path_factory.mktemp("milvus") / "milvus.db")


def _milvus_without_bm25() -> str | None:
    """Why the Milvus under test has no full-text search (its version), or None if it has:
    Milvus Lite and Milvus 2.5 or later have BM25 functions."""
    if not TEST_MILVUS_URI:
        return None
    from pymilvus import MilvusClient

    from semsearch.index.milvus_writer import full_text_search

    client = MilvusClient(TEST_MILVUS_URI)
    try:
        if full_text_search(client) is False:
            return f"Milvus {client.get_server_version()} at {TEST_MILVUS_URI} has no BM25"
        return None
    finally:
        client.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `milvus_bm25` are skipped, with the reason, against a Milvus server older
    than 2.5; of a test of both stores (`backend`), only its Milvus run."""

    def on_milvus(item: pytest.Item) -> bool:
        callspec = getattr(item, "callspec", None)
        return callspec is None or callspec.params.get("backend", "milvus") == "milvus"

    marked = [i for i in items if i.get_closest_marker("milvus_bm25") and on_milvus(i)]
    if marked and (reason := _milvus_without_bm25()):
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=f"needs Milvus full-text search: {reason}"))


def milvus_settings(index_dir: Path, uri: str, alias: str, **more: object) -> Settings:
    """Settings of a service on the Milvus under test (`milvus_uri`, `milvus_alias`), with exact
    (FLAT) search, as FAISS's for a small index; `more` settings beside."""
    return Settings(
        index_dir=index_dir,
        store="milvus",
        milvus_uri=uri,
        milvus_collection=alias,
        milvus_index="flat",
        **more,  # type: ignore[arg-type]
    )


_aliases = itertools.count(1)


@pytest.fixture
def milvus_alias() -> str:
    """A fresh Milvus alias (an index of its own) for one test. The process id keeps apart
    the aliases of pytest sessions sharing one server (`make test-milvus` runs several)."""
    return f"test_{os.getpid()}_{next(_aliases)}"
