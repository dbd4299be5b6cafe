"""A build that stops at a chosen point and waits to be killed (run by test_crash.py).

    python -m tests.reliability.crash_child SEEDS INDEX POINT

It takes the build lock as `semsearch index` does, builds with the fake embedder, and at POINT
prints "READY" and sleeps, so the test can kill -9 it exactly there.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import semsearch.index.build_inputs
import semsearch.index.builder
import semsearch.index.faiss_writer
import semsearch.index.generations
from semsearch.index.lock import BuildLock
from tests.conftest import FakeEmbedder

POINTS = ("before-embedding", "during-embedding", "writing-generation", "before-current-switch")


def stop_here() -> None:
    print("READY", flush=True)
    time.sleep(120)  # the test kills us long before this ends
    sys.exit(3)


class StoppingEmbedder(FakeEmbedder):
    """Stops in its second batch: the first batch is then already in the embedding cache."""

    def embed_batch(self, texts):  # type: ignore[no-untyped-def]
        if self.calls:
            stop_here()
        return super().embed_batch(texts)


def main(seeds: Path, index_dir: Path, point: str) -> None:
    embedder: FakeEmbedder = FakeEmbedder()
    progress = None
    if point == "before-embedding":
        progress = lambda done, total: stop_here() if done == 0 else None  # noqa: E731
    elif point == "during-embedding":
        semsearch.index.build_inputs.EMBED_CALL_SIZE = 1
        embedder = StoppingEmbedder()
    elif point == "writing-generation":  # store.sqlite and vectors.npy written, FAISS not yet
        real_build = semsearch.index.faiss_writer.build_vector_index
        semsearch.index.faiss_writer.build_vector_index = lambda *a: (stop_here(), real_build(*a))[
            1
        ]
    elif point == "before-current-switch":  # gen-N renamed into place, CURRENT not replaced
        real_replace = os.replace

        def replace(src, dst):  # type: ignore[no-untyped-def]
            if Path(dst).name == "CURRENT":
                stop_here()
            real_replace(src, dst)

        semsearch.index.generations.os.replace = replace  # type: ignore[attr-defined]
    with BuildLock(index_dir):
        semsearch.index.builder.build_index(seeds, index_dir, embedder, progress=progress)
    print("FINISHED", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[3] not in POINTS:
        sys.exit(f"usage: crash_child SEEDS INDEX {{{','.join(POINTS)}}}")
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
