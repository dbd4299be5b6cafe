"""Atomic generation swaps: leases, removal only when unused, auto-reload, reload under load."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from semsearch.index.builder import build_index
from semsearch.search.load import fetch_references, run_load
from semsearch.search.serving import ServiceHolder
from semsearch.search.settings import Settings
from tests.conftest import FakeEmbedder
from tests.reliability.conftest import AUTH, TOKEN, add_article, live_server, make_app


def test_a_leased_generation_outlives_the_swap_and_is_removed_after(seeded) -> None:
    seeds, index_dir = seeded
    embedder = FakeEmbedder()
    holder = ServiceHolder(Settings(index_dir=index_dir), embedder)
    try:
        with holder.lease() as old:
            before = old.search("Abu Dhabi talks", k=3)
            for n in range(3):  # gen-2..gen-4: the builder would drop gen-1 after gen-3
                add_article(seeds, f"n{n}.txt", f"Note {n}", f"Extra note number {n} here.")
                build_index(seeds, index_dir, embedder)
                holder.reload()
            assert holder.current is not None and holder.current.store.generation == "gen-4"
            assert (index_dir / "gen-1").is_dir()  # still in use: not removed
            # A thread that never touched it opens a new SQLite connection to the old files.
            found: list = []
            thread = threading.Thread(target=lambda: found.append(old.search("Abu Dhabi", k=3)))
            thread.start()
            thread.join()
            assert old.store.generation == "gen-1"
            assert [h.chunk_id for h in old.search("Abu Dhabi talks", k=3)] == [
                h.chunk_id for h in before
            ]
            assert found == [old.search("Abu Dhabi", k=3)] and len(found[0]) == 3
        for _ in range(100):  # the last user finished: removed in the background (bounded: 5 s)
            if not (index_dir / "gen-1").exists():
                break
            time.sleep(0.05)
        assert not (index_dir / "gen-1").exists()
        assert sorted(p.name for p in index_dir.glob("gen-*")) == ["gen-3", "gen-4"]
    finally:
        holder.close()


def test_an_async_lease_outlives_the_swap_and_closes_the_old_generation_after(seeded) -> None:
    # The HTTP dependency's lease: taken on the event loop, the old service closed when it ends.
    seeds, index_dir = seeded
    embedder = FakeEmbedder()
    holder = ServiceHolder(Settings(index_dir=index_dir), embedder)

    closed: list[str] = []

    async def search_across_a_swap() -> tuple[str, str]:
        async with holder.lease_async() as old:
            close = old.close
            old.close = lambda: (closed.append(old.store.generation), close())  # type: ignore
            add_article(seeds, "n.txt", "Note", "An extra note here.")
            build_index(seeds, index_dir, embedder)
            holder.reload()
            assert old.search("Abu Dhabi talks", k=3)  # still open under the lease
            assert not closed
            served = holder.current.store.generation if holder.current else ""
        return old.store.generation, served

    try:
        # On a thread of its own: another test's event loop may be running on this one.
        with ThreadPoolExecutor(1) as thread:
            assert thread.submit(asyncio.run, search_across_a_swap()).result() == ("gen-1", "gen-2")
        assert closed == ["gen-1"]  # by the lease's end, not by the swap
    finally:
        holder.close()


def test_reload_keeps_the_served_generation_when_nothing_changed(seeded) -> None:
    _, index_dir = seeded
    holder = ServiceHolder(Settings(index_dir=index_dir), FakeEmbedder())
    try:
        first = holder.get()
        result = holder.reload()
        assert (result.generation, result.changed) == ("gen-1", False)
        assert holder.get() is first
    finally:
        holder.close()


def test_the_server_notices_a_new_current_by_itself(seeded) -> None:
    seeds, index_dir = seeded
    with TestClient(make_app(index_dir, reload_interval=0.1)) as client:
        assert client.get("/health").json()["generation"] == "gen-1"
        add_article(seeds, "new.txt", "Glacier report", "The glacier retreated by forty metres.")
        build_index(seeds, index_dir, FakeEmbedder())
        for _ in range(100):  # bounded: 5 s
            if client.get("/health").json()["generation"] == "gen-2":
                break
            time.sleep(0.05)
        assert client.get("/health").json()["generation"] == "gen-2"
        hits = client.get("/search", params={"q": "glacier", "mode": "lexical"}).json()["hits"]
        assert hits[0]["article_id"] == "new.txt"


def test_reindex_and_reload_under_concurrent_queries(seeded) -> None:
    """Clients on 127.0.0.1 through an API reindex and a CLI-style build + reload: no failure,
    and every answer equals the reference answer of the generation that served it."""
    seeds, index_dir = seeded
    app = make_app(index_dir, seeds, admin_token=TOKEN)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as control:
        name, answers = fetch_references(control)
        references = {name: answers}

        def reindex() -> None:
            add_article(seeds, "b.txt", "The lighthouse keeper", "Zephyr keeps the lighthouse.")
            job = control.post("/admin/reindex", headers=AUTH).json()
            for _ in range(200):
                if control.get(f"/admin/reindex/{job['id']}", headers=AUTH).json()["status"] != (
                    "running"
                ):
                    break
                time.sleep(0.05)
            name, answers = fetch_references(control)
            references[name] = answers

        def reload() -> None:
            add_article(seeds, "c.txt", "The marble festival", "Quokka marble festival today.")
            build_index(seeds, index_dir, FakeEmbedder())
            assert control.post("/admin/reload", headers=AUTH).json()["changed"]
            name, answers = fetch_references(control)
            references[name] = answers

        report = run_load(
            base,
            clients=4,
            requests=240,
            events=[(1 / 3, reindex), (2 / 3, reload)],
            references=references,
        )
    assert report.problems == []
    assert report.errors == 0 and len(report.answers) == 240
    assert sorted(references) == ["gen-1", "gen-2", "gen-3"]
    assert all(report.generations()[name] > 0 for name in references)


def test_a_generation_in_use_by_another_process_is_not_removed(seeded, tmp_path: Path) -> None:
    """The lease is a file lock: a second opener (here a second holder) pins it just the same."""
    seeds, index_dir = seeded
    embedder = FakeEmbedder()
    reader = ServiceHolder(Settings(index_dir=index_dir), embedder)
    try:
        reader.get()  # holds gen-1 open, as another server process would
        for n in range(3):
            add_article(seeds, f"n{n}.txt", f"Note {n}", f"Extra note number {n} here.")
            build_index(seeds, index_dir, embedder)
        assert (index_dir / "gen-1").is_dir()
    finally:
        reader.close()
    add_article(seeds, "last.txt", "Last note", "The very last note of all.")
    build_index(seeds, index_dir, embedder)
    assert not (index_dir / "gen-1").exists()
