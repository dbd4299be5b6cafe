"""What a load run (`search.load`) heard back: each answer, and the report checked against
each generation's reference answers."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Answer", "LoadReport", "Signature", "check_answers", "signature"]

Signature = tuple[tuple[str, int, int, float], ...]


@dataclass(frozen=True)
class Answer:
    """One request's outcome."""

    query: str
    mode: str
    status: int  # 0 when the request failed in transport
    generation: str | None
    hits: Signature
    started: float  # time.perf_counter() when the request was sent
    ended: float
    error: str | None = None

    @property
    def ms(self) -> float:
        return (self.ended - self.started) * 1000


@dataclass
class LoadReport:
    """What a run did and what went wrong."""

    answers: list[Answer]
    seconds: float
    references: dict[str, dict[tuple[str, str], Signature]]
    problems: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for a in self.answers if a.status != 200)

    def percentile(self, q: float) -> float:
        times = sorted(a.ms for a in self.answers)
        if not times:
            return 0.0
        return times[min(len(times) - 1, max(0, math.ceil(q / 100 * len(times)) - 1))]

    def generations(self) -> Counter[str | None]:
        """How many answers each generation gave."""
        return Counter(a.generation for a in self.answers if a.status == 200)

    def overlaps(self) -> int:
        """Answers from a generation that ended after a newer one had started answering.

        Evidence that requests were in flight during a switch and finished on the old one.
        """
        first_start: dict[str, float] = {}
        for a in self.answers:
            if a.generation is not None:
                first_start[a.generation] = min(first_start.get(a.generation, a.started), a.started)
        order = sorted(first_start, key=first_start.get)  # type: ignore[arg-type]
        count = 0
        for older, newer in itertools.pairwise(order):
            count += sum(
                1 for a in self.answers if a.generation == older and a.ended > first_start[newer]
            )
        return count

    def summary(self) -> str:
        generations = self.generations()
        seen = ", ".join(f"{name}: {count}" for name, count in sorted(generations.items()))
        return (
            f"requests {len(self.answers)}  errors {self.errors}  "
            f"wrong answers {len(self.problems) - self.errors}  "
            f"p50 {self.percentile(50):.1f} ms  p99 {self.percentile(99):.1f} ms  "
            f"{len(self.answers) / self.seconds if self.seconds else 0:.1f} req/s\n"
            f"answers by generation: {seen}; "
            f"answers finishing on the old generation after a switch: {self.overlaps()}"
        )


def signature(body: dict[str, Any]) -> Signature:
    return tuple(
        (h["article_id"], h["paragraph"], h["part"], float(h["score"])) for h in body["hits"]
    )


def _same(a: Signature, b: Signature) -> bool:
    """Equal hits in equal order, scores equal up to float noise between threads."""
    return len(a) == len(b) and all(
        x[:3] == y[:3] and math.isclose(x[3], y[3], rel_tol=1e-3, abs_tol=1e-3)
        for x, y in zip(a, b, strict=True)
    )


def check_answers(
    answers: Sequence[Answer], references: dict[str, dict[tuple[str, str], Signature]]
) -> list[str]:
    """One line per failed request and per answer that matches no generation's reference."""
    problems = []
    for answer in answers:
        if answer.status != 200:
            problems.append(f"{answer.query!r} {answer.mode}: {answer.status} {answer.error}")
            continue
        expected = references.get(answer.generation or "", {}).get((answer.query, answer.mode))
        if expected is None:
            problems.append(f"{answer.query!r} {answer.mode}: from unknown {answer.generation}")
        elif not _same(answer.hits, expected):
            problems.append(
                f"{answer.query!r} {answer.mode}: answer differs from {answer.generation}'s"
            )
    return problems
