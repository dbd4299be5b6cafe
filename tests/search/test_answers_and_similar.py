"""Each hit's answer sentence, and the passages similar to a passage: service, API, page, CLI."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from semsearch.api.app import create_app
from semsearch.index.builder import build_index
from semsearch.search.cli import app as cli
from semsearch.search.errors import InvalidQuery, UnknownPassage
from semsearch.search.service import SearchService
from semsearch.search.settings import Settings
from tests.conftest import FakeEmbedder

# The FakeEmbedder hashes words: the sentence sharing the query's words is nearest to it.
ANSWER = "The harbour lighthouse keeper polishes the brass lenses every night."
PARAGRAPH = (
    "Zebra crossings follow rules that vary from city to city. "
    f"{ANSWER} "
    "Bakers in the old town rise early to bake bread for the market."
)
QUERY = "lighthouse keeper polishes brass lenses"
# Every sentence shorter than three words: a passage without sentence vectors.
NO_SENTENCES = "Yes! Lighthouse keepers! Brass lenses! Maybe so!"
ARTICLE = (
    "Harbour notes\n\n"
    f"{PARAGRAPH}\n\n"
    "Fishing boats leave the harbour before dawn and return with the tide in the afternoon.\n\n"
    f"{NO_SENTENCES}\n\n"
    "The market square fills with stalls of bread, fish and flowers every Saturday morning.\n"
)


@pytest.fixture
def answer_index(tmp_path: Path) -> Path:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "harbour.txt").write_text(ARTICLE, encoding="utf-8")
    (seeds / "copy.txt").write_text(ARTICLE.replace("Harbour notes", "Copied notes"), "utf-8")
    index_dir = tmp_path / "index"
    build_index(seeds, index_dir, FakeEmbedder())
    return index_dir


@pytest.fixture
def service(answer_index: Path) -> Iterator[SearchService]:
    service = SearchService.open(Settings(index_dir=answer_index), FakeEmbedder())
    yield service
    service.close()


@pytest.fixture
def answer_client(answer_index: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(index_dir=answer_index), FakeEmbedder())) as client:
        yield client


@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_answer_is_the_sentence_sharing_the_query_words(service: SearchService, mode: str) -> None:
    hits = service.search(QUERY, k=5, mode=mode, collapse=False)
    hit = next(hit for hit in hits if hit.text == PARAGRAPH)
    assert hit.answer is not None
    assert hit.text[hit.answer.start : hit.answer.end] == ANSWER


def test_answers_come_from_the_sentences_the_ranking_scored(
    service: SearchService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sentence lift scored every candidate's sentences: the hits' answers reuse them
    instead of asking the store again."""
    calls: list[int] = []
    score = service.store.sentence_scores

    def counted(ids, vector):  # type: ignore[no-untyped-def]
        calls.append(len(ids))
        return score(ids, vector)

    monkeypatch.setattr(service.store, "sentence_scores", counted)
    hits = service.search(QUERY, k=5, mode="dense", collapse=False)
    assert len(calls) == 1 and calls[0] >= len(hits)
    assert next(hit.text[hit.answer.start : hit.answer.end] for hit in hits if hit.answer) == ANSWER


