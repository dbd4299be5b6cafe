"""The FastAPI dependency that hands a route the served search service for its request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Response

from semsearch.search.service import SearchService
from semsearch.search.serving import ServiceHolder

__all__ = ["GENERATION_HEADER", "Service"]

GENERATION_HEADER = "X-Semsearch-Generation"


async def _service(request: Request, response: Response) -> AsyncIterator[SearchService]:
    holder: ServiceHolder = request.app.state.holder
    async with holder.lease_async() as service:
        response.headers[GENERATION_HEADER] = service.store.generation
        yield service


Service = Annotated[SearchService, Depends(_service)]
