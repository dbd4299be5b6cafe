"""The service holder kept on the app, and the dependency that hands routes the service."""

from __future__ import annotations

import logging
import threading
from typing import Annotated

from fastapi import Depends, Request

from index.embedding import SentenceTransformerEmbedder
from index.errors import SemsearchError
from search.service import SearchService
from search.settings import Settings

__all__ = ["Service", "ServiceHolder"]

log = logging.getLogger("semsearch.api")


class ServiceHolder:
    """Owns the embedder and the open index; opens the index on first need if it was missing."""

    def __init__(self, settings: Settings, embedder=None):
        self.settings = settings
        self.embedder = embedder or SentenceTransformerEmbedder(
            settings.model, settings.device, settings.batch_size
        )
        self._service: SearchService | None = None
        self._lock = threading.Lock()

    def try_open(self) -> SearchService | None:
        """Open the index now; log and return None when it cannot be opened."""
        try:
            return self.get()
        except SemsearchError as error:
            log.warning("search is unavailable until this is fixed: %s", error)
            return None

    def get(self) -> SearchService:
        """The open service; raises IndexNotFound (and kin) while there is no usable index."""
        if self._service is None:
            with self._lock:
                if self._service is None:
                    self._service = SearchService.open(self.settings, self.embedder)
        return self._service

    @property
    def current(self) -> SearchService | None:
        return self._service

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None


def _service(request: Request) -> SearchService:
    holder: ServiceHolder = request.app.state.holder
    return holder.get()


Service = Annotated[SearchService, Depends(_service)]
