"""Serving with hot swap: the holder of the served generation and the leases requests take.

The holder serves one index generation at a time and swaps to a new one atomically: every
request leases the service it starts with and keeps it to the end, new requests get the new one,
and a replaced generation is closed (its files then free to be removed) only when its last
request has finished. A generation that fails its checks is refused: the holder keeps serving
what it has, or falls back to the newest older generation that passes them (the newest of all
when CURRENT, or the Milvus alias, names none of the generations).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from anyio.to_thread import run_sync

from semsearch.index.embedding import Embedder
from semsearch.index.errors import IndexCorrupt, IndexNotFound, SemsearchError, StoreUnavailable
from semsearch.search.service import SearchService
from semsearch.search.settings import Settings, embedder_for, store_for

__all__ = ["STORE_CHECK_SECONDS", "ReloadResult", "ServiceHolder"]

# How long a store server's answer to `store_problem` is trusted before it is asked again.
STORE_CHECK_SECONDS = 2.0

log = logging.getLogger("semsearch.api")


@dataclass(eq=False)
class _Slot:
    """One open generation and how many requests are using it."""

    service: SearchService
    users: int = 0
    retired: bool = False

    @property
    def generation(self) -> str:
        return self.service.store.generation


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did: the generation now served, the one before, whether it changed, and
    how many requests were still running on the one before when it was replaced."""

    generation: str
    previous: str | None
    changed: bool
    in_flight: int = 0


