"""Admin endpoints: rebuild the index in the background, reload a generation built elsewhere.

They exist only when SEMSEARCH_ADMIN_TOKEN is set, and then require `Authorization: Bearer
<token>` (401 without it, 403 with another token). A rebuild takes the same build lock as
`semsearch index`, so a second build, from either side, gets 409.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from semsearch.api.security import admin_token_matches
from semsearch.index.builder import now_iso
from semsearch.index.embedding import Embedder
from semsearch.index.errors import BuildRunning, SemsearchError
from semsearch.search.rebuild import Rebuild
from semsearch.search.serving import ServiceHolder
from semsearch.search.settings import Settings, embedder_for

__all__ = ["ReindexJob", "ReindexJobs", "install_admin"]

log = logging.getLogger("semsearch.api")

MAX_JOBS = 20  # finished jobs kept for GET /admin/reindex/{id}
MAX_WARNINGS = 100


class ReindexJobResponse(BaseModel):
    """A rebuild started by POST /admin/reindex: its state, progress and result."""

    id: str
    status: Literal["running", "succeeded", "failed"]
    started_at: str
    finished_at: str | None = None
    embedded_so_far: int = 0
    to_embed: int | None = None
    generation: str | None = None
    articles: int | None = None
    passages: int | None = None
    embedded: int | None = None
    reused: int | None = None
    in_flight: int | None = None  # requests still running on the old generation at the switch
    warnings: list[str] = []
    error: str | None = None


class ReloadResponse(BaseModel):
    """What POST /admin/reload did."""

    generation: str
    previous: str | None
    changed: bool
    in_flight: int  # requests still running on the previous generation at the switch


@dataclass
class ReindexJob:
    """One background rebuild; its fields are read by GET /admin/reindex/{id}."""

    id: str
    started_at: str
    status: str = "running"
    finished_at: str | None = None
    embedded_so_far: int = 0
    to_embed: int | None = None
    generation: str | None = None
    articles: int | None = None
    passages: int | None = None
    embedded: int | None = None
    reused: int | None = None
    in_flight: int | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    def view(self) -> ReindexJobResponse:
        return ReindexJobResponse(**{**self.__dict__, "warnings": list(self.warnings)})


class ReindexJobs:
    """Starts rebuilds in background threads (one at a time, by the build lock) and keeps them."""

    def __init__(self, settings: Settings, make_embedder: Callable[[], Embedder]):
        self.settings = settings
        self._make_embedder = make_embedder
        self._jobs: OrderedDict[str, ReindexJob] = OrderedDict()
        self._lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def start(self, holder: ServiceHolder) -> ReindexJob:
        """Take the build lock and start a rebuild; raises BuildRunning or CorpusError now."""
        rebuild = Rebuild(self.settings, holder.store)  # the build lock, or BuildRunning now
        try:
            rebuild.check_corpus()  # a missing folder fails here, not later
        except BaseException:
            rebuild.release()
            raise
        job = ReindexJob(id=uuid.uuid4().hex[:16], started_at=now_iso())
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > MAX_JOBS:
                self._jobs.popitem(last=False)
        thread = threading.Thread(
            target=self._run, args=(job, rebuild, holder), name=f"reindex-{job.id}", daemon=True
        )
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()
        return job

    def get(self, job_id: str) -> ReindexJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _run(self, job: ReindexJob, rebuild: Rebuild, holder: ServiceHolder) -> None:
        def warn(message: str) -> None:
            if len(job.warnings) < MAX_WARNINGS:
                job.warnings.append(message)

        def progress(done: int, total: int) -> None:
            job.embedded_so_far, job.to_embed = done, total

        try:
            report = rebuild.run(self._make_embedder(), force=True, warn=warn, progress=progress)
            job.generation, job.articles, job.passages = (
                report.generation,
                report.articles,
                report.passages,
            )
            job.embedded, job.reused = report.embedded, report.reused
        except SemsearchError as error:
            job.error = str(error)
        except Exception as error:  # reported in the job rather than lost in a thread
            log.exception("reindex job %s failed", job.id)
            job.error = f"unexpected error: {error!r}"
        finally:
            rebuild.release()
        if job.error is None:
            try:
                job.in_flight = holder.reload().in_flight
            except SemsearchError as error:
                job.error = f"built {job.generation} but could not serve it: {error}"
        # Finished only once the new generation is served (or the job failed).
        job.finished_at = now_iso()
        job.status = "failed" if job.error is not None else "succeeded"


_bearer = HTTPBearer(auto_error=False, description="the value of SEMSEARCH_ADMIN_TOKEN")


def _require_token(settings: Settings) -> Callable[..., None]:
    def require(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if credentials is None:
            raise HTTPException(
                status_code=401,
                detail="admin endpoints need an `Authorization: Bearer <token>` header",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not admin_token_matches(credentials.credentials, settings):
            raise HTTPException(status_code=403, detail="wrong admin token")

    return require


def _router() -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["admin"])

    @router.post("/reindex", status_code=202, response_model=ReindexJobResponse)
    def reindex(request: Request, response: Response) -> ReindexJobResponse:
        """Rebuild the index from the configured seeds folder in the background (202, a job)."""
        jobs: ReindexJobs = request.app.state.reindex_jobs
        try:
            job = jobs.start(request.app.state.holder)
        except BuildRunning as error:
            raise HTTPException(status_code=409, detail=str(error)) from None
        except SemsearchError as error:
            raise HTTPException(status_code=503, detail=str(error)) from None
        response.headers["Location"] = f"/admin/reindex/{job.id}"
        return job.view()

    @router.get("/reindex/{job_id}", response_model=ReindexJobResponse)
    def reindex_status(job_id: str, request: Request) -> ReindexJobResponse:
        """A rebuild's progress and, once finished, its result or error."""
        job = request.app.state.reindex_jobs.get(job_id)
        if job is None:
            raise HTTPException(status_code=404, detail=f"no reindex job with id {job_id!r}")
        return job.view()

    @router.post("/reload", response_model=ReloadResponse)
    def reload(request: Request) -> ReloadResponse:
        """Serve the generation CURRENT names now (one built by `semsearch index`)."""
        holder: ServiceHolder = request.app.state.holder
        try:
            result = holder.reload()
        except SemsearchError as error:
            serving = holder.current.store.generation if holder.current else "nothing"
            raise HTTPException(
                status_code=409, detail=f"{error} (still serving {serving})"
            ) from None
        return ReloadResponse(
            generation=result.generation,
            previous=result.previous,
            changed=result.changed,
            in_flight=result.in_flight,
        )

    return router


def install_admin(app: FastAPI, settings: Settings, embedder: Embedder | None = None) -> None:
    """Add the admin routes when an admin token is configured; otherwise they do not exist."""
    if not (settings.admin_token and settings.admin_token.get_secret_value()):
        return
    if embedder is not None:
        make_embedder: Callable[[], Embedder] = lambda: embedder  # noqa: E731
    else:
        # A build gets its own model: sharing the server's would queue every query behind it.
        def make_embedder() -> Embedder:
            return embedder_for(settings)

    app.state.reindex_jobs = ReindexJobs(settings, make_embedder)
    app.include_router(_router(), dependencies=[Depends(_require_token(settings))])
