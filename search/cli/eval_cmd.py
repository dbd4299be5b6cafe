"""`semsearch eval`: search quality on a BEIR folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from semsearch.search.cli.options import ModelOption, settings_from
from semsearch.search.cli.output import Bars, errors, out, print_json

if TYPE_CHECKING:
    from semsearch.search.eval_run import EvalRun

__all__ = ["eval_command"]


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
    from semsearch.search.eval_run import eval_modes, run_eval
    from semsearch.search.feedback import Feedback

    with errors():
        modes = eval_modes(mode)
        settings = settings_from(model=model)
        with Bars() as bars:
            run = run_eval(folder, modes, settings, index_dir, Feedback(task=bars.task))
    if as_json:
        print_json(run.results)
    else:
        _print_scores(run)


def _print_scores(run: EvalRun) -> None:
    """The data set, the index, and a table of each mode's scores."""
    from semsearch.search.evaluate import query_subsets

    dataset = run.dataset
    state = "built" if run.built else "reused"
    out.print(
        f"{dataset.name}: {len(dataset.documents)} documents, {len(dataset.queries)} queries "
        f"(index {state}: {run.index_dir or 'temporary'})",
        markup=False,
    )
    metrics = list(next(iter(run.results.values())))
    width = max(8, *(len(name) + 2 for name in run.results))
    out.print(f"{'mode':<{width}}" + "".join(f"{m:>15}" for m in metrics), markup=False)
    for name, scores in run.results.items():
        row = "".join(f"{scores[m]:>15.4f}" if m in scores else f"{'':>15}" for m in metrics)
        out.print(f"{name:<{width}}" + row, markup=False)
    subsets = query_subsets(dataset.queries)
    if subsets:
        counts = ", ".join(f"{name} {len(qids)}" for name, qids in subsets.items())
        out.print(f"queries by form: {counts} (questions end in '?')", markup=False)
