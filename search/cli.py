"""The `semsearch` command line: index, search, serve, info."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from semsearch.index.errors import IndexNotFound, SemsearchError
from semsearch.search.settings import Settings

__all__ = ["app", "main"]

app = typer.Typer(
    help="Paragraph-level semantic search over a folder of articles.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

T = TypeVar("T")

IndexOption = Annotated[
    Path | None, typer.Option("--index", help="index folder [env SEMSEARCH_INDEX_DIR]")
]
ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="sentence-transformers name or folder [env SEMSEARCH_MODEL]"),
]


def _settings(**overrides: Any) -> Settings:
    try:
        settings = Settings()
    except ValueError as error:  # pydantic's ValidationError: a bad SEMSEARCH_* variable
        first = str(error).splitlines()
        raise SemsearchError(f"bad configuration: {' '.join(first[:3])}") from None
    changes = {key: value for key, value in overrides.items() if value is not None}
    return settings.model_copy(update=changes)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn semsearch errors into one line on stderr and exit code 2."""
    try:
        yield
    except SemsearchError as error:
        err.print(f"semsearch: error: {error}", markup=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("semsearch: interrupted", markup=False)
        raise typer.Exit(130) from None


def _version_callback(value: bool) -> None:
    if value:
        try:
            out.print(f"semsearch {version('semsearch')}")
        except PackageNotFoundError:
            out.print("semsearch (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="show version"),
    ] = False,
) -> None:
    """Paragraph-level semantic search over a folder of articles."""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _index_command(settings: Settings) -> str:
    """The exact `semsearch index` command that builds the index these settings point at."""
    words = ["semsearch", "index"]
    if settings.index_dir != Settings.model_fields["index_dir"].default:
        words += ["--index", str(settings.index_dir)]
    if settings.seeds_dir != Settings.model_fields["seeds_dir"].default:
        words += ["--seeds", str(settings.seeds_dir)]
    return shlex.join(words)


@contextmanager
def _explain_missing_index(settings: Settings) -> Iterator[None]:
    """Name the command to run when there is no index yet (with the folder flags it needs)."""
    try:
        yield
    except IndexNotFound:
        where = f"at {settings.index_dir}"
        if settings.store == "milvus":
            where = f"in Milvus {settings.milvus_uri} (alias {settings.milvus_collection})"
        raise SemsearchError(f"no index {where}: run `{_index_command(settings)}` first") from None


def _with_status(message: str, action: Callable[[], T], quiet: bool) -> T:
    if quiet or not err.is_terminal:
        return action()
    with err.status(message):
        return action()


