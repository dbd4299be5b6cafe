"""The routes: each parses, calls the search service, and formats."""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from semsearch.api.deps import GENERATION_HEADER, Service
from semsearch.api.metrics import record_search
from semsearch.api.page import article_page, wants_html
from semsearch.api.schemas import (
    ArticleResponse,
    HealthResponse,
    PassageModel,
    SearchParams,
    SearchRequest,
    SearchResponse,
    StatsResponse,
)
from semsearch.api.security import is_admin
from semsearch.search.errors import UnknownPassage
from semsearch.search.query import MAX_K
from semsearch.search.service import Hit, SearchService
from semsearch.search.serving import ServiceHolder

__all__ = ["router"]

# When a store server (Milvus) cannot be reached: a client may try again after this.
RETRY_LATER = {"Retry-After": "5"}
router = APIRouter()


def _search(
    request: Request,
    service: SearchService,
    query: str,
    k: int,
    mode: str,
    per_article: int | None,
    collapse: bool,
    article: str | None = None,
    sections: list[str] | None = None,
    after: str | None = None,
    before: str | None = None,
    offset: int = 0,
) -> Response:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    hits = service.search(
        query,
        k=k,
        mode=mode,
        max_per_article=per_article,
        collapse=collapse,
        timings=timings,
        article=article,
        sections=sections or (),
        after=after,
        before=before,
        offset=offset,
    )
    took_ms = round((time.perf_counter() - started) * 1000, 2)
    record_search(request, mode, timings)
    return _hits_response(service, query, mode, k, offset, took_ms, hits)


def _hits_response(
    service: SearchService,
    query: str,
    mode: str,
    k: int,
    offset: int,
    took_ms: float,
    hits: list[Hit],
) -> Response:
    body = SearchResponse(
        query=query,
        mode=mode,
        k=k,
        offset=offset,
        took_ms=took_ms,
        legs=list(service.legs(mode)),
        hits=[{field: getattr(hit, field) for field in _HIT_FIELDS} for hit in hits],
    )
    # Serialised here, by pydantic in one step: returning the model would have FastAPI validate
    # it again in a second worker thread before encoding it (about a millisecond a request).
    # A returned Response does not take the headers the Service dependency set: set them here.
    headers = {GENERATION_HEADER: service.store.generation}
    return Response(body.model_dump_json(), media_type="application/json", headers=headers)


_HIT_FIELDS = tuple(field.name for field in dataclasses.fields(Hit))


# Plain `def` routes run in the threadpool, so embedding a query never blocks the event loop.
@router.get("/search", response_model=SearchResponse, tags=["search"])
def search_get(
    params: Annotated[SearchParams, Query()], service: Service, request: Request
) -> Response:
    """Search with a query string: `/search?q=...&k=10&mode=hybrid` (filters:
    `section=...` (repeatable), `after=YYYY-MM-DD`, `before=YYYY-MM-DD`; the next page:
    `offset=10`)."""
    return _search(
        request,
        service,
        params.q,
        params.k,
        params.mode,
        params.per_article,
        params.collapse,
        params.article,
        params.section,
        params.after,
        params.before,
        params.offset,
    )


@router.post("/search", response_model=SearchResponse, tags=["search"])
def search_post(body: SearchRequest, service: Service, request: Request) -> Response:
    """Search with a JSON body: `{"query": "...", "k": 10, "mode": "hybrid"}`."""
    return _search(
        request,
        service,
        body.query,
        body.k,
        body.mode,
        body.per_article,
        body.collapse,
        body.article,
        body.section,
        body.after,
        body.before,
        body.offset,
    )


@router.get(
    "/passages/{chunk_id}/similar",
    response_model=SearchResponse,
    tags=["search"],
    responses={404: {"description": "no passage has this chunk id"}},
)
def similar(
    chunk_id: Annotated[int, Path(ge=0, description="a hit's `chunk_id`")],
    service: Service,
    request: Request,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="number of hits")] = 10,
) -> Response:
    """The passages nearest in meaning to passage `chunk_id`, itself and its near-duplicates
    left out: the hits of /search, dense only (`query` says "similar to passage N").

    A client that asks for HTML (a browser) is sent to the search page listing them.
    """
    if wants_html(request):
        return RedirectResponse(f"/?similar={chunk_id}&k={k}", status_code=303)
    started = time.perf_counter()
    try:
        hits = service.similar(chunk_id, k)
    except UnknownPassage as error:
        raise HTTPException(status_code=404, detail=str(error)) from None
    took_ms = round((time.perf_counter() - started) * 1000, 2)
    return _hits_response(service, f"similar to passage {chunk_id}", "dense", k, 0, took_ms, hits)


@router.get("/health", response_model=HealthResponse, tags=["meta"])
async def health(request: Request) -> HealthResponse | JSONResponse:
    """Liveness, whether an index is loaded, and whether its store answers (503 when a store
    server cannot be reached; it recovers by itself when the server is back).

    Runs on the event loop, not in the thread pool, so it answers while searches fill the pool.
    """
    holder: ServiceHolder = request.app.state.holder
    service = holder.current
    if service is None:
        service = await run_in_threadpool(holder.try_open)
    if service is None:
        return HealthResponse(
            status="ok",
            index="missing",
            generation=None,
            detail=holder.last_error
            or f"no index at {holder.settings.index_dir}: run `semsearch index` first",
        )
    unreachable = None
    if not service.store.capabilities.in_process:
        # A server's answer, in a thread of its own: never behind searches filling the pool.
        limiter = request.app.state.store_checks
        unreachable = await to_thread.run_sync(holder.store_problem, limiter=limiter)
    if unreachable is not None:
        body = HealthResponse(
            status="unavailable",
            index="loaded",
            generation=service.store.generation,
            store="unreachable",
            detail=unreachable,
        )
        return JSONResponse(body.model_dump(), status_code=503, headers=RETRY_LATER)
    return HealthResponse(
        status="ok", index="loaded", generation=service.store.generation, detail=holder.problem
    )


@router.get("/stats", response_model=StatsResponse, tags=["meta"])
def stats(service: Service, request: Request) -> StatsResponse:
    """What is indexed: articles, passages, model, generation, when it was built.

    `source` and `index_dir` (paths on the server) are given only with the admin token.
    """
    figures = service.stats()
    if not is_admin(request, request.app.state.settings):
        figures.update(source=None, index_dir=None)
    return StatsResponse(**figures)


@router.get(
    "/articles/{article_id:path}",
    response_model=ArticleResponse,
    tags=["articles"],
    responses={200: {"content": {"text/html": {}}}},
)
def article(article_id: str, service: Service, request: Request) -> ArticleResponse | HTMLResponse:
    """One article's title and paragraphs; the id is its path relative to the corpus root.

    A client that asks for HTML (`Accept: text/html`, a browser) gets the article as a page;
    there `?p=N` highlights paragraph N and scrolls to it, and `?q=...` marks the query's words.
    """
    record = service.article(article_id)
    if wants_html(request):
        return article_page(request, article_id, record)
    if record is None:
        raise HTTPException(status_code=404, detail=f"no article with id {article_id!r}")
    return ArticleResponse(
        id=record.id,
        title=record.title,
        section=record.section,
        published=record.published,
        author=record.author,
        url=record.url,
        tags=list(record.tags),
        paragraphs=[PassageModel.model_validate(p, from_attributes=True) for p in record.passages],
    )
