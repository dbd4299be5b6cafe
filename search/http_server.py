"""`semsearch serve`: the HTTP API (`semsearch.api`) under uvicorn, on the configured address.

The API is named by its app factory's import string, so this layer imports nothing of it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

from semsearch.search.settings import Settings

__all__ = ["serve", "uvicorn_options"]

APP_FACTORY = "semsearch.api.app:create_app"
# Connections held open at once, as a multiple of the requests handled at once: room for idle
# keep-alive connections; past it uvicorn answers 503 itself.
CONNECTIONS_PER_REQUEST = 4


def serve(settings: Settings, request_log: bool = True) -> None:
    """Serve the API until interrupted, with one worker.

    Args:
        request_log: print the app's request log on stderr (one JSON object a request).
    """
    import uvicorn

    # The app factory reads its settings from the environment: hand the flags over that way.
    os.environ["SEMSEARCH_INDEX_DIR"] = str(settings.index_dir)
    os.environ["SEMSEARCH_MODEL"] = settings.model
    os.environ["SEMSEARCH_HOST"] = settings.host  # which Host headers are allowed depends on it
    os.environ["SEMSEARCH_PORT"] = str(settings.port)
    _request_logs(enabled=request_log)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=1,
        access_log=False,  # the app logs each request itself, as JSON with its request id
        **uvicorn_options(settings),
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's protocol and limits for these settings (`semsearch serve` and the tests)."""
    return {
        # h11, not httptools even when installed: h11 refuses request heads over 16 KiB (400)
        # while httptools buffers a header of any size. The event loop is uvloop when installed.
        "http": _h11_with_header_timeout(settings.header_timeout),
        "timeout_keep_alive": settings.keep_alive_timeout,
        "limit_concurrency": settings.max_requests * CONNECTIONS_PER_REQUEST,
    }


def _h11_with_header_timeout(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request head takes over `seconds`.

    uvicorn times out a connection idle after an answer (keep-alive), but not one that never
    sends a request or sends its headers a byte at a time: each would hold a connection forever.
    Here the clock starts when the connection opens and again after each answer, and stops when
    a request's headers are complete.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class H11WithHeaderTimeout(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None
        _waiting_after: object = None  # the request cycle answered before the awaited head

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._start_head_clock()

        def on_response_complete(self) -> None:
            # Started first: a pipelined request already read is handled within the call below.
            self._start_head_clock()
            super().on_response_complete()
            if self.transport.is_closing():
                self._stop_head_clock()

        def handle_events(self) -> None:
            super().handle_events()
            if self._head_timer is not None and self.cycle is not self._waiting_after:
                self._stop_head_clock()  # a new request's head arrived

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_clock()
            super().connection_lost(exc)

        def _start_head_clock(self) -> None:
            self._stop_head_clock()
            self._waiting_after = self.cycle
            self._head_timer = self.loop.call_later(seconds, self._head_timed_out)

        def _stop_head_clock(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return H11WithHeaderTimeout


def _request_logs(enabled: bool) -> None:
    """Print the app's request log (one JSON object a line) on stderr."""
    access = logging.getLogger("semsearch.access")
    access.setLevel(logging.INFO if enabled else logging.WARNING)
    if not access.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.propagate = False
