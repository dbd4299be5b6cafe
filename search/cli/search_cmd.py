"""`semsearch search`: search the index and print the best passages (or JSON)."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from semsearch.search.cli.options import IndexOption, ModelOption, settings_from
from semsearch.search.cli.output import (
    article_line,
    err,
    errors,
    explain_missing_index,
    out,
    plural,
    print_json,
)

if TYPE_CHECKING:
    from semsearch.search.lookup import Lookup
    from semsearch.search.service import Hit

__all__ = ["hit_text", "print_hits", "print_json_hits", "search_command"]

# The order in which the stages of a search are timed (`--verbose`).
STAGES = ("queue", "embed", "dense", "lexical", "lexical_articles", "lexical_wait", "fuse")


def search_command(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="what to look for, in words")],
    k: Annotated[int, typer.Option("-k", "--k", help="number of hits (1-100)")] = 10,
    mode: Annotated[
        str | None, typer.Option("--mode", help="hybrid (default), dense or lexical")
    ] = None,
    per_article: Annotated[
        int | None, typer.Option("--per-article", min=1, help="at most N hits per article")
    ] = None,
    collapse: Annotated[
        bool, typer.Option("--collapse/--no-collapse", help="show near-duplicates once")
    ] = True,
    article: Annotated[
        str | None, typer.Option("--article", help="search only this article (its id)")
    ] = None,
    section: Annotated[
        list[str] | None,
        typer.Option("--section", help="search only this section's articles (repeat: any of them)"),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option("--after", metavar="DATE", help="only articles published on or after DATE"),
    ] = None,
    before: Annotated[
        str | None,
        typer.Option("--before", metavar="DATE", help="only articles published on or before DATE"),
    ] = None,
    offset: Annotated[
        int, typer.Option("--offset", help="skip this many hits first (the next page: k)")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
    as_jsonl: Annotated[
        bool, typer.Option("--jsonl", help="print one JSON object per hit, a line each")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="one short line per hit: rank, score, where")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="also explain each rank and time each stage"),
    ] = False,
    index_dir: IndexOption = None,
    model: ModelOption = None,
) -> None:
    """Search the index and print the best passages."""
    from semsearch.search.lookup import search_once

    with errors():
        settings = settings_from(index_dir=index_dir, model=model)
        with explain_missing_index(settings):
            found = search_once(
                settings, query, k=k, mode=mode, per_article=per_article, collapse=collapse,
                article=article, sections=tuple(section or ()), after=after, before=before,
                offset=offset,
            )  # fmt: skip
    if as_jsonl:
        _print_jsonl(found)
    elif as_json:
        print_json_hits(found)
    elif not found.hits and (section or after or before or article or offset):
        out.print(
            f"No passages match {found.query!r} with these filters"
            f"{' past the first ' + str(offset) if offset else ''}: widen them or try other words.",
            markup=False,
        )
    else:
        print_hits(found, quiet, verbose)


def _print_jsonl(found: Lookup) -> None:
    sys.stdout.writelines(
        json.dumps(dataclasses.asdict(hit), ensure_ascii=False) + "\n" for hit in found.hits
    )


def print_json_hits(found: Lookup) -> None:
    document = {
        "query": found.query,
        "mode": found.mode,
        "k": found.k,
        "took_ms": found.took_ms,
        "legs": list(found.legs),
        "hits": [dataclasses.asdict(hit) for hit in found.hits],
    }
    print_json(document, ensure_ascii=False)


def print_hits(found: Lookup, quiet: bool, verbose: bool) -> None:
    if found.mode == "hybrid" and found.legs == ("dense",):
        err.print(
            "note: this index has no full-text search (Milvus before 2.5): hybrid ran dense only",
            markup=False,
        )
    if not found.hits:
        out.print(
            f"No passages match {found.query!r}. Try other words or --mode dense.", markup=False
        )
        return
    for hit in found.hits:
        if quiet:
            sys.stdout.write(f"{hit.rank}\t{hit.score:.4f}\t{_where(hit)}\n")  # tabs for cut/awk
        else:
            _print_hit(hit, verbose)
    if verbose:
        shown = sorted(found.timings.items(), key=lambda item: STAGES.index(item[0]))
        stages = ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in shown)
        hits = plural(len(found.hits), "hit")
        out.print(Text(f"{hits} in {found.took_ms} ms ({stages})", style="dim"))


def _where(hit: Hit) -> str:
    """The hit's article and paragraph (and part of a paragraph split in parts)."""
    return f"{hit.article_id} ¶{hit.paragraph}" + (f".{hit.part + 1}" if hit.part else "")


