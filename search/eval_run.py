"""`semsearch eval` as one library call: index a BEIR folder (in a scratch folder unless told
where), search its queries in each mode, score them, and drop the scratch index."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from semsearch.index.errors import SemsearchError
from semsearch.search.evaluate import BeirDataset, ensure_index, evaluate, load_beir, open_service
from semsearch.search.feedback import Feedback
from semsearch.search.service import MODES
from semsearch.search.settings import Settings, embedder_for, store_for

__all__ = ["EvalRun", "eval_modes", "run_eval"]


@dataclass(frozen=True)
class EvalRun:
    """An evaluation's data set, whether its index was built, and its scores by mode."""

    dataset: BeirDataset
    built: bool  # False: the index in `index_dir` was built from the same data and reused
    index_dir: Path | None  # where the index is kept; None: it was temporary
    results: dict[str, dict[str, float]]  # {mode: {metric: value}}


def eval_modes(mode: str) -> list[str]:
    """The modes that `mode` names: one of the search modes, or "all" of them.

    Raises:
        SemsearchError: an unknown mode.
    """
    if mode != "all" and mode not in MODES:
        raise SemsearchError(f"unknown mode {mode!r}: use one of {', '.join(MODES)} or all")
    return list(MODES) if mode == "all" else [mode]


def run_eval(
    folder: Path,
    modes: Sequence[str],
    settings: Settings,
    index_dir: Path | None = None,
    feedback: Feedback | None = None,
) -> EvalRun:
    """Evaluate search on the BEIR folder in each of `modes` (see `search.evaluate`).

    Args:
        index_dir: build the index there, or reuse the one built there from the same data;
            None: in a temporary folder, dropped at the end (on Milvus too).
        feedback: where the progress of indexing and of querying is reported.

    Raises:
        CorpusError: the folder is not a readable BEIR folder.
    """
    dataset = load_beir(folder)
    settings = _own_alias(settings, dataset.name)
    embedder = embedder_for(settings)
    task = (feedback or Feedback()).task
    with tempfile.TemporaryDirectory(prefix="semsearch-eval-") as scratch:
        target = index_dir or Path(scratch) / "index"
        store = store_for(settings.model_copy(update={"index_dir": target}))
        built = ensure_index(
            dataset,
            target,
            embedder,
            progress=task(f"indexing {dataset.name}"),
            store=store,
            sentence_vectors=settings.sentence_vectors,
        )
        service = open_service(target, embedder, settings)
        progress = task(f"querying {dataset.name}")
        try:
            results = evaluate(service, dataset, modes, progress=progress)
        finally:
            service.close()
            if index_dir is None:
                store.drop()  # a scratch index kept outside the folder (Milvus)
    return EvalRun(dataset, built, index_dir, results)


def _own_alias(settings: Settings, name: str) -> Settings:
    """On Milvus, each data set gets its own alias beside the served one."""
    slug = re.sub(r"\W", "_", name.lower())
    return settings.model_copy(
        update={"milvus_collection": f"{settings.milvus_collection}_eval_{slug}"}
    )