def test_a_store_in_a_server_scores_the_answers_while_the_passages_are_read(
    answer_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where each call is a round trip, the shown hits' sentences the ranking lacks are scored
    at the same time as their passages are read: the read here waits until that has begun."""
    settings = Settings(index_dir=answer_index, sentence_weight=0.0)  # (no scores from ranking)
    plain = SearchService.open(settings, FakeEmbedder())
    service = SearchService.open(settings, FakeEmbedder())
    store = service.store
    monkeypatch.setattr(
        store, "capabilities", dataclasses.replace(store.capabilities, in_process=False)
    )
    scoring = threading.Event()
    score, read = store.sentence_scores, store.chunks

    def scored(ids, vector):  # type: ignore[no-untyped-def]
        scoring.set()
        return score(ids, vector)

    def reading(ids):  # type: ignore[no-untyped-def]
        assert scoring.wait(timeout=5), "the answers were not being scored while reading"
        return read(ids)

    monkeypatch.setattr(store, "sentence_scores", scored)
    monkeypatch.setattr(store, "chunks", reading)
    try:
        hits = service.search(QUERY, k=3, mode="dense", collapse=False)
        want = plain.search(QUERY, k=3, mode="dense", collapse=False)
    finally:
        service.close()
        plain.close()
    assert [(hit.chunk_id, hit.answer) for hit in hits] == [
        (hit.chunk_id, hit.answer) for hit in want
    ]
    assert any(hit.answer for hit in hits)


@pytest.mark.parametrize("fusion", ["rrf", "zscore"])
def test_a_hit_only_the_lexical_leg_found_gets_its_answer_too(
    answer_index: Path, fusion: str
) -> None:
    """rrf and zscore fusion lift only the dense leg's passages: the others are scored for
    their answer when shown."""
    settings = Settings(index_dir=answer_index, fusion=fusion)
    service = SearchService.open(settings, FakeEmbedder())
    try:
        legs = service._ranker.rank(QUERY, "hybrid", depth=1)  # one dense, more lexical
        assert legs.sentences is not None and len(legs.sentences.ids) == 1
        hits = service._ranker.hits(QUERY, legs.ranked, legs, 10, None, collapse=False)
    finally:
        service.close()
    unscored = [hit for hit in hits if hit.chunk_id not in legs.sentences.ids.tolist()]
    answered = [hit for hit in unscored if hit.text == PARAGRAPH]
    assert answered and all(hit.answer is not None for hit in answered)
    assert answered[0].text[answered[0].answer.start : answered[0].answer.end] == ANSWER


def test_no_answer_in_lexical_mode(service: SearchService) -> None:
    hits = service.search(QUERY, k=5, mode="lexical")
    assert hits and all(hit.answer is None for hit in hits)


def test_no_answer_for_a_passage_without_sentences(service: SearchService) -> None:
    hits = service.search("lighthouse keepers brass lenses maybe yes", k=10, mode="dense")
    short = [hit for hit in hits if hit.text == NO_SENTENCES]
    assert short and short[0].answer is None


def test_answers_on_every_page(service: SearchService) -> None:
    first = service.search(QUERY, k=1, collapse=False)
    second = service.search(QUERY, k=1, collapse=False, offset=1)
    both = first + second
    assert [hit.text for hit in both] == [PARAGRAPH, PARAGRAPH]  # the copy's paragraph
    assert [hit.text[hit.answer.start : hit.answer.end] for hit in both if hit.answer] == [
        ANSWER,
        ANSWER,
    ]


def test_similar_leaves_out_the_passage_and_its_duplicates(service: SearchService) -> None:
    own = service.search(QUERY, k=1, collapse=False)[0]
    duplicates = {other for other, _, _ in service.store.duplicates_of(own.chunk_id)}
    assert duplicates  # the copied article holds the same paragraph
    hits = service.similar(own.chunk_id, k=3)
    assert len(hits) == 3
    assert not {hit.chunk_id for hit in hits} & {own.chunk_id, *duplicates}
    assert [hit.rank for hit in hits] == [1, 2, 3]
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(hit.dense_score == hit.score and hit.answer is None for hit in hits)
    assert all(hit.highlights == () for hit in hits)


def test_similar_k_and_bad_ids(service: SearchService) -> None:
    assert len(service.similar(0, k=1)) == 1
    with pytest.raises(UnknownPassage, match="no passage has chunk id 999"):
        service.similar(999)
    for bad in (-1, "1", 1.0, True):
        with pytest.raises(InvalidQuery, match="chunk id"):
            service.similar(bad)  # type: ignore[arg-type]
    for k in (0, 101):
        with pytest.raises(InvalidQuery, match="k must be"):
            service.similar(0, k=k)


def test_api_hit_has_the_answer(answer_client: TestClient) -> None:
    hit = answer_client.get("/search", params={"q": QUERY, "k": 1}).json()["hits"][0]
    start, end = hit["answer"]["start"], hit["answer"]["end"]
    assert hit["text"][start:end] == ANSWER
    lexical = answer_client.get("/search", params={"q": QUERY, "k": 1, "mode": "lexical"})
    assert lexical.json()["hits"][0]["answer"] is None


def test_api_similar(answer_client: TestClient) -> None:
    response = answer_client.get("/passages/0/similar", params={"k": 2})
    assert response.status_code == 200
    body = response.json()
    assert (body["query"], body["mode"], body["k"]) == ("similar to passage 0", "dense", 2)
    assert len(body["hits"]) == 2 and 0 not in [hit["chunk_id"] for hit in body["hits"]]
    default = answer_client.get("/passages/0/similar").json()
    assert body["hits"] == default["hits"][:2]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/passages/999/similar", 404),
        ("/passages/9223372036854775808/similar", 404),  # beyond 64 bits
        ("/passages/-1/similar", 422),
        ("/passages/abc/similar", 422),
        ("/passages/1.5/similar", 422),
        ("/passages/0/similar?k=0", 422),
        ("/passages/0/similar?k=101", 422),
    ],
)
def test_api_similar_refuses(answer_client: TestClient, path: str, status: int) -> None:
    response = answer_client.get(path)
    assert response.status_code == status
    assert "detail" in response.json()


def test_api_similar_sends_a_browser_to_the_page(answer_client: TestClient) -> None:
    response = answer_client.get(
        "/passages/3/similar", headers={"accept": "text/html"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/?similar=3&k=10"


def test_page_marks_the_answer_and_links_similar(answer_client: TestClient) -> None:
    page = answer_client.get("/", params={"q": QUERY, "k": 1}).text
    marked = page.split('<span class="answer">', 1)[1].split("</span>", 1)[0]
    # The answer's words are marked inside it, HTML-escaped, and the span holds the sentence.
    assert "<mark>lighthouse</mark>" in marked
    assert marked.replace("<mark>", "").replace("</mark>", "") == ANSWER
    assert '<a class="hit-similar" href="/?similar=' in page


def test_page_lists_similar_passages(answer_client: TestClient) -> None:
    page = answer_client.get("/", params={"similar": "0", "k": 2})
    assert page.status_code == 200
    assert "2 passages similar to passage 0" in page.text
    assert page.text.count('class="hit"') == 2
    assert answer_client.get("/", params={"similar": "999"}).status_code == 404
    assert answer_client.get("/", params={"similar": "x"}).status_code == 422


@pytest.mark.model
def test_cli_similar(real_index: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["similar", "0", "-k", "2", "--json", "--index", str(real_index)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["query"] == "similar to passage 0"
    assert len(document["hits"]) == 2 and 0 not in [hit["chunk_id"] for hit in document["hits"]]
    readable = runner.invoke(cli, ["similar", "0", "-k", "1", "--index", str(real_index)])
    assert readable.exit_code == 0 and readable.stdout.startswith("1. ")


@pytest.mark.model
def test_cli_similar_unknown_id_is_one_line_and_exit_2(real_index: Path) -> None:
    result = CliRunner().invoke(cli, ["similar", "999", "--index", str(real_index)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "semsearch: error: no passage has chunk id 999 in index generation gen-1"
    ]
    bad = CliRunner().invoke(cli, ["similar", "x", "--index", str(real_index)])
    assert bad.exit_code == 2


@pytest.mark.model
def test_cli_marks_the_answer_in_plain_output(real_index: Path) -> None:
    args = ["search", "US envoys Witkoff and Kushner", "-k", "1", "--index", str(real_index)]
    result = CliRunner().invoke(cli, args)
    assert "»US envoys Steve Witkoff and Jared Kushner were also present.«" in result.stdout
    hit = json.loads(CliRunner().invoke(cli, [*args, "--json"]).stdout)["hits"][0]
    answer = hit["text"][hit["answer"]["start"] : hit["answer"]["end"]]
    assert answer == "US envoys Steve Witkoff and Jared Kushner were also present."


def test_mark_nests_highlights_in_the_answer_and_escapes() -> None:
    from semsearch.search.text import mark

    text = "A <b> one. Two & three here. Four"
    answer = (text.index("Two"), text.index("Four") - 1)
    crossing = (text.index("here"), text.index("Four") + 2)  # crosses the answer's end
    html = mark(text, [(2, 5), (text.index("Two"), text.index("Two") + 3), crossing], answer)
    assert html == (
        'A <mark>&lt;b&gt;</mark> one. <span class="answer"><mark>Two</mark> &amp; three '
        "<mark>here.</mark></span><mark> Fo</mark>ur"
    )
    assert mark(text, [(2, 5)]) == "A <mark>&lt;b&gt;</mark> one. Two &amp; three here. Four"
