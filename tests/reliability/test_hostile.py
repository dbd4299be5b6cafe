"""The hostile-input table of docs/operations.md, row by row: a 4xx or a warning, never a 500.

Each row of that table is a key of API_ROWS or INDEXER_ROWS (a test checks that the two lists
agree), and each input of a row is one parametrised case.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import semsearch.index.readers.files
from semsearch.index.builder import build_index
from semsearch.index.errors import CorpusError
from semsearch.search.cli import app as cli
from tests.conftest import ROOT, SEED_FILE, FakeEmbedder
from tests.reliability.conftest import make_app

FTS5 = ['NEAR(power outage)', '"unbalanced', "power AND OR NOT", "*", "title:power", "^power",
        "power*", "(((", "-power", "{title heading}: power", "power NOT"]  # fmt: skip
SQL = ["'; DROP TABLE chunks; --", "1 OR 1=1", '" OR ""="', "talks'); DELETE FROM articles; --"]
UNICODE = ["🔥⚡ power", "انقطاع الكهرباء", "שלום עולם", "e\u0301lectricite\u0301",
           "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇", "power\u200boutage", "\ufeffpower"]  # fmt: skip
TRAVERSAL = ["..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/etc/passwd", "/etc/passwd",
             "....//....//etc/passwd", "%252e%252e%252fetc%252fpasswd", "C:%5Cwindows%5Cwin.ini",
             "a%00b", "%F0%9F%94%A5.txt"]  # fmt: skip


def get(q: Any = None, **params: Any) -> dict:
    return {"method": "GET", "url": "/search", "params": {"q": q, **params} if q else params}


def post(body: Any, content_type: str = "application/json") -> dict:
    content = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return {"method": "POST", "url": "/search", "content": content,
            "headers": {"content-type": content_type}}  # fmt: skip


LIMITS = "tests/reliability/test_limits.py::"
READERS = "tests/index/test_readers.py::"


def page(url: str, **params: Any) -> dict:
    """A browser's request for an HTML page."""
    return {"method": "GET", "url": url, "params": params, "headers": {"accept": "text/html"}}


