"""The FastAPI app factory: settings, lifespan, error translation, routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import CapacityLimiter
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline

from semsearch.api.admin import install_admin
from semsearch.api.metrics import install_metrics
from semsearch.api.page import error_page, install_page, wants_html
from semsearch.api.routes import RETRY_LATER, router
from semsearch.api.security import install_security
from semsearch.index.embedding import Embedder
from semsearch.index.errors import IndexError_, ModelError, StoreUnavailable
from semsearch.search.errors import InvalidQuery
from semsearch.search.serving import ServiceHolder
from semsearch.search.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger("semsearch.api")


def create_app(settings: Settings | None = None, embedder: Embedder | None = None) -> FastAPI:
    """Build the app. The index is opened once, in the lifespan, and shared by all requests.

    Args:
        settings: configuration; read from SEMSEARCH_* variables when omitted.
        embedder: the query embedder; the configured sentence-transformers model when omitted.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder = ServiceHolder(settings, embedder)
        app.state.holder = holder
        # /health asks a store server from threads of its own, never behind the searches
        # filling the shared pool (made here, in the event loop that uses it).
        app.state.store_checks = CapacityLimiter(2)
        if holder.try_open() is None:
            log.warning("no usable index yet: searches answer 503 until one is built")
        holder.start_watching(settings.reload_interval)  # picks up a new CURRENT by itself
        try:
            yield
        finally:
            holder.close()

    # /docs and /redoc load their scripts and styles from this server (no CDN: they work
    # offline, and a reader's browser asks no third party).
    app = FastAPIOffline(
        title="semsearch",
        summary="Paragraph-level semantic search over a folder of articles.",
        version=_version(),
        lifespan=lifespan,
        static_url="/static/docs",
    )
    app.state.settings = settings
    app.include_router(router)
    install_admin(app, settings, embedder)  # only when SEMSEARCH_ADMIN_TOKEN is set
    install_page(app)

    @app.exception_handler(IndexError_)
    @app.exception_handler(ModelError)
    async def _unavailable(request: Request, error: Exception) -> Response:
        if wants_html(request):  # a browser following a link to an article
            return error_page(request, 503, "Search is not available yet", str(error))
        return JSONResponse(status_code=503, content={"detail": str(error)})

    @app.exception_handler(StoreUnavailable)
    async def _store_down(request: Request, error: Exception) -> Response:
        # A Milvus server down or restarting: not the request's fault, and soon over.
        log.warning("store unavailable: %s", error)
        if wants_html(request):
            response = error_page(request, 503, "Search is not available now", str(error))
            response.headers.update(RETRY_LATER)
            return response
        return JSONResponse(status_code=503, content={"detail": str(error)}, headers=RETRY_LATER)

    @app.exception_handler(RequestValidationError)
    async def _unprocessable(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI echoes each bad input back; an input such as 1e400 (inf) or a huge query
        # cannot or should not be sent back as JSON, so the detail names the field and the problem.
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in error.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.exception_handler(InvalidQuery)
    async def _invalid(request: Request, error: InvalidQuery) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(error)})

    install_security(app, settings)  # CORS when configured; 413 and 431 for oversized requests
    install_metrics(app)  # last: its middleware then wraps every other one
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("semsearch")
    except PackageNotFoundError:
        return "0"
