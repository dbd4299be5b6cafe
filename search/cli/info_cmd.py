"""`semsearch info`: what is indexed, with which model, and when."""

from __future__ import annotations

from typing import Annotated

import typer

from semsearch.search.cli.options import IndexOption, settings_from
from semsearch.search.cli.output import errors, explain_missing_index, out, print_json

__all__ = ["info_command"]


def info_command(
    index_dir: IndexOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show what is indexed, with which model, and when."""
    from semsearch.search.info import index_facts

    with errors():
        settings = settings_from(index_dir=index_dir)
        with explain_missing_index(settings):
            facts = index_facts(settings)
    if as_json:
        print_json(facts)
        return
    width = max(len(key) for key in facts)
    for key, value in facts.items():
        out.print(f"{key:<{width}}  {value}", markup=False)
