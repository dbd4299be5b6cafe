"""`semsearch similar`: the passages nearest in meaning to one passage (or JSON)."""

from __future__ import annotations

from typing import Annotated

import typer

from semsearch.search.cli.options import IndexOption, ModelOption, settings_from
from semsearch.search.cli.output import errors, explain_missing_index
from semsearch.search.cli.search_cmd import print_hits, print_json_hits

__all__ = ["similar_command"]


def similar_command(
    chunk_id: Annotated[
        int, typer.Argument(metavar="CHUNK_ID", min=0, help="a hit's chunk id (see --json)")
    ],
    k: Annotated[int, typer.Option("-k", "--k", help="number of hits (1-100)")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="also show each hit's dense rank and score")
    ] = False,
    index_dir: IndexOption = None,
    model: ModelOption = None,
) -> None:
    """Print the passages nearest in meaning to passage CHUNK_ID (itself and its
    near-duplicates left out)."""
    from semsearch.search.lookup import similar_once

    with errors():
        settings = settings_from(index_dir=index_dir, model=model)
        with explain_missing_index(settings):
            found = similar_once(settings, chunk_id, k=k)
    if as_json:
        print_json_hits(found)
    else:
        print_hits(found, quiet=False, verbose=verbose)