@app.command("index")
def index_command(
    seeds: Annotated[
        Path | None,
        typer.Option("--seeds", help="articles folder [env SEMSEARCH_SEEDS_DIR]"),
    ] = None,
    index_dir: IndexOption = None,
    model: ModelOption = None,
    reindex_vectors: Annotated[
        bool,
        typer.Option(
            "--reindex-vectors",
            help="rebuild only the FAISS index from the stored vectors (after changing "
            "SEMSEARCH_FAISS_INDEX or HNSW settings); nothing is re-read or re-embedded",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="build a new generation even when nothing changed since the last"
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="[ADDRESS]",
            help="embed with Ray Data workers: on a local Ray started for this build, or on the "
            "cluster at ADDRESS (host:port of its head node)",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="only errors")] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="also list skipped files and removed generations"),
    ] = False,
) -> None:
    """Build (or rebuild) the index from a folder of articles.

    When the articles, model and settings are those the live index was built from, nothing is
    rebuilt (use --force to rebuild anyway); otherwise only new or changed passages are embedded.
    """
    from semsearch.search.rebuild import Rebuild
    from semsearch.search.settings import embedder_for

    with _errors(), ExitStack() as held:
        settings = _settings(seeds_dir=seeds, index_dir=index_dir, model=model)
        # One build at a time, with the server: BuildRunning at once if another runs.
        rebuild = held.enter_context(Rebuild(settings))
        if reindex_vectors:
            manifest = rebuild.vectors_only()
            if not quiet:
                out.print(
                    f"Rebuilt the {manifest['faiss']['type']} vector index of "
                    f"{_plural(manifest['counts']['passages'], 'passage')} from stored vectors: "
                    f"{rebuild.store.place(manifest['generation'])}",
                    markup=False,
                )
            return
        rebuild.check_corpus()  # a missing folder fails before the model loads
        embedder = embedder_for(settings)
        _with_status(f"loading model {settings.model}", embedder.load, quiet)
        if ray_address is not None:
            from semsearch.index.distributed import RayEmbedder

            embedder = held.enter_context(
                _with_status(
                    f"starting Ray ({ray_address})",
                    lambda: RayEmbedder.start(
                        embedder, settings_for_workers(settings), ray_address
                    ),
                    quiet,
                )
            )

        def warn(message: str) -> None:
            if not quiet:
                err.print(f"warning: {message}", markup=False)

        with _progress_bar() as bar:
            bar.disable = bar.disable or quiet
            task = bar.add_task("embedding", total=None)
            report = rebuild.run(
                embedder,
                force=force,
                warn=warn,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        where = rebuild.store.place(report.generation)
        if report.up_to_date:
            if not quiet:
                out.print(
                    f"Up to date: {where} was built from the "
                    f"same {_plural(report.articles, 'article')}, model and settings "
                    f"({_plural(report.passages, 'passage')}); nothing to do. "
                    "Use --force to rebuild anyway.",
                    markup=False,
                )
            return
        if not quiet:
            out.print(_summary_table(report, settings.model, where))
            if verbose:
                for name in report.skipped:
                    out.print(f"skipped: {name}", markup=False)
                for name in report.removed_generations:
                    out.print(f"removed old generation: {name}", markup=False)
            flags = _index_command(settings).removeprefix("semsearch index")
            out.print(
                f'Next: semsearch search "your question"{flags}  or  semsearch serve{flags}',
                markup=False,
            )


def settings_for_workers(settings: Settings) -> dict[str, Any]:
    """What a Ray worker needs to load the same embedder."""
    return {
        "model": settings.model,
        "runtime": settings.embedding_runtime,
        "device": settings.device,
        "batch_size": settings.batch_size,
        "threads": settings.threads,
        "cache_dir": str((settings.model_cache or settings.index_dir / "models").resolve()),
    }


def _summary_table(report: Any, model: str, where: str) -> Table:
    """The figures of a finished build, one per row."""
    table = Table(
        title=f"Indexed {where}",
        title_justify="left",
        box=None,
        show_header=False,
        pad_edge=False,
        padding=(0, 3, 0, 0),
    )
    table.add_column("what")
    table.add_column("count", justify="right")
    rows = [
        ("articles", report.articles),
        ("passages", report.passages),
        ("sentence vectors", report.sentences),
        ("embedded now", report.embedded),
        ("reused from cache", report.reused),
        ("files skipped", len(report.skipped)),
        ("near-duplicate passages", report.duplicates),
        ("time", f"{report.seconds:.1f} s"),
        ("model", model),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    return table


@app.command("search")
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
    from semsearch.search.service import SearchService, validate_query

    with _errors():
        settings = _settings(index_dir=index_dir, model=model)
        mode = mode or settings.default_mode
        validate_query(query, k, mode)  # fail fast, before the model loads
        with _explain_missing_index(settings):
            service = SearchService.open(settings)
        try:
            timings: dict[str, float] = {}
            started = time.perf_counter()
            hits = service.search(
                query, k=k, mode=mode, max_per_article=per_article, collapse=collapse,
                timings=timings, article=article,
            )  # fmt: skip
            took_ms = round((time.perf_counter() - started) * 1000, 2)
        finally:
            service.close()
    if as_json or as_jsonl:
        documents = [dataclasses.asdict(hit) for hit in hits]
        if as_jsonl:
            sys.stdout.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in documents)
            return
        document = {"query": query, "mode": mode, "k": k, "took_ms": took_ms, "hits": documents}
        sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
        return
    if not hits:
        out.print(f"No passages match {query!r}. Try other words or --mode dense.", markup=False)
        return
    for hit in hits:
        where = f"{hit.article_id} ¶{hit.paragraph}" + (f".{hit.part + 1}" if hit.part else "")
        if quiet:
            sys.stdout.write(f"{hit.rank}\t{hit.score:.4f}\t{where}\n")  # tabs kept for cut/awk
            continue
        header = Text(f"{hit.rank}. ", style="bold")
        header.append(hit.title, style="bold")
        header.append(f"  {where}  score {hit.score:.4f}", style="dim")
        out.print(header)
        if hit.heading:
            out.print(Text(f"   [{hit.heading}]", style="italic"))
        body = Text(hit.text)
        for start, end in hit.highlights:
            body.stylize("bold yellow", start, end)
        out.print(Text("   ") + body)
        if hit.also_in:
            out.print(Text(f"   also in: {', '.join(hit.also_in)}", style="dim"))
        if verbose:
            out.print(Text(f"   {_explain(hit)}", style="dim"))
        out.print()
    if verbose:
        order = ("queue", "embed", "faiss", "fts5", "fts5_articles", "lexical_wait", "fuse")
        shown = sorted(timings.items(), key=lambda item: order.index(item[0]))
        stages = ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in shown)
        out.print(Text(f"{_plural(len(hits), 'hit')} in {took_ms} ms ({stages})", style="dim"))


