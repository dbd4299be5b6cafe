"""Observability: Prometheus metrics at GET /metrics, and one structured log line per request."""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Iterator
from datetime import datetime, timezone

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Metrics", "RequestObserver", "install_metrics", "record_search"]

log = logging.getLogger("semsearch.access")

# Request latency buckets (seconds): a lexical query takes milliseconds, a cold model seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# An incoming X-Request-ID is kept only when it is short and plain, so it is safe to log.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# HTTP methods counted under their own name; any other (a client may send any token) is
# counted as "other", so that clients cannot create time series without limit.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


class Metrics:
    """The app's own registry (one per app, so tests can build many apps) and its metrics."""

    def __init__(self, app: FastAPI):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "semsearch_http_requests",
            "HTTP requests answered, by route template, method, search mode and status",
            ["route", "method", "mode", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "semsearch_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and search mode",
            ["route", "mode"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stages = Histogram(
            "semsearch_search_stage_duration_seconds",
            "Time spent in each stage of a search: queue (waiting for a turn, when the server "
            "is busy), embed, dense (the store's vector search), lexical and lexical_articles "
            "(beside it in hybrid mode), lexical_wait, fuse",
            ["stage", "mode"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_IndexCollector(app))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _IndexCollector:
    """Reads the open index at scrape time: loaded or not, size, generation."""

    def __init__(self, app: FastAPI):
        self._app = app

    def collect(self) -> Iterator[Metric]:
        holder = getattr(self._app.state, "holder", None)
        service = holder.current if holder is not None else None
        loaded = GaugeMetricFamily("semsearch_index_loaded", "1 when an index is open, else 0")
        loaded.add_metric([], 0.0 if service is None else 1.0)
        yield loaded
        if service is None:
            return
        manifest = service.store.manifest
        generation = service.store.generation
        info = InfoMetricFamily("semsearch_index", "The open index generation and its model")
        info.add_metric([], {"generation": generation, "model": manifest["model"]["id"]})
        yield info
        number = generation.rpartition("-")[2]
        if number.isdigit():
            yield GaugeMetricFamily(
                "semsearch_index_generation", "Number of the open generation", value=int(number)
            )
        counts = manifest["counts"]
        yield GaugeMetricFamily(
            "semsearch_index_articles", "Articles in the open index", value=counts["articles"]
        )
        yield GaugeMetricFamily(
            "semsearch_index_passages", "Passages in the open index", value=counts["passages"]
        )
        size = sum(entry.get("bytes", 0) for entry in manifest.get("files", {}).values())
        yield GaugeMetricFamily(
            "semsearch_index_size_bytes", "Bytes of the open generation's data files", value=size
        )


def record_search(request: Request, mode: str, timings: dict[str, float]) -> None:
    """Note a search's mode (a label of the request metrics) and observe its stage timings."""
    request.state.search_mode = mode
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        for stage, seconds in timings.items():
            metrics.stages.labels(stage, mode).observe(seconds)


class RequestObserver:
    """ASGI middleware: gives each request an id (X-Request-ID), counts and times it, logs it.

    Pure ASGI rather than BaseHTTPMiddleware: it sees the status of every response, streaming
    ones included, and reads the matched route template from the scope after routing.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else _new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = _route_template(scope)
            mode = str(scope.get("state", state).get("search_mode", ""))
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.requests.labels(route, method, mode, str(status)).inc()
            self.metrics.latency.labels(route, mode).observe(seconds)
            log.info(
                json.dumps(
                    {
                        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                        "event": "request",
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "mode": mode or None,
                        "status": status,
                        "ms": round(seconds * 1000, 2),
                        "client": (scope.get("client") or ("", 0))[0],
                    },
                    ensure_ascii=False,
                )
            )


def _new_request_id() -> str:
    """16 hex digits: ids to follow a request through the logs, not secrets, so no system call
    for entropy on every request (uuid4 reads os.urandom)."""
    return f"{random.getrandbits(64):016x}"


def _route_template(scope: Scope) -> str:
    """The matched route's template (`/articles/{article_id:path}`), never the raw path.

    Raw paths would give every article and every mistyped URL its own time series.
    """
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return route.path
    if scope.get("path", "").startswith("/static/"):
        return "/static"
    return "unmatched"


metrics_router = APIRouter()


@metrics_router.get(
    "/metrics",
    tags=["meta"],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: requests and latency per route and mode, search stages, the index."""
    registry: Metrics = request.app.state.metrics
    return Response(registry.exposition(), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI) -> None:
    """Add GET /metrics and the request observer; call last, so it wraps every other middleware."""
    app.state.metrics = Metrics(app)
    app.include_router(metrics_router)
    app.add_middleware(RequestObserver, metrics=app.state.metrics)
