"""The README's HTTP API section against the app's OpenAPI schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from semsearch.api.app import create_app
from semsearch.search.settings import Settings
from tests.conftest import ROOT, FakeEmbedder

README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def schema() -> dict:
    return create_app(Settings(index_dir=Path("unused")), FakeEmbedder()).openapi()


def test_every_route_is_documented(schema: dict) -> None:
    documented = set(re.findall(r"^\| `(GET|POST|PUT|DELETE|PATCH) (/[^`?\s]*)", README, re.M))
    routes = {(m.upper(), path) for path, item in schema["paths"].items() for m in item}
    assert routes - documented == set()


def test_every_hit_field_is_in_the_example(schema: dict) -> None:
    fields = schema["components"]["schemas"]["HitModel"]["properties"]
    assert [name for name in fields if f'"{name}":' not in README] == []


@pytest.mark.parametrize("model", ["SearchResponse", "HealthResponse", "ArticleResponse"])
def test_every_response_field_is_named(schema: dict, model: str) -> None:
    fields = schema["components"]["schemas"][model]["properties"]
    assert [name for name in fields if f'"{name}"' not in README] == []