def _explain(hit: Any) -> str:
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
    return " · ".join(legs)


@app.command("serve")
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
    import uvicorn

    with _errors():
        settings = _settings(host=host, port=port, index_dir=index_dir, model=model)
    # The app factory reads its settings from the environment: hand the flags over that way.
    os.environ["SEMSEARCH_INDEX_DIR"] = str(settings.index_dir)
    os.environ["SEMSEARCH_MODEL"] = settings.model
    _request_logs(enabled=not quiet)
    uvicorn.run(
        "semsearch.api.app:create_app",
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


@app.command("eval")
def eval_command(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="a BEIR-format folder")],
    mode: Annotated[str, typer.Option("--mode", help="hybrid, dense, lexical or all")] = "all",
    index_dir: Annotated[
        Path | None,
        typer.Option("--index", help="index to build or reuse [default: a temporary folder]"),
    ] = None,
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Measure search quality on a BEIR folder: nDCG@10, Recall@100, MRR@10, passage hit@5."""
    import tempfile

    from semsearch.search.evaluate import ensure_index, evaluate, load_beir, open_service
    from semsearch.search.service import MODES
    from semsearch.search.settings import embedder_for, store_for

    with _errors():
        if mode != "all" and mode not in MODES:
            raise SemsearchError(f"unknown mode {mode!r}: use one of {', '.join(MODES)} or all")
        modes = list(MODES) if mode == "all" else [mode]
        settings = _settings(model=model)
        dataset = load_beir(folder)
        # On Milvus, each data set gets its own alias beside the served one.
        slug = re.sub(r"\W", "_", dataset.name.lower())
        settings = settings.model_copy(
            update={"milvus_collection": f"{settings.milvus_collection}_eval_{slug}"}
        )
        embedder = embedder_for(settings)
        with tempfile.TemporaryDirectory(prefix="semsearch-eval-") as scratch:
            target = index_dir or Path(scratch) / "index"
            store = store_for(settings.model_copy(update={"index_dir": target}))
            with _progress_bar() as bar:
                task = bar.add_task(f"indexing {dataset.name}", total=None)
                built = ensure_index(
                    dataset,
                    target,
                    embedder,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                    store=store,
                    sentence_vectors=settings.sentence_vectors,
                )
                service = open_service(target, embedder, settings)
                task = bar.add_task(f"querying {dataset.name}", total=None)
                try:
                    results = evaluate(
                        service,
                        dataset,
                        modes,
                        progress=lambda done, total: bar.update(task, completed=done, total=total),
                    )
                finally:
                    service.close()
                    if index_dir is None:
                        store.drop()  # a scratch index kept outside the folder (Milvus)
    if as_json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
        return
    state = "built" if built else "reused"
    out.print(
        f"{dataset.name}: {len(dataset.documents)} documents, {len(dataset.queries)} queries "
        f"(index {state}: {target if index_dir else 'temporary'})",
        markup=False,
    )
    metrics = list(next(iter(results.values())))
    out.print(f"{'mode':<8}" + "".join(f"{m:>15}" for m in metrics), markup=False)
    for name, scores in results.items():
        out.print(f"{name:<8}" + "".join(f"{scores[m]:>15.4f}" for m in metrics), markup=False)


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
        transient=True,
    )


@app.command("bench")
def bench_command(
    corpus: Annotated[
        Path, typer.Option("--corpus", help="folder of articles to build and query")
    ] = Path("seeds"),
    vector_sizes: Annotated[
        str, typer.Option("--vector-sizes", help="synthetic passage counts, comma-separated")
    ] = "100000",
    queries: Annotated[int, typer.Option("--queries", min=10, help="distinct queries")] = 200,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="also write the figures to this file")
    ] = None,
    model: ModelOption = None,
) -> None:
    """Benchmark building, rebuilding, serving queries and vector search; print the figures."""
    from semsearch.search.bench import format_bench, run_bench

    with _errors():
        settings = _settings(model=model)
        try:
            sizes = [int(size) for size in vector_sizes.split(",") if size.strip()]
        except ValueError:
            raise SemsearchError(
                f"--vector-sizes takes whole numbers, got {vector_sizes!r}"
            ) from None
        figures = run_bench(
            corpus, settings, sizes, queries, lambda line: err.print(line, markup=False)
        )
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    for line in format_bench(figures):
        out.print(line, markup=False)


@app.command("info")
def info_command(
    index_dir: IndexOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show what is indexed, with which model, and when."""
    from semsearch.search.settings import store_for

    with _errors():
        settings = _settings(index_dir=index_dir)
        with _explain_missing_index(settings):
            store = store_for(settings).open()
        manifest = store.manifest
        store.close()
    if settings.store == "milvus":
        layout = manifest["milvus"]
        vectors = f"milvus {layout['index_type']} {layout['metric_type']} {layout['params']}"
        vectors += f"; lexical: {layout['lexical']}"
    else:
        vectors = "faiss " + " ".join(
            [manifest["faiss"]["type"]]
            + [f"{k}={v}" for k, v in manifest["faiss"].items() if k not in ("type", "metric")]
        )
    facts = {
        "index": str(settings.index_dir)
        if settings.store == "faiss"
        else f"{settings.milvus_uri} (alias {settings.milvus_collection})",
        "store": settings.store,
        "generation": manifest["generation"],
        "articles": manifest["counts"]["articles"],
        "passages": manifest["counts"]["passages"],
        "duplicates": manifest["counts"]["duplicate_passages"],
        "sentences": manifest["counts"].get("sentences", 0),
        "model": manifest["model"]["id"],
        "dimension": manifest["model"]["dimension"],
        "built_with": manifest["model"].get("backend", "torch"),
        "vectors": vectors,
        "source": manifest["source"],
        "built_at": manifest["created_at"],
        "semsearch": manifest["semsearch_version"],
    }
    if as_json:
        sys.stdout.write(json.dumps(facts, indent=2) + "\n")
        return
    width = max(len(key) for key in facts)
    for key, value in facts.items():
        out.print(f"{key:<{width}}  {value}", markup=False)


def optional_ray_address(args: list[str]) -> list[str]:
    """`--ray` alone means a local Ray: give it the value "local" (click needs a value)."""
    fixed = []
    for position, arg in enumerate(args):
        fixed.append(arg)
        if arg == "--ray" and (position + 1 == len(args) or args[position + 1].startswith("-")):
            fixed.append("local")
    return fixed


def main() -> None:
    """Entry point of the `semsearch` console script."""
    app(args=optional_ray_address(sys.argv[1:]), prog_name="semsearch")


if __name__ == "__main__":
    main()
