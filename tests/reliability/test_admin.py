"""Admin endpoints: off without a token, bearer auth, background reindex, reload, the build lock."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from semsearch.index.builder import build_index
from semsearch.index.lock import BuildLock
from semsearch.search.cli import app as cli
from tests.conftest import FakeEmbedder
from tests.reliability.conftest import AUTH, TOKEN, add_article, make_app


def wait_for_job(client: TestClient, job_id: str, seconds: float = 10) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        state = client.get(f"/admin/reindex/{job_id}", headers=AUTH).json()
        if state["status"] != "running":
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"reindex job {job_id} still running: {state}")
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/admin/reindex"), ("post", "/admin/reload"), ("get", "/admin/reindex/x")],
)
def test_admin_routes_do_not_exist_without_a_token(seeded, method: str, path: str) -> None:
    _, index_dir = seeded
    with TestClient(make_app(index_dir)) as client:
        response = getattr(client, method)(path, headers=AUTH)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Basic czNjcmV0"}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({"Authorization": "Bearer wrong-token"}, 403),
        ({"Authorization": f"Bearer {TOKEN}x"}, 403),
        ({"Authorization": f"Bearer {TOKEN[:-1]}"}, 403),
        (AUTH, 200),
    ],
)
def test_admin_auth(seeded, headers: dict, status: int) -> None:
    _, index_dir = seeded
    with TestClient(make_app(index_dir, admin_token=TOKEN)) as client:
        response = client.post("/admin/reload", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_search_stays_open_with_a_token(seeded) -> None:
    _, index_dir = seeded
    with TestClient(make_app(index_dir, admin_token=TOKEN)) as client:
        assert client.get("/search", params={"q": "talks"}).status_code == 200


def test_reindex_builds_in_the_background_and_serves_the_result(seeded) -> None:
    seeds, index_dir = seeded
    add_article(seeds, "new.txt", "Glacier report", "The glacier retreated by forty metres.")
    with TestClient(make_app(index_dir, seeds, admin_token=TOKEN)) as client:
        response = client.post("/admin/reindex", headers=AUTH)
        assert response.status_code == 202
        job = response.json()
        assert response.headers["location"] == f"/admin/reindex/{job['id']}"
        assert job["status"] == "running"
        state = wait_for_job(client, job["id"])
        assert state["status"] == "succeeded", state
        assert (state["generation"], state["articles"]) == ("gen-2", 2)
        # The one new passage is embedded; the seed's 18 come from the embedding cache.
        assert (state["passages"], state["embedded"], state["reused"]) == (19, 1, 18)
        assert state["finished_at"] >= state["started_at"] == job["started_at"]  # ISO times
        assert client.get("/health").json()["generation"] == "gen-2"
        hits = client.get("/search", params={"q": "glacier retreated", "mode": "lexical"})
        assert hits.json()["hits"][0]["article_id"] == "new.txt"
        assert hits.headers["x-semsearch-generation"] == "gen-2"


def test_reindex_job_reports_a_failure(seeded) -> None:
    seeds, index_dir = seeded
    for path in seeds.iterdir():
        path.unlink()
    with TestClient(make_app(index_dir, seeds, admin_token=TOKEN)) as client:
        job = client.post("/admin/reindex", headers=AUTH).json()
        state = wait_for_job(client, job["id"])
        assert state["status"] == "failed"
        assert "no readable .txt article" in state["error"]
        assert client.get("/health").json()["generation"] == "gen-1"


def test_reindex_without_a_seeds_folder_is_503(seeded, tmp_path: Path) -> None:
    _, index_dir = seeded
    with TestClient(make_app(index_dir, tmp_path / "nowhere", admin_token=TOKEN)) as client:
        response = client.post("/admin/reindex", headers=AUTH)
    assert response.status_code == 503
    assert "does not exist" in response.json()["detail"]


def test_unknown_job_is_404(seeded) -> None:
    _, index_dir = seeded
    with TestClient(make_app(index_dir, admin_token=TOKEN)) as client:
        assert client.get("/admin/reindex/nope", headers=AUTH).status_code == 404


def test_reindex_while_a_build_holds_the_lock_is_409(seeded) -> None:
    seeds, index_dir = seeded
    with (
        TestClient(make_app(index_dir, seeds, admin_token=TOKEN)) as client,
        BuildLock(index_dir),
    ):
        response = client.post("/admin/reindex", headers=AUTH)
    assert response.status_code == 409
    assert "already running" in response.json()["detail"]


def test_cli_index_while_a_build_holds_the_lock_fails_in_one_line(seeded) -> None:
    seeds, index_dir = seeded
    with BuildLock(index_dir):
        result = CliRunner().invoke(
            cli, ["index", "--seeds", str(seeds), "--index", str(index_dir)]
        )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"semsearch: error: a build of {index_dir} is already running")


def test_build_lock_is_free_again_after_release(tmp_path: Path) -> None:
    with BuildLock(tmp_path):
        pass
    with BuildLock(tmp_path) as lock:
        assert lock.held


def test_reload_picks_up_a_generation_built_elsewhere(seeded) -> None:
    seeds, index_dir = seeded
    with TestClient(make_app(index_dir, admin_token=TOKEN)) as client:
        assert client.post("/admin/reload", headers=AUTH).json() == {
            "generation": "gen-1",
            "previous": "gen-1",
            "changed": False,
            "in_flight": 0,
        }
        add_article(seeds, "new.txt", "Glacier report", "The glacier retreated by forty metres.")
        build_index(seeds, index_dir, FakeEmbedder())
        assert client.get("/health").json()["generation"] == "gen-1"  # auto-reload is off here
        assert client.post("/admin/reload", headers=AUTH).json() == {
            "generation": "gen-2",
            "previous": "gen-1",
            "changed": True,
            "in_flight": 0,
        }
        assert client.get("/health").json()["generation"] == "gen-2"


def test_reindex_and_reload_on_milvus(
    copy_seeds: Path, tmp_path: Path, milvus_uri: str, milvus_alias: str
) -> None:
    """The background reindex writes a new Milvus collection and the server moves to it."""
    milvus = {
        "store": "milvus",
        "milvus_uri": milvus_uri,
        "milvus_collection": milvus_alias,
        "milvus_index": "flat",
    }
    application = make_app(tmp_path / "index", copy_seeds, admin_token=TOKEN, **milvus)
    with TestClient(application) as client:
        assert client.get("/health").json()["index"] == "missing"
        job = client.post("/admin/reindex", headers=AUTH).json()["id"]
        first = wait_for_job(client, job, seconds=120)  # a build on a Milvus server: ~20 s
        assert (first["status"], first["generation"]) == ("succeeded", "gen-1"), first
        assert client.get("/search", params={"q": "power"}).status_code == 200
        assert client.get("/stats").json()["store"] == "milvus"
        add_article(copy_seeds, "storm.txt", "Storm cuts power", "A storm cut the grid power.")
        job = client.post("/admin/reindex", headers=AUTH).json()["id"]
        second = wait_for_job(client, job, seconds=120)
        assert (second["status"], second["generation"]) == ("succeeded", "gen-2"), second
        found = client.get("/search", params={"q": "storm grid", "k": 1})
        assert found.headers["X-Semsearch-Generation"] == "gen-2"
        assert found.json()["hits"][0]["article_id"] == "storm.txt"
