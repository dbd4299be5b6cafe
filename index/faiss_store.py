"""The FAISS store: generations as folders of one index folder (the embedded default).

Opening a generation: `index.faiss_generation`; writing one: `index.faiss_writer`; folder
naming, CURRENT and keep-N: `index.generations`; the files: `index.faiss_layout`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from semsearch.index.faiss_generation import FaissGeneration
from semsearch.index.faiss_writer import FaissWriter, reindex_vectors
from semsearch.index.generations import (
    CURRENT,
    KEEP_GENERATIONS,
    check_current,
    generation_names,
    live_generation,
    remove_old_generations,
)
from semsearch.index.lock import BuildLock
from semsearch.index.stores import VectorIndexSpec

__all__ = ["FaissStore"]


class FaissStore:
    """Generations of SQLite (FTS5) + FAISS files in `index_dir`, switched by its CURRENT file."""

    kind = "faiss"
    keeps_sentences = True  # each passage's sentence vectors beside its vector

    def __init__(self, index_dir: Path):
        self.index_dir = index_dir

    def live_generation(self) -> str | None:
        return live_generation(self.index_dir)

    def generation_names(self) -> list[str]:
        return generation_names(self.index_dir)

    def open(
        self,
        model_id: str | None = None,
        dimension: int | None = None,
        generation: str | None = None,
    ) -> FaissGeneration:
        """Open the live generation (or `generation`), checked before use.

        Raises:
            IndexNotFound, IndexIncompatible, IndexCorrupt (CURRENT names no generation, too).
        """
        name = generation or self.live_generation()
        if name is not None:
            check_current(self.index_dir, name)
        return FaissGeneration.open(
            self.index_dir, model_id=model_id, dimension=dimension, generation=name
        )

    def writer(self, vector_index: VectorIndexSpec | None = None) -> FaissWriter:
        return FaissWriter(self.index_dir, vector_index)

    def remove_old(self, keep: int = KEEP_GENERATIONS) -> list[str]:
        return remove_old_generations(self.index_dir, keep=keep)

    def build_lock(self) -> BuildLock:
        """The index folder's build lock (shared with every process building it)."""
        return BuildLock(self.index_dir)

    def reindex_vectors(self, spec: VectorIndexSpec, created_at: str) -> dict[str, Any]:
        return reindex_vectors(self.index_dir, spec, created_at)

    def place(self, generation: str) -> str:
        return str(self.index_dir / generation)

    def drop(self) -> list[str]:
        """Remove every generation and CURRENT (the embedding cache stays)."""
        names = self.generation_names()
        (self.index_dir / CURRENT).unlink(missing_ok=True)
        for name in names:
            shutil.rmtree(self.index_dir / name, ignore_errors=True)
        return names

    def describe(self) -> str:
        return f"FAISS + SQLite in {self.index_dir}"

    def close(self) -> None:
        """Nothing to let go: each opened generation holds its own files."""
