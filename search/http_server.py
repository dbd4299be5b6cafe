"""`semsearch serve`: the HTTP API (`semsearch.api`) under uvicorn, on the configured address.

The API is named by its app factory's import string, so this layer imports nothing of it.
"""

from __future__ import annotations

import logging
import os
import sys

from semsearch.search.settings import Settings

__all__ = ["serve"]

APP_FACTORY = "semsearch.api.app:create_app"


def serve(settings: Settings, request_log: bool = True) -> None:
    """Serve the API until interrupted, with one worker.

    Args:
        request_log: print the app's request log on stderr (one JSON object a request).
    """
    import uvicorn

    # The app factory reads its settings from the environment: hand them over that way.
    os.environ["SEMSEARCH_INDEX_DIR"] = str(settings.index_dir)
    os.environ["SEMSEARCH_MODEL"] = settings.model
    _request_logs(enabled=request_log)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=1,
        access_log=False,  # the app logs each request itself, as JSON with its request id
        # h11, not httptools even when installed: h11 refuses request heads over 16 KiB (400)
        # while httptools buffers a header of any size. The event loop is uvloop when installed.
        http="h11",
    )


def _request_logs(enabled: bool) -> None:
    """Print the app's request log (one JSON object a line) on stderr."""
    access = logging.getLogger("semsearch.access")
    access.setLevel(logging.INFO if enabled else logging.WARNING)
    if not access.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.propagate = False
