"""kill -9 of a build at several points: the live generation keeps serving, the next build works."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from semsearch.index.builder import build_index
from semsearch.index.generations import live_generation
from semsearch.index.lock import BuildLock
from tests.conftest import ROOT, FakeEmbedder
from tests.reliability.conftest import add_article, make_app
from tests.reliability.crash_child import POINTS

QUERIES = ("Abu Dhabi talks", "energy infrastructure", "prisoner exchange")
GLACIER = (
    "The glacier retreated by forty metres this year.\n\n"
    "Scientists measured the ice with drones and stakes.\n\n"
    "Meltwater lakes formed along the edge of the glacier."
)


def answers(client: TestClient) -> list:
    return [client.get("/search", params={"q": q, "k": 5}).json()["hits"] for q in QUERIES]


def build_and_kill(seeds: Path, index_dir: Path, point: str) -> None:
    """Run a build in a subprocess, wait until it reaches `point`, and SIGKILL it there."""
    command = [sys.executable, "-m", "tests.reliability.crash_child", str(seeds), str(index_dir)]
    child = subprocess.Popen(
        [*command, point], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        ready, _, _ = select.select([child.stdout], [], [], 60)
        line = child.stdout.readline() if ready else ""  # type: ignore[union-attr]
        assert line.strip() == "READY", f"child did not reach {point}: {child.stderr.read()}"  # type: ignore[union-attr]
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        child.stdout.close()  # type: ignore[union-attr]
        child.stderr.close()  # type: ignore[union-attr]


@pytest.mark.parametrize("point", POINTS)
def test_a_killed_build_leaves_the_live_generation_serving(seeded, point: str) -> None:
    seeds, index_dir = seeded
    add_article(seeds, "new.txt", "Glacier report", GLACIER)  # three passages to embed
    with TestClient(make_app(index_dir, reload_interval=0.05)) as serving:
        before = answers(serving)
        build_and_kill(seeds, index_dir, point)
        assert live_generation(index_dir) == "gen-1"
        assert answers(serving) == before  # the server never noticed
    with TestClient(make_app(index_dir)) as fresh:  # and a restart serves the same
        assert fresh.get("/health").json()["generation"] == "gen-1"
        assert answers(fresh) == before

    # The kernel dropped the dead build's lock; the next build cleans up and succeeds.
    with BuildLock(index_dir):
        report = build_index(seeds, index_dir, FakeEmbedder())
    assert live_generation(index_dir) == report.generation != "gen-1"
    assert not list(index_dir.glob(".tmp-*"))
    with TestClient(make_app(index_dir)) as after:
        hits = after.get("/search", params={"q": "glacier", "mode": "lexical"}).json()["hits"]
        assert hits[0]["article_id"] == "new.txt"


def test_what_a_killed_build_leaves_behind(seeded) -> None:
    """Killed while writing: a half-written .tmp- folder, never a gen- folder or a new CURRENT."""
    seeds, index_dir = seeded
    build_and_kill(seeds, index_dir, "writing-generation")
    assert [p.name for p in index_dir.glob(".tmp-*")] == [".tmp-gen-2"]
    assert not (index_dir / "gen-2").exists()
    assert (index_dir / "CURRENT").read_text(encoding="utf-8").strip() == "gen-1"