def _print_hit(hit: Hit, verbose: bool) -> None:
    header = Text(f"{hit.rank}. ", style="bold")
    header.append(hit.title, style="bold")
    header.append(f"  {_where(hit)}  score {hit.score:.4f}", style="dim")
    out.print(header)
    about = article_line(hit.section, hit.published, hit.author, hit.tags)
    if about:
        out.print(Text(f"   {about}", style="dim"))
    if hit.heading:
        out.print(Text(f"   [{hit.heading}]", style="italic"))
    out.print(Text("   ") + hit_text(hit))
    if hit.also_in:
        out.print(Text(f"   also in: {', '.join(hit.also_in)}", style="dim"))
    if verbose:
        out.print(Text(f"   {_explain(hit)}", style="dim"))
        parts = _score_parts(hit)
        if parts:
            out.print(Text(f"   {parts}", style="dim"))
    out.print()


def hit_text(hit: Hit) -> Text:
    """A hit's text with the query's words in bold yellow and its answer sentence underlined,
    or, where the output has no styles (a pipe, a file), between » and « (not where the
    sentence is the whole passage: `shown_answer`)."""
    from semsearch.search.hits import shown_answer  # (numpy: only once there are hits)

    body = Text(hit.text)
    for start, end in hit.highlights:
        body.stylize("bold yellow", start, end)
    answer = shown_answer(hit)
    if answer is None:
        return body
    start, end = answer
    if out.color_system is not None:
        body.stylize("underline", start, end)
        return body
    return body[:start] + Text("»") + body[start:end] + Text("«") + body[end:]


def _score_parts(hit: Hit) -> str:
    """What a hit's score adds up from, where it is more than one part ("" otherwise)."""
    parts = hit.score_parts
    if parts is None or (parts.dense is None and not parts.article and not parts.article_words):
        return ""
    passage = f"passage {parts.passage:.4f}"
    if parts.dense is not None and parts.lexical is not None and parts.dense_weight is not None:
        weight = parts.dense_weight
        passage += (
            f" ({weight:g} × dense {parts.dense:.4f} + {1 - weight:g} × lexical "
            f"{parts.lexical:.4f})"
        )
    terms = [passage]
    if parts.article:
        terms.append(f"article {parts.article:.4f}")
    if parts.article_words:
        terms.append(f"article words {parts.article_words:.4f}")
    if hit.anchored:  # (shown with the score of the place it moved up to)
        own = parts.passage + parts.article + parts.article_words
        return f"its own score {own:.4f} = " + " + ".join(terms)
    return f"score {hit.score:.4f} = " + " + ".join(terms)


def _explain(hit: Hit) -> str:
    """Where a hit's rank comes from: its place and score in each leg."""
    legs = []
    for leg, rank, score in (
        ("dense", hit.dense_rank, hit.dense_score),
        ("lexical", hit.lexical_rank, hit.lexical_score),
    ):
        if rank is not None:
            legs.append(f"{leg} #{rank} ({score:.4f})")
        elif score is not None:  # beyond the dense leg's list, fused with its own cosine
            legs.append(f"{leg}: not in its list ({score:.4f})")
        else:
            legs.append(f"{leg}: not found")
    if hit.anchored:
        legs.append("moved up here: the dense leg's best passage")
    return " · ".join(legs)
