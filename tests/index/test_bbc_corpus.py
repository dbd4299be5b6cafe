"""The indexer on the 2,225 BBC articles in ../shared (skipped where that folder is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from semsearch.index.builder import build_index
from tests.conftest import SHARED, FakeEmbedder

BBC = SHARED / "data" / "bbc"
pytestmark = pytest.mark.skipif(
    not BBC.is_dir(), reason=f"{BBC} is absent: the BBC corpus ships only beside the project in CI"
)


def test_bbc_corpus_builds_with_warnings_and_duplicates(tmp_path: Path) -> None:
    warnings: list[str] = []
    report = build_index(BBC, tmp_path / "ix", FakeEmbedder(), warn=warnings.append)
    assert report.articles == 2225
    assert report.passages > 10_000
    assert warnings == ["sport/199.txt: not valid UTF-8, read as cp1252"]
    assert report.skipped == []
    assert report.duplicates > 500  # some stories are stored twice
