"""Settings: renamed environment variables still work, with a warning; the new names win."""

from __future__ import annotations

import pytest

from semsearch.search.settings import Settings


def test_the_store_and_runtime_are_read_from_their_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMSEARCH_STORE", "milvus")
    monkeypatch.setenv("SEMSEARCH_EMBEDDING_RUNTIME", "torch")
    settings = Settings()
    assert (settings.store, settings.embedding_runtime) == ("milvus", "torch")


@pytest.mark.parametrize(
    ("old", "value", "field"),
    [
        ("SEMSEARCH_BACKEND", "milvus", "store"),
        ("SEMSEARCH_EMBEDDING_BACKEND", "torch", "embedding_runtime"),
    ],
)
def test_an_old_name_still_works_and_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, old: str, value: str, field: str
) -> None:
    monkeypatch.setenv(old, value)
    new = "SEMSEARCH_" + field.upper()
    with pytest.warns(FutureWarning, match=f"{old} is deprecated .* set {new} instead"):
        settings = Settings()
    assert getattr(settings, field) == value


def test_the_new_name_wins_over_the_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMSEARCH_BACKEND", "milvus")
    monkeypatch.setenv("SEMSEARCH_STORE", "faiss")
    assert Settings().store == "faiss"


def test_an_old_name_with_a_bad_value_is_a_validation_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEMSEARCH_BACKEND", "postgres")
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="store"):
        Settings()


def test_an_explicit_argument_wins_over_an_old_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMSEARCH_EMBEDDING_BACKEND", "torch")
    assert Settings(embedding_runtime="openvino").embedding_runtime == "openvino"


def test_an_old_name_as_an_argument_is_not_silently_ignored() -> None:
    with pytest.warns(FutureWarning, match=r"Settings\(backend=\.\.\.\) is deprecated"):
        settings = Settings(backend="milvus")
    assert settings.store == "milvus"