# row name -> (inputs, expected status)
API_ROWS: dict[str, tuple[list[dict], int]] = {
    "empty or whitespace-only query": (
        [get(q=""), get(q=" \t\n"), get(), post({"query": ""}), post({"query": "   "})],
        422,
    ),
    "query over 1,000 characters": ([get("a" * 1001), post({"query": "word " * 300})], 422),
    "query of exactly 1,000 characters": ([get(("word " * 200)[:1000])], 200),
    "k out of range or not a whole number": (
        [get("power", k=k) for k in ("0", "101", "-1", "2.5", "abc", "1e400", "")]
        + [post({"query": "power", "k": k}) for k in (0, 101, 2.5, "5", True, None)],
        422,
    ),
    "unknown mode": (
        [
            get("power", mode="fuzzy"),
            get("power", mode="HYBRID"),
            post({"query": "power", "mode": ""}),
        ],
        422,
    ),
    "per_article out of range": (
        [get("power", per_article="0"), post({"query": "power", "per_article": 101})],
        422,
    ),
    "invalid JSON": ([post('{"query": '), post("not json"), post(""), post(b"\xff\xfe")], 422),
    "JSON that is not an object": ([post([1, 2]), post("power"), post(None)], 422),
    "unknown JSON fields": ([post({"query": "power", "limit": 5})], 422),
    "wrong content type": (
        [
            post('{"query": "power"}', "text/plain"),
            post("query=power", "application/x-www-form-urlencoded"),
            post("--x--", "multipart/form-data; boundary=x"),
        ],
        422,
    ),
    "emoji, RTL text, combining marks, zero-width characters": (
        [get(q) for q in UNICODE] + [post({"query": q}) for q in UNICODE[:3]],
        200,
    ),
    "NUL byte in the query": ([get("power\x00outage"), post({"query": "power\u0000"})], 422),
    "lone surrogate in JSON": ([post('{"query": "\\ud800 power"}')], 422),
    "FTS5 query syntax": ([get(q, mode=m) for q in FTS5 for m in ("lexical", "hybrid")], 200),
    "SQL-like strings": ([get(q, mode="lexical") for q in SQL] + [post({"query": SQL[0]})], 200),
    "article id with ../, URL-encoded traversal, absolute path, NUL": (
        [{"method": "GET", "url": f"/articles/{path}"} for path in TRAVERSAL],
        404,
    ),
    "huge headers": (
        [
            {**get("power"), "headers": {"X-Big": "a" * 20_000}},
            {**get("power"), "headers": {f"X-H{i}": "v" * 60 for i in range(300)}},
        ],
        431,
    ),
    "request body over 64 KiB": (
        [
            post({"query": "power", "pad": "x" * 70_000}),
            {**post("{}"), "content": iter([b'{"query": "', b"a" * 70_000, b'"}'])},
        ],
        413,
    ),
    "wrong method or unknown path": ([{"method": "DELETE", "url": "/search"}], 405),
    "search page k not a plain number": (
        [page("/", q="power", k=k) for k in ("²", "١٠", "1" * 5000, "0", "101", "-5")],
        422,
    ),
    "article page p not a plain number": (
        [page(f"/articles/{SEED_FILE.name}", p=p) for p in ("²", "9" * 5000, "-1", "1e3")],
        200,
    ),
    "article page query over 1,000 characters": (
        [page(f"/articles/{SEED_FILE.name}", q=q) for q in ("power " * 200, "a" * 1001)],
        422,
    ),
}
API_CASES = [
    pytest.param(request, status, id=f"{row}-{i}")
    for row, (requests, status) in API_ROWS.items()
    for i, request in enumerate(requests)
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    index_dir = tmp_path_factory.mktemp("hostile") / "index"
    build_index(ROOT / "seeds", index_dir, FakeEmbedder())
    with TestClient(make_app(index_dir), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(("request_", "status"), API_CASES)
def test_hostile_request(client: TestClient, request_: dict, status: int) -> None:
    response = client.request(**request_)
    assert response.status_code == status, response.text[:300]
    if response.headers["content-type"].startswith("text/html"):  # a page, for a browser
        assert "Traceback" not in response.text
        if status != 200:  # the page says what is wrong
            assert re.search(r"must be from 1 to|the limit is", response.text), response.text
    elif status != 200:
        detail = response.json()["detail"]
        assert detail  # says what is wrong
        assert "root:" not in response.text
    else:
        assert isinstance(response.json()["hits"], list)


def test_sql_like_queries_leave_the_index_intact(client: TestClient) -> None:
    before = client.get("/stats").json()
    for query in SQL:
        client.get("/search", params={"q": query, "mode": "lexical"})
    assert client.get("/stats").json() == before


# -- the indexer ------------------------------------------------------------------------------


def index_with(seeds: Path, tmp_path: Path) -> tuple[set[str], list[str]]:
    """Index `seeds`; returns (the article ids in the index, the warnings)."""
    warnings: list[str] = []
    build_index(seeds, tmp_path / "index", FakeEmbedder(), warn=warnings.append)
    with TestClient(make_app(tmp_path / "index")) as client:
        hits = client.get("/search", params={"q": "talks power text", "k": 100}).json()["hits"]
        assert client.get(f"/articles/{SEED_FILE.name}").status_code == 200
    ids = {h["article_id"] for h in hits} | {a for h in hits for a in h["also_in"]}
    return ids | {SEED_FILE.name}, warnings


def non_utf8(seeds: Path) -> None:
    (seeds / "latin.txt").write_bytes("Café talks\n\nThe café served power tea.".encode("cp1252"))


def empty(seeds: Path) -> None:
    (seeds / "empty.txt").write_bytes(b"")
    (seeds / "blank.txt").write_text(" \n\n\t\n", encoding="utf-8")


def binary(seeds: Path) -> None:
    (seeds / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(256))


def huge(seeds: Path) -> None:
    with open(seeds / "huge.txt", "wb") as handle:  # sparse: 50 MB on paper, nothing on disk
        handle.truncate(50 * 1024 * 1024)


def non_utf8_name(seeds: Path) -> None:
    folder = os.fsencode(seeds)
    with open(folder + b"/caf\xe9.txt", "wb") as handle:  # cp1252 bytes: not UTF-8
        handle.write(b"Cafe power talks\n\nThe cafe talks about power.")
    os.mkdir(folder + b"/d\xe9j\xe0")
    with open(folder + b"/d\xe9j\xe0/vu.txt", "wb") as handle:
        handle.write(b"Deja vu\n\nThe talks about power again.")


def symlink_out_to_a_file(seeds: Path) -> None:
    other = seeds.parent / "elsewhere.txt"
    other.write_text("Linked power report\n\nThe linked text talks about power.", encoding="utf-8")
    (seeds / "linked.txt").symlink_to(other)


def symlink_out_to_a_folder(seeds: Path) -> None:
    other = seeds.parent / "elsewhere"
    other.mkdir()
    (other / "report.txt").write_text("Power report\n\nThe text talks about power.")
    (seeds / "linked").symlink_to(other, target_is_directory=True)


def symlink_within(seeds: Path) -> None:
    (seeds / "alias.txt").symlink_to(SEED_FILE.name)  # relative: the seed file beside it
    (seeds / "sub").mkdir()
    (seeds / "sub" / "up.txt").symlink_to(seeds / SEED_FILE.name)


def dangling_symlink(seeds: Path) -> None:
    (seeds / "dangling.txt").symlink_to(seeds / "missing.txt")


def symlink_loop(seeds: Path) -> None:
    (seeds / "a.txt").symlink_to(seeds / "b.txt")
    (seeds / "b.txt").symlink_to(seeds / "a.txt")
    (seeds / "sub").mkdir()
    (seeds / "sub" / "up").symlink_to(seeds, target_is_directory=True)  # a folder loop


def fifo(seeds: Path) -> None:
    os.mkfifo(seeds / "pipe.txt")  # reading it would block forever


# row name -> (make the hostile file(s), article ids that must be indexed, warning patterns)
INDEXER_ROWS: dict[str, tuple[Any, set[str], list[str]]] = {
    "non-UTF-8 file": (non_utf8, {"latin.txt"}, [r"latin\.txt: not valid UTF-8, read as cp1252"]),
    "empty file": (
        empty,
        set(),
        [r"empty\.txt: skipped, the file is empty", r"blank\.txt: skipped, the file is empty"],
    ),
    "binary file": (binary, set(), [r"image\.txt: skipped, looks like a binary file"]),
    "50 MB file": (huge, set(), [r"huge\.txt: skipped, 50\.0 MiB is over the 10 MiB limit"]),
    "file name not valid UTF-8": (
        non_utf8_name,
        set(),
        [
            r"^caf\\xe9\.txt: skipped, the file name is not valid UTF-8: rename it$",
            r"^d\\xe9j\\xe0: skipped, the folder name is not valid UTF-8: rename it$",
        ],
    ),
    "symlink to a file outside the folder": (
        symlink_out_to_a_file,
        set(),
        [
            r"^linked\.txt: skipped, a symlink to a file outside the seeds folder "
            r"\(use --follow-symlinks to index it\)$"
        ],
    ),
    "symlink to a folder outside the folder": (
        symlink_out_to_a_folder,
        set(),
        [r"^linked: skipped, a symlink to a folder outside the seeds folder \(use --follow-"],
    ),
    "symlink to a file inside the folder": (symlink_within, {"alias.txt", "sub/up.txt"}, []),
    "dangling symlink": (dangling_symlink, set(), [r"dangling\.txt: skipped, cannot be read"]),
    "symlink loop": (
        symlink_loop,
        set(),
        [r"a\.txt: skipped, cannot be read \(Too many levels", r"b\.txt: skipped, cannot be read"],
    ),
    "FIFO named .txt": (fifo, set(), [r"pipe\.txt: skipped, not a regular file"]),
}


@pytest.mark.parametrize("row", INDEXER_ROWS)
def test_hostile_file(copy_seeds: Path, tmp_path: Path, row: str) -> None:
    make, indexed, patterns = INDEXER_ROWS[row]
    make(copy_seeds)
    ids, warnings = index_with(copy_seeds, tmp_path)
    assert indexed <= ids  # nothing lost: the good articles are all there
    for pattern in patterns:
        assert any(re.search(pattern, w) for w in warnings), (pattern, warnings)
    assert len(warnings) == len(patterns)
    for warning in warnings:  # each can be printed and sent as JSON (no lone surrogate)
        json.dumps(warning, ensure_ascii=False).encode("utf-8")
        skipped, _, _ = warning.partition(": skipped,")
        assert not {i for i in ids if i == skipped or i.startswith(skipped + "/")}, warning


def test_unreadable_file(copy_seeds: Path, tmp_path: Path, monkeypatch) -> None:
    secret = copy_seeds / "secret.txt"
    secret.write_text("Secret\n\nHidden words here.", encoding="utf-8")
    secret.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make open() fail as it would for a user
        real_open = open

        def deny(path, *args, **kwargs):  # type: ignore[no-untyped-def]
            if Path(path) == secret:
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(semsearch.index.readers.files, "open", deny, raising=False)
    ids, warnings = index_with(copy_seeds, tmp_path)
    assert warnings == ["secret.txt: skipped, cannot be read (Permission denied)"]
    assert SEED_FILE.name in ids


@pytest.mark.parametrize("kind", ["missing", "a file", "no articles"])
def test_bad_seeds_folder(tmp_path: Path, kind: str) -> None:
    seeds = tmp_path / "seeds"
    if kind == "a file":
        seeds.write_text("not a folder", encoding="utf-8")
    elif kind == "no articles":
        seeds.mkdir()
        (seeds / "notes.md").write_text("# not an article", encoding="utf-8")
    with pytest.raises(CorpusError):
        build_index(seeds, tmp_path / "index", FakeEmbedder())
    if kind == "no articles":
        return  # the CLI finds that out only after loading the model: covered above
    result = CliRunner().invoke(cli, ["index", "--seeds", str(seeds), "--index", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("semsearch: error: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_docs_table_lists_every_row() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = operations.split("## Hostile input", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")}
    rows -= {"input"}
    expected = set(API_ROWS) | set(INDEXER_ROWS) | set(ELSEWHERE)
    expected |= {"unreadable file", "missing seeds folder, a file, or no articles"}
    assert rows == expected
    for test in ELSEWHERE.values():  # each row tested elsewhere names a test that exists
        module, _, name = test.partition("::")
        assert f"def {name}(" in (ROOT / module).read_text(encoding="utf-8"), test


# Rows of the table tested in other files: row name -> the test.
ELSEWHERE = {
    "unknown Host header": LIMITS + "test_only_loopback_host_names_by_default_on_loopback",
    "made-up HTTP methods": LIMITS + "test_unknown_methods_share_one_metrics_label",
    "a flood of searches": LIMITS
    + "test_past_the_request_cap_a_503_with_retry_after_and_health_still_answers",
    "slow or silent connections": LIMITS
    + "test_a_connection_that_never_finishes_its_headers_is_closed",
    "a reload during a page search": LIMITS
    + "test_the_search_page_keeps_its_generation_through_a_reload",
    "`/stats` without the admin token": LIMITS + "test_stats_shows_paths_only_to_the_admin",
    "a short admin token": LIMITS + "test_a_short_admin_token_is_refused_at_start",
    "random words in lexical or hybrid queries": "tests/index/test_caches.py::"
    "test_random_words_keep_the_word_caches_within_their_bounds",
    "huge or many distinct queries to highlight": "tests/search/test_text.py::"
    "test_long_queries_keep_the_highlight_cache_within_its_bytes",
    "tokens that fold to long text": "tests/index/test_caches.py::"
    "test_stems_of_tokens_that_fold_long_are_not_kept",
    "bad JSONL lines": READERS + "test_jsonl_bad_lines_name_file_and_line",
    "a web page with no article": READERS
    + "test_a_page_without_article_text_is_skipped_with_one_warning",
    "bad Markdown front matter or date": READERS
    + "test_markdown_bad_front_matter_and_bad_date_are_warnings",
    "files of other types": READERS + "test_a_folder_of_other_files_says_what_it_ignored",
    "a bad `--formats`": "tests/search/test_cli.py::"
    "test_a_bad_formats_setting_fails_before_the_model_loads",
}
