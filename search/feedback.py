"""How a long library call (a build, an evaluation) reports to its caller while it runs.

The caller (the CLI) passes a `Feedback` with its own warning line, spinner and progress bars;
the default says nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

__all__ = ["Feedback", "Progress", "Tasks"]

# done, total: how far one task has come (as `index.builder.Progress`; not imported from there,
# which would load the whole build, faiss included, for every CLI command)
Progress = Callable[[int, int], None]
# A new task, by its description: returns where to report its progress.
Tasks = Callable[[str], Progress]


def _ignore_progress(done: int, total: int) -> None:
    """Progress nobody follows."""


def _no_task(description: str) -> Progress:
    return _ignore_progress


def _no_warning(message: str) -> None:
    """A warning nobody reads."""


def _no_status(message: str) -> AbstractContextManager[object]:
    return nullcontext()


@dataclass(frozen=True)
class Feedback:
    """Where a long call reports: warnings, a status line around a slow step, progress bars.

    Attributes:
        warn: takes one warning (a skipped file, say).
        status: a context manager shown while a step without progress runs (loading a model).
        task: starts a task with progress (embedding), returning its progress callback.
    """

    warn: Callable[[str], None] = _no_warning
    status: Callable[[str], AbstractContextManager[object]] = _no_status
    task: Tasks = _no_task
