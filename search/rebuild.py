"""The one rebuild path, for `semsearch index` and `POST /admin/reindex` alike.

A `Rebuild` holds the store's build lock from the moment it is made (a second build fails at
once with `BuildRunning`) until it ends; `run` checks whether the live generation is up to date,
builds, publishes and prunes old generations (`index.builder`); `vectors_only` publishes the
live generation again with another vector index, re-embedding nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from semsearch.index.articles import find_article_files
from semsearch.index.builder import BuildReport, Progress, build_index, now_iso
from semsearch.index.embedding import Embedder
from semsearch.index.readers import parse_formats
from semsearch.index.stores import Store
from semsearch.search.settings import Settings, store_for, vector_index_spec

__all__ = ["Rebuild"]


class Rebuild:
    """One build of the configured seeds folder into the configured store, under its lock.

    Use it as a context manager, or call `run` (which releases the lock when it ends) from
    another thread than the one that made it.

    Raises:
        BuildRunning: another build holds the lock (in this process or another).
    """

    def __init__(self, settings: Settings, store: Store | None = None):
        self.settings = settings
        self.store = store or store_for(settings)
        self._lock = self.store.build_lock()
        self._lock.__enter__()
        self._held = True

    def check_corpus(self) -> None:
        """Raise CorpusError now, before a model loads, if the seeds folder is missing or the
        formats setting names an unknown format."""
        find_article_files(self.settings.seeds_dir, formats=parse_formats(self.settings.formats))

    def run(
        self,
        embedder: Embedder,
        *,
        force: bool = False,
        warn: Callable[[str], None] | None = None,
        progress: Progress | None = None,
    ) -> BuildReport:
        """Build a new generation unless the live one is up to date (or `force`), publish it,
        prune old ones; then release the lock.

        Raises:
            CorpusError: the folder is missing or holds no readable article, or the formats
                setting names an unknown format.
        """
        try:
            return build_index(
                self.settings.seeds_dir,
                self.settings.index_dir,
                embedder,
                warn=warn,
                progress=progress,
                vector_index=vector_index_spec(self.settings),
                skip_unchanged=not force,
                store=self.store,
                sentence_vectors=self.settings.sentence_vectors,
                follow_symlinks=self.settings.follow_symlinks,
                formats=parse_formats(self.settings.formats),
            )
        finally:
            self.release()

    def vectors_only(self) -> dict[str, Any]:
        """Publish the live generation with the configured vector index (nothing re-embedded);
        returns its manifest; then release the lock.

        Raises:
            SemsearchError: the store cannot (Milvus), or nothing is live.
        """
        try:
            return self.store.reindex_vectors(vector_index_spec(self.settings), now_iso())
        finally:
            self.release()

    def release(self) -> None:
        """Let the next build run (again: nothing)."""
        if self._held:
            self._held = False
            self._lock.__exit__(None, None, None)

    def __enter__(self) -> Rebuild:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()