class ServiceHolder:
    """Owns the embedder and the served generation; opens the index on first need."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        self.settings = settings
        self.embedder = embedder or embedder_for(settings)
        self.store = store_for(settings)
        self._slot: _Slot | None = None
        self._lock = threading.Lock()  # guards _slot and the use counts: held for microseconds
        self._reload_lock = threading.Lock()  # one open or swap at a time
        self._refused: tuple[str, str] | None = None  # (generation, why) CURRENT was refused
        self._closed = False
        self.last_error: str | None = None  # why the index could not be opened, last time
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._store_checked: tuple[float, str | None] = (-STORE_CHECK_SECONDS, None)

    @property
    def current(self) -> SearchService | None:
        """The served service, or None while no index is open."""
        slot = self._slot
        return slot.service if slot is not None else None

    @property
    def problem(self) -> str | None:
        """Why the generation CURRENT names is not being served, when it is not."""
        refused, slot = self._refused, self._slot
        if refused is None or slot is None:
            return None
        return f"{_label(refused[0])} was refused ({refused[1]}); serving {slot.generation}"

    def store_problem(self) -> str | None:
        """Why the served generation's store cannot answer now (a Milvus server down), else
        None; asked of a store server at most every STORE_CHECK_SECONDS, never of an
        in-process store. Blocks for the server's answer: call it from a worker thread."""
        service = self.current
        if service is None or service.store.capabilities.in_process:
            return None
        checked, problem = self._store_checked
        if time.monotonic() - checked < STORE_CHECK_SECONDS:
            return problem
        try:
            service.store.count()
            problem = None
        except StoreUnavailable as error:
            problem = str(error)
        self._store_checked = (time.monotonic(), problem)
        return problem

    def try_open(self) -> SearchService | None:
        """Open the index now; log and return None when it cannot be opened."""
        try:
            return self.get()
        except SemsearchError as error:
            log.warning("search is unavailable until this is fixed: %s", error)
            self.last_error = str(error)
            return None

    def get(self) -> SearchService:
        """The served service; raises IndexNotFound (and kin) while there is no usable index.

        Requests use `lease()` instead, so that a swap never closes a service under them.
        """
        if self._slot is None:
            self._load()
        slot = self._slot
        if slot is None:
            raise IndexNotFound("the server is shutting down")
        return slot.service

    @contextmanager
    def lease(self) -> Iterator[SearchService]:
        """The served service, kept open until the block ends even if a reload replaces it."""
        slot = self._acquire()
        try:
            yield slot.service
        finally:
            self._release(slot)

    @asynccontextmanager
    async def lease_async(self) -> AsyncIterator[SearchService]:
        """`lease()` for the event loop.

        Taking and giving back the lease (microseconds under a lock) happen on the loop, not in
        two more trips through the thread pool per request; only opening the index (the first
        request, or after a failure) and closing a retired generation block, and those run in
        the pool.
        """
        slot = self._try_acquire()
        if slot is None:
            slot = await run_sync(self._acquire)
        try:
            yield slot.service
        finally:
            if self._let_go(slot):
                await run_sync(self._dispose, slot)

    def _acquire(self) -> _Slot:
        for _ in range(3):  # a swap between the open and the count is retried, never lost
            slot = self._try_acquire()
            if slot is not None:
                return slot
            self._load()
        raise IndexNotFound("the server is shutting down")

    def _try_acquire(self) -> _Slot | None:
        """The served slot, counted as in use; None (at once) while nothing is open."""
        with self._lock:
            if self._slot is not None:
                self._slot.users += 1
            return self._slot

    def _release(self, slot: _Slot) -> None:
        if self._let_go(slot):
            self._dispose(slot)

    def _let_go(self, slot: _Slot) -> bool:
        """Count one user less; True when the slot is retired and now unused (dispose it)."""
        with self._lock:
            slot.users -= 1
            return slot.retired and slot.users == 0

    def _dispose(self, slot: _Slot, clean_up: bool = True) -> None:
        slot.service.close()
        log.info("closed index generation %s", slot.generation)
        if clean_up:  # the builder skipped it while it was open; remove it now if it is old
            # In the background: the last request out should not wait for a folder to be deleted.
            threading.Thread(target=self._remove_old, name="semsearch-cleanup", daemon=True).start()

    def _remove_old(self) -> None:
        removed = self.store.remove_old()
        if removed:
            log.info("removed old index generations %s", ", ".join(removed))

    def _load(self) -> None:
        """Open a generation when none is served: CURRENT's, else the newest good one before it."""
        with self._reload_lock:
            if self._slot is not None or self._closed:
                return
            name = self.store.live_generation()
            if name is not None and self._refused is not None and self._refused[0] == name:
                # Checked and refused already: answer at once instead of hashing it per request.
                raise IndexCorrupt(self._refused[1])
            service = self._open_live(fallback=True)
            with self._lock:
                self._slot = _Slot(service)
            log.info("serving index generation %s", service.store.generation)

    def reload(self) -> ReloadResult:
        """Serve the generation CURRENT names now, unless it is served already.

        Raises:
            IndexNotFound, IndexCorrupt, IndexIncompatible: the new generation cannot be served;
            the one served before (if any) goes on being served.
        """
        with self._reload_lock:
            if self._closed:
                raise IndexNotFound("the server is shutting down")
            previous = self._slot.generation if self._slot is not None else None
            name = self.store.live_generation()
            if name is not None and name == previous:
                self._refused = None
                return ReloadResult(name, previous, changed=False)
            service = self._open_live(fallback=previous is None)
            with self._lock:
                old, self._slot = self._slot, _Slot(service)
                in_flight = old.users if old is not None else 0
                if old is not None:
                    old.retired = True
                    finished = old.users == 0
            log.info("serving index generation %s (was %s)", service.store.generation, previous)
        if old is not None and finished:
            self._dispose(old)
        return ReloadResult(service.store.generation, previous, True, in_flight)

    def _open_live(self, fallback: bool) -> SearchService:
        """Open the generation CURRENT names; with `fallback`, an older one if it is corrupt."""
        for _ in range(3):  # CURRENT may move on (and its folder go) while we open it
            name = self.store.live_generation()
            try:
                service = SearchService.open(self.settings, self.embedder, generation=name)
            except IndexCorrupt as error:
                if self.store.live_generation() != name:
                    continue
                self._refused = (name or "the live generation", str(error))
                log.error("refusing index generation %s: %s", _label(name or "(none)"), error)
                if not fallback:
                    raise
                service = self._open_older(name, error)
            else:
                self._refused = None
            return service
        raise IndexCorrupt(f"{self.store.describe()} keeps changing while being opened")

    def _open_older(self, refused: str | None, error: IndexCorrupt) -> SearchService:
        """The newest generation that opens: older than `refused` when that is one of the
        store's, else any (CURRENT, or the alias, names none of them)."""
        names = self.store.generation_names()  # oldest first
        older = names[: names.index(refused)] if refused in names else names
        for name in reversed(older):
            try:
                service = SearchService.open(self.settings, self.embedder, generation=name)
            except SemsearchError as older_error:
                log.warning("cannot fall back to %s either: %s", name, older_error)
                continue
            log.warning("falling back to index generation %s", name)
            return service
        raise error

    def check_for_new(self) -> ReloadResult | None:
        """Reload if CURRENT names a generation neither served nor already refused."""
        try:
            name = self.store.live_generation()
        except IndexCorrupt:
            return None  # CURRENT cannot be read: keep serving (the next open says why)
        slot, refused = self._slot, self._refused
        if name is None or slot is None or name == slot.generation:
            return None  # with nothing served, the next request opens the index itself
        if refused is not None and refused[0] == name:
            return None
        try:
            return self.reload()
        except SemsearchError as error:
            log.error("not switching to %s: %s", _label(name), error)
            return None

    def start_watching(self, interval: float) -> None:
        """Check CURRENT every `interval` seconds in a background thread (0: never)."""
        if interval <= 0 or self._watcher is not None:
            return

        def watch() -> None:
            while not self._stop.wait(interval):
                try:
                    self.check_for_new()
                except Exception:  # the watcher must outlive any one failure
                    log.exception("checking for a new index generation failed")

        self._watcher = threading.Thread(target=watch, name="semsearch-reload", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
            self._watcher = None
        with self._reload_lock, self._lock:
            self._closed = True
            slot, self._slot = self._slot, None
            if slot is not None:
                slot.retired = True
                finished = slot.users == 0
        if slot is not None and finished:
            self._dispose(slot, clean_up=False)


def _label(name: str) -> str:
    """A generation name for a message: as it is, or "CURRENT" when CURRENT holds garbage (its
    content, quoted, is in the reason given beside it)."""
    return name if name.isprintable() and len(name) <= 40 else "CURRENT"
