"""Damaged index files are refused when opened; the server keeps or falls back to a good one."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from semsearch.index.builder import build_index
from semsearch.index.errors import IndexCorrupt
from semsearch.index.faiss_generation import FaissGeneration
from semsearch.index.faiss_store import FaissStore
from semsearch.search.serving import ServiceHolder
from semsearch.search.settings import Settings
from tests.conftest import FakeEmbedder
from tests.reliability.conftest import AUTH, TOKEN, add_article, make_app


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated vectors.faiss": ("vectors.faiss", truncate),
    "flipped byte in store.sqlite": ("store.sqlite", flip_byte),
    "truncated vectors.npy": ("vectors.npy", truncate),
    "deleted store.sqlite": ("store.sqlite", Path.unlink),
}


def two_generations(seeds: Path, index_dir: Path) -> None:
    """gen-1 (from the fixture) and gen-2 with one more article; CURRENT names gen-2."""
    add_article(seeds, "new.txt", "Glacier report", "The glacier retreated by forty metres.")
    build_index(seeds, index_dir, FakeEmbedder())


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_file_is_refused_with_a_clear_error(seeded, case: str) -> None:
    _, index_dir = seeded
    name, damage = DAMAGE[case]
    damage(index_dir / "gen-1" / name)
    with pytest.raises(IndexCorrupt) as caught:
        FaissGeneration.open(index_dir)
    message = str(caught.value)
    assert name in message and "missing or damaged" in message
    assert "semsearch index" in message


def test_a_current_naming_no_generation_is_refused(seeded) -> None:
    _, index_dir = seeded
    (index_dir / "CURRENT").write_text("../../etc\n", encoding="utf-8")
    with pytest.raises(IndexCorrupt, match="not a generation folder"):
        FaissGeneration.open(index_dir)


@pytest.mark.parametrize("case", DAMAGE)
def test_the_server_falls_back_to_the_last_good_generation(seeded, case: str) -> None:
    seeds, index_dir = seeded
    with TestClient(make_app(index_dir)) as client:
        expected = client.get("/search", params={"q": "Abu Dhabi talks"}).json()["hits"]
    two_generations(seeds, index_dir)
    name, damage = DAMAGE[case]
    damage(index_dir / "gen-2" / name)
    with TestClient(make_app(index_dir)) as client:
        health = client.get("/health").json()
        assert (health["index"], health["generation"]) == ("loaded", "gen-1")
        assert "gen-2 was refused" in health["detail"] and name in health["detail"]
        response = client.get("/search", params={"q": "Abu Dhabi talks"})
        assert response.headers["x-semsearch-generation"] == "gen-1"
        assert response.json()["hits"] == expected


def test_a_damaged_new_generation_is_not_swapped_in(seeded) -> None:
    seeds, index_dir = seeded
    with TestClient(make_app(index_dir, admin_token=TOKEN)) as client:
        two_generations(seeds, index_dir)
        flip_byte(index_dir / "gen-2" / "store.sqlite")
        response = client.post("/admin/reload", headers=AUTH)
        assert response.status_code == 409
        assert "store.sqlite is missing or damaged" in response.json()["detail"]
        assert "still serving gen-1" in response.json()["detail"]
        assert client.get("/search", params={"q": "talks"}).status_code == 200
        assert client.get("/health").json()["generation"] == "gen-1"


def test_auto_reload_refuses_a_damaged_generation_once(seeded) -> None:
    seeds, index_dir = seeded
    holder = ServiceHolder(Settings(index_dir=index_dir), FakeEmbedder())
    try:
        holder.get()
        two_generations(seeds, index_dir)
        truncate(index_dir / "gen-2" / "vectors.faiss")
        assert holder.check_for_new() is None
        assert holder.current is not None and holder.current.store.generation == "gen-1"
        assert holder.problem is not None and holder.problem.startswith("gen-2 was refused")
        assert holder.check_for_new() is None  # remembered: not re-checked every few seconds
        build_index(seeds, index_dir, FakeEmbedder())  # a good gen-3 is taken at once
        result = holder.check_for_new()
        assert result is not None and result.generation == "gen-3"
        assert holder.problem is None
    finally:
        holder.close()


def test_with_no_good_generation_search_is_503_with_the_reason(seeded) -> None:
    _, index_dir = seeded
    flip_byte(index_dir / "gen-1" / "store.sqlite")
    with TestClient(make_app(index_dir)) as client:
        response = client.get("/search", params={"q": "talks"})
        assert response.status_code == 503
        assert "store.sqlite is missing or damaged" in response.json()["detail"]
        health = client.get("/health").json()
        assert health["index"] == "missing" and "damaged" in health["detail"]


MALFORMED_CURRENT = {
    "a backup's name": b"gen-2.bak\n",
    "garbage": b"\xff\xfe\x00junk\x1b[2J\n",
    "a generation that does not exist": b"gen-9\n",
    "a path": b"../../etc\n",
    "two names": b"gen-1\ngen-2\n",
}


@pytest.mark.parametrize("case", MALFORMED_CURRENT)
def test_a_malformed_current_is_a_clear_error(seeded, case: str) -> None:
    _, index_dir = seeded
    (index_dir / "CURRENT").write_bytes(MALFORMED_CURRENT[case])
    with pytest.raises(IndexCorrupt) as caught:
        FaissStore(index_dir).open()
    message = str(caught.value)
    assert message.startswith(f"{index_dir / 'CURRENT'} names '")
    assert message.endswith(
        ": write gen-1 (the newest generation) into it, or run `semsearch index`"
    )
    assert "\n" not in message and message.isprintable()


@pytest.mark.parametrize("case", MALFORMED_CURRENT)
def test_the_server_serves_the_newest_good_generation_past_a_malformed_current(
    seeded, case: str
) -> None:
    seeds, index_dir = seeded
    two_generations(seeds, index_dir)
    (index_dir / "CURRENT").write_bytes(MALFORMED_CURRENT[case])
    with TestClient(make_app(index_dir), raise_server_exceptions=False) as client:
        health = client.get("/health").json()
        assert (health["index"], health["generation"]) == ("loaded", "gen-2")
        assert "was refused" in health["detail"] and "CURRENT names '" in health["detail"]
        assert health["detail"].endswith("; serving gen-2") and "\n" not in health["detail"]
        response = client.get("/search", params={"q": "glacier"})
        assert response.status_code == 200
        assert response.headers["x-semsearch-generation"] == "gen-2"
        assert response.json()["hits"][0]["article_id"] == "new.txt"


def test_past_a_malformed_current_a_damaged_generation_is_passed_over(seeded) -> None:
    seeds, index_dir = seeded
    two_generations(seeds, index_dir)
    flip_byte(index_dir / "gen-2" / "store.sqlite")
    (index_dir / "CURRENT").write_text("gen-2.bak\n", encoding="utf-8")
    with TestClient(make_app(index_dir)) as client:
        assert client.get("/health").json()["generation"] == "gen-1"
        assert client.get("/search", params={"q": "talks"}).status_code == 200


def test_a_malformed_current_is_not_swapped_in_and_a_build_mends_it(seeded) -> None:
    seeds, index_dir = seeded
    holder = ServiceHolder(Settings(index_dir=index_dir), FakeEmbedder())
    try:
        assert holder.get().store.generation == "gen-1"
        (index_dir / "CURRENT").write_text("gen-1.bak\n", encoding="utf-8")
        assert holder.check_for_new() is None
        assert holder.current is not None and holder.current.store.generation == "gen-1"
        assert holder.problem is not None and holder.problem.startswith("gen-1.bak was refused")
        report = build_index(seeds, index_dir, FakeEmbedder(), skip_unchanged=True)
        assert (report.generation, report.up_to_date) == ("gen-2", False)
        result = holder.check_for_new()
        assert result is not None and result.generation == "gen-2"
        assert holder.problem is None
    finally:
        holder.close()


def test_a_current_that_cannot_be_read_is_a_503_with_the_reason(seeded) -> None:
    seeds, index_dir = seeded
    (index_dir / "CURRENT").unlink()
    (index_dir / "CURRENT").mkdir()
    with pytest.raises(IndexCorrupt, match=r"cannot read .*CURRENT \(Is a directory\): make it"):
        FaissStore(index_dir).open()
    with TestClient(make_app(index_dir)) as client:
        response = client.get("/search", params={"q": "talks"})
        assert response.status_code == 503
        assert "CURRENT (Is a directory)" in response.json()["detail"]
    # A build says so before writing anything (it could never replace a folder), in one line.
    with pytest.raises(IndexCorrupt, match=r"CURRENT is not a file: remove it, then build again"):
        build_index(seeds, index_dir, FakeEmbedder())
    assert sorted(p.name for p in index_dir.glob("*gen-*")) == ["gen-1"]
