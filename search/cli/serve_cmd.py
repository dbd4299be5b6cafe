"""`semsearch serve`: the HTTP API under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from semsearch.search.cli.options import IndexOption, ModelOption, settings_from
from semsearch.search.cli.output import errors

__all__ = ["serve_command"]


def serve_command(
    host: Annotated[str | None, typer.Option("--host", help="bind address [127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option("--port", help="port [8000]")] = None,
    index_dir: IndexOption = None,
    model: ModelOption = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="no request log (one JSON line a request)")
    ] = False,
) -> None:
    """Serve the HTTP API with uvicorn (127.0.0.1:8000 by default)."""
    from semsearch.search.http_server import serve

    with errors():
        settings = settings_from(host=host, port=port, index_dir=index_dir, model=model)
    serve(settings, request_log=not quiet)
