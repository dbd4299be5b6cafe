"""The article readers: HTML (trafilatura), Markdown (front matter, markdown-it), JSONL, the
format table, what a walk ignores, and builds of a mixed folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from semsearch.index.articles import Article, CorpusTally, read_article, read_corpus
from semsearch.index.builder import build_index
from semsearch.index.chunking import chunk_article
from semsearch.index.errors import CorpusError
from semsearch.index.readers import FORMATS, format_of, parse_formats, read_path
from semsearch.index.readers.model import JOINER, iso_date
from tests.conftest import SEED_FILE, FakeEmbedder

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "articles"
HTML, MARKDOWN, JSONL = "harbour.html", "garden-notes.md", "export.jsonl"


def read_all(path: Path, root: Path) -> tuple[list[Article], list[str]]:
    warnings: list[str] = []
    return read_path(path, path.relative_to(root).as_posix(), root, warnings.append), warnings


def read_one(path: Path, root: Path) -> tuple[Article, list[str]]:
    articles, warnings = read_all(path, root)
    assert len(articles) == 1, warnings
    return articles[0], warnings


def shown_text(article: Article) -> str:
    """The text the article shows, rebuilt from its blocks (HTML, Markdown)."""
    return JOINER.join(block.text for block in article.blocks)


def in_folder(tmp_path: Path, name: str, content: str | bytes, folder: str = "") -> Path:
    path = tmp_path / folder / name if folder else tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# HTML


@pytest.fixture(scope="module")
def html_article() -> Article:
    return read_one(FIXTURES / HTML, FIXTURES)[0]


def test_html_keeps_the_article_and_drops_the_page_furniture(html_article: Article) -> None:
    text = shown_text(html_article)
    assert text.startswith("The small harbour town of Kelmouth has voted")
    assert text.endswith("feeding the grid by the end of 2026.")
    furniture = ["cookies", "Home", "Politics", "Coastal Briefing", "Sign up", "newsletter",
                 "Related stories", "Offshore wind farm", "All rights reserved", "Privacy",
                 "By Maria Jensen"]  # fmt: skip
    for junk in furniture:
        assert junk not in text, junk


def test_html_metadata_is_the_article_s(html_article: Article) -> None:
    assert html_article.title == "Harbour town bets on tidal power"  # not the <title>
    assert html_article.published == "2024-03-05"
    assert html_article.author == "Maria Jensen"
    assert html_article.url == "https://news.example.org/energy/harbour-tidal-power"
    assert html_article.section == ""  # at the root, and the page names none
    assert html_article.tags == ("tidal power", "energy")  # its article:tag metadata


def test_html_headings_are_heading_blocks_and_context(html_article: Article) -> None:
    headings = [b.text for b in html_article.blocks if b.role == "heading"]
    assert headings == ["How the turbines work", "Concerns from fishermen",
                        "What the council promised"]  # fmt: skip
    assert {b.role for b in html_article.blocks} == {"heading", "paragraph"}
    chunks = chunk_article(html_article)
    assert [c.heading for c in chunks] == ["", "", "How the turbines work",
        "How the turbines work", "Concerns from fishermen", "What the council promised",
        "What the council promised"]  # fmt: skip
    assert not any(c.text in headings for c in chunks)
    assert chunks[4].embed_text.startswith(
        "Harbour town bets on tidal power\nConcerns from fishermen\nLocal fishermen"
    )


def test_html_spans_point_into_the_extracted_text(html_article: Article) -> None:
    text = shown_text(html_article)
    assert all(text[b.start : b.end] == b.text for b in html_article.blocks)
    assert all(text[c.start : c.end] == c.text for c in chunk_article(html_article))


PAGE = """<html><head><title>Why bees dance - The Insect Blog</title></head><body>
<nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<div class="content"><h1>Why bees dance</h1>
<p>Honey bees tell each other where to find food by <em>dancing</em> on the comb, a discovery
that won Karl von Frisch a Nobel Prize.</p>
<h2>The waggle dance</h2>
<p>The angle of the waggle run to the vertical gives the direction of the food, and its length
gives the distance. There are two dances:</p>
<ul><li>Round dance: food nearby</li><li>Waggle dance: food far away</li></ul>
<p>Researchers still argue about how much the other bees use the information in the dance when
they go out foraging.</p></div>
<footer>Copyright 2023 The Insect Blog</footer></body></html>"""


def test_html_title_without_og_title_is_the_h1_and_a_list_joins_its_colon(tmp_path) -> None:
    article, warnings = read_one(in_folder(tmp_path, "bees.htm", PAGE, "nature"), tmp_path)
    assert warnings == []
    assert (article.title, article.section) == ("Why bees dance", "nature")
    assert article.published is None  # no date from the footer's copyright year
    texts = [b.text for b in article.blocks]
    assert texts[2].endswith(
        "There are two dances:\n- Round dance: food nearby\n- Waggle dance: food far away"
    )
    assert "Why bees dance" not in texts  # the h1 is the title, not a block


@pytest.mark.parametrize(
    "page",
    [b"", b"<html><body></body></html>", b"<html><head><title>x</title></head></html>"],
)
def test_a_page_without_article_text_is_skipped_with_one_warning(tmp_path, page) -> None:
    articles, warnings = read_all(in_folder(tmp_path, "empty.html", page), tmp_path)
    assert articles == []
    assert warnings == ["empty.html: skipped, no article text found in the page"]


# Markdown


@pytest.fixture(scope="module")
def markdown_article() -> Article:
    return read_one(FIXTURES / MARKDOWN, FIXTURES)[0]


def test_markdown_front_matter_is_metadata_never_text(markdown_article: Article) -> None:
    article = markdown_article
    assert article.title == "Winter care for a small vegetable garden"
    assert (article.published, article.author) == ("2024-11-20", "Sam Ortiz")
    assert (article.url, article.section) == (
        "https://notes.example.org/winter-garden",
        "gardening",
    )
    assert article.tags == ("garden", "winter")
    text = shown_text(article)
    for front_matter in ["---", "title:", "tags", "Sam Ortiz"]:
        assert front_matter not in text
    assert article.blocks[0].text.startswith("Most vegetable beds")  # the # title is no block


def test_markdown_headings_lists_and_inline_markup(markdown_article: Article) -> None:
    blocks = markdown_article.blocks
    assert [(b.role, b.text[:20]) for b in blocks] == [
        ("paragraph", "Most vegetable beds "),
        ("heading", "Protecting the soil"),
        ("paragraph", "Bare soil washes awa"),
        ("paragraph", "Before the first fro"),
        ("heading", "Crops that stay in t"),
        ("paragraph", "Leeks, parsnips and "),
        ("paragraph", "1. Lift carrots befo"),
    ]
    assert blocks[3].text == (
        "Before the first frost, gather what you need:\n- a bag of garden compost or leaf mould\n"
        "- a roll of horticultural fleece\n- canes and string for the fleece"
    )
    assert "good health" in blocks[0].text and "**" not in blocks[0].text
    assert "such as winter rye." in blocks[2].text  # a link's text, not its address
    text = shown_text(markdown_article)
    assert all(text[b.start : b.end] == b.text for b in blocks)
    chunks = chunk_article(markdown_article)
    assert [c.heading for c in chunks] == ["", "Protecting the soil", "Protecting the soil",
        "Crops that stay in the ground", "Crops that stay in the ground"]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "title"),
    [
        ("# First heading\n\nSome body text that is long enough.\n", "First heading"),
        ("Some body text without any heading at all.\n\n## Later\n\nMore text.\n", "note"),
        ("---\ntags: [a]\n---\n\n## Sub heading\n\nBody text here.\n", "note"),
    ],
)
def test_markdown_title_falls_back_to_first_h1_then_file_name(tmp_path, content, title) -> None:
    article, warnings = read_one(in_folder(tmp_path, "note.md", content), tmp_path)
    assert (article.title, warnings) == (title, [])
    assert title not in [b.text for b in article.blocks]


def test_markdown_bad_front_matter_and_bad_date_are_warnings(tmp_path: Path) -> None:
    bad_yaml = in_folder(tmp_path, "a.markdown", "---\ntitle: [unclosed\n---\n\nThe body.\n")
    article, warnings = read_one(bad_yaml, tmp_path)
    assert [b.text for b in article.blocks] == ["The body."]
    assert len(warnings) == 1
    assert warnings[0].startswith("a.markdown: front matter left out, not valid YAML (")
    bad_date = in_folder(tmp_path, "b.md", "---\ndate: next Tuesday\n---\n\nBody text.\n")
    article, warnings = read_one(bad_date, tmp_path)
    assert article.published is None
    assert warnings == [
        "b.md: published date 'next Tuesday' not understood, left empty: use YYYY-MM-DD"
    ]


def test_markdown_with_only_front_matter_is_skipped(tmp_path: Path) -> None:
    articles, warnings = read_all(in_folder(tmp_path, "c.md", "---\ntitle: T\n---\n"), tmp_path)
    assert (articles, warnings) == ([], ["c.md: skipped, no text in the file (front matter aside)"])


# JSONL


def test_jsonl_reads_each_line_and_skips_the_bad_one() -> None:
    articles, warnings = read_all(FIXTURES / JSONL, FIXTURES)
    assert warnings == ["export.jsonl:3: skipped, not valid JSON (Unterminated string starting at)"]
    assert [a.id for a in articles] == ["export.jsonl#cms-101", "export.jsonl#2",
                                        "export.jsonl#cms-104"]  # fmt: skip
    first = articles[0]
    assert first.title == "Night buses return to the city centre"
    assert (first.published, first.author, first.section) == ("2024-02-12", "Priya Shah",
                                                              "transport")  # fmt: skip
    assert first.url == "https://cms.example.org/transport/night-buses"
    assert first.path == FIXTURES / JSONL
    assert len(first.blocks) == 2
    assert (articles[1].section, articles[1].author, articles[1].url) == ("", "", "")
    assert articles[1].tags == ()


@pytest.mark.parametrize(
    ("tags", "expected"),
    [('["oil", " energy  prices ", "oil"]', ("oil", "energy prices")),
     ('"oil, energy prices,,"', ("oil", "energy prices")), ("null", ())],
)  # fmt: skip
def test_jsonl_tags_are_a_list_or_text_with_commas(tmp_path: Path, tags: str, expected) -> None:
    line = f'{{"text": "Oil prices rose again this week.", "tags": {tags}}}\n'
    articles, warnings = read_all(in_folder(tmp_path, "tagged.jsonl", line), tmp_path)
    assert warnings == [] and articles[0].tags == expected


def test_markdown_keywords_are_tags_when_there_are_no_tags(tmp_path: Path) -> None:
    text = "---\nkeywords: rates, inflation\n---\n\nThe bank held its rates for a third month.\n"
    path = in_folder(tmp_path, "note.md", text)
    assert read_one(path, tmp_path)[0].tags == ("rates", "inflation")


def test_jsonl_bad_lines_name_file_and_line(tmp_path: Path) -> None:
    lines = [
        '{"id": "a", "text": "First article body."}',
        "",
        "[1, 2]",
        '{"title": "No text"}',
        '{"id": "a", "text": "Same id again."}',
        '{"text": "Title is a number.", "title": 7}',
        "not json",
        '{"id": true, "text": "A boolean id."}',
        '{"text": "   "}',
        '{"text": "Last one, with a line number id."}',
        '{"text": "Tags that are numbers.", "tags": [1, 2]}',
    ]
    path = in_folder(tmp_path, "export.jsonl", "\n".join(lines) + "\n", "cms")
    articles, warnings = read_all(path, tmp_path)
    assert [a.id for a in articles] == ["cms/export.jsonl#a", "cms/export.jsonl#10"]
    assert articles[0].section == "cms"  # the file's top folder
    assert warnings == [
        'cms/export.jsonl:3: skipped, not a JSON object (each line needs {"text": "..."})',
        'cms/export.jsonl:4: skipped, no "text" field (each line needs {"text": "..."})',
        "cms/export.jsonl:5: skipped, its id 'a' is that of line 1: give each article its own id",
        'cms/export.jsonl:6: skipped, "title" is not a string',
        "cms/export.jsonl:7: skipped, not valid JSON (Expecting value)",
        'cms/export.jsonl:8: skipped, "id" is not a string or a whole number',
        'cms/export.jsonl:9: skipped, "text" is empty',
        'cms/export.jsonl:11: skipped, "tags" is not a list of strings (or one string, commas '
        "between tags)",
    ]


def test_jsonl_limits_each_line_not_the_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("semsearch.index.readers.jsonl.MAX_ARTICLE_BYTES", 200)
    lines = [json.dumps({"text": f"Article number {n} is short."}) for n in range(20)]
    lines[3] = json.dumps({"text": "word " * 100})
    path = in_folder(tmp_path, "big.jsonl", "\n".join(lines))
    articles, warnings = read_all(path, tmp_path)
    assert len(articles) == 19  # the file is over 200 bytes; each other line is not
    assert warnings == ["big.jsonl:4: skipped, over the 0 MiB limit for one article: split it"]


def test_jsonl_binary_and_empty_files_are_skipped(tmp_path: Path) -> None:
    assert read_all(in_folder(tmp_path, "b.jsonl", b'{"text": "x"}\x00\x00'), tmp_path) == (
        [],
        ["b.jsonl: skipped, looks like a binary file (NUL bytes)"],
    )
    assert read_all(in_folder(tmp_path, "e.jsonl", "\n  \n"), tmp_path) == (
        [],
        ["e.jsonl: skipped, the file is empty"],
    )


# Formats, dates, the walk


def test_formats_by_extension_and_by_name() -> None:
    assert FORMATS == ("txt", "md", "html", "jsonl")
    names = ["a.txt", "a.md", "a.markdown", "a.html", "a.htm", "a.jsonl", "a.pdf", "README.TXT"]
    assert [format_of(Path(n)) for n in names] == [
        "txt", "md", "md", "html", "html", "jsonl", None, None]  # fmt: skip
    assert parse_formats("txt,md,html,jsonl") == FORMATS
    assert parse_formats(" HTML, markdown ,,txt") == ("txt", "md", "html")
    with pytest.raises(CorpusError) as error:
        parse_formats("txt,pdf")
    assert str(error.value) == "unknown format 'pdf' in --formats: use txt, md, html, jsonl"
    with pytest.raises(CorpusError, match="no format in --formats"):
        parse_formats(" , ")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-05", "2024-03-05"),
        ("2024-03-05T09:30:00Z", "2024-03-05"),
        ("2024-03-05T23:30:00-05:00", "2024-03-05"),
        ("2024-03-05 09:30", "2024-03-05"),
        ("2024-03-05T09:30:00.123+01:00", "2024-03-05"),
        ("", None),
        (None, None),
    ],
)
def test_dates_become_iso_dates(value, expected) -> None:
    warnings: list[str] = []
    assert iso_date(value, "x.md", warnings.append) == expected
    assert warnings == []


@pytest.mark.parametrize("value", ["5 March 2024", "2024-13-01", "2024-03-05Tnoon", "2024"])
def test_unparseable_dates_are_none_with_a_warning(value) -> None:
    warnings: list[str] = []
    assert iso_date(value, "x.md", warnings.append) is None
    assert warnings == [
        f"x.md: published date {value!r} not understood, left empty: use YYYY-MM-DD"
    ]


def mixed_folder(root: Path) -> Path:
    """The three fixtures, the seed article in a folder, a PDF and a Word file."""
    root.mkdir(parents=True, exist_ok=True)
    for name in (HTML, MARKDOWN, JSONL):
        shutil.copy(FIXTURES / name, root / name)
    (root / "world").mkdir()
    shutil.copy(SEED_FILE, root / "world" / SEED_FILE.name)
    (root / "scan.pdf").write_bytes(b"%PDF-1.4\n\x00\x01binary")
    (root / "world" / "draft.docx").write_bytes(b"PK\x03\x04")
    return root


def test_a_mixed_folder_is_read_and_the_rest_counted(tmp_path: Path) -> None:
    tally, warnings = CorpusTally(), []
    articles = list(read_corpus(mixed_folder(tmp_path / "m"), warnings.append, tally=tally))
    assert [a.id for a in articles] == ["export.jsonl#cms-101", "export.jsonl#2",
        "export.jsonl#cms-104", "garden-notes.md", "harbour.html",
        f"world/{SEED_FILE.name}"]  # fmt: skip
    assert articles[-1].section == "world"
    assert (dict(tally.files), dict(tally.articles)) == (
        {"jsonl": 1, "md": 1, "html": 1, "txt": 1},
        {"jsonl": 3, "md": 1, "html": 1, "txt": 1},
    )
    assert dict(tally.ignored) == {".pdf": 1, ".docx": 1}
    assert tally.ignored_files == ["scan.pdf (not an article format)",
                                   "world/draft.docx (not an article format)"]  # fmt: skip
    assert warnings == ["export.jsonl:3: skipped, not valid JSON (Unterminated string starting at)"]
    only = CorpusTally()
    ids = [a.id for a in read_corpus(tmp_path / "m", warnings.append, formats=("md",), tally=only)]
    assert ids == ["garden-notes.md"]
    assert dict(only.ignored) == {".pdf": 1, ".docx": 1, ".jsonl": 1, ".html": 1, ".txt": 1}
    assert "harbour.html (html, not in --formats md)" in only.ignored_files


@pytest.mark.parametrize("name", ["a.md", "a.html", "a.jsonl", "a.txt"])
def test_every_format_is_read_safely(tmp_path: Path, name: str, monkeypatch) -> None:
    seeds, outside = tmp_path / "seeds", tmp_path / "outside"
    seeds.mkdir()
    outside.mkdir()
    (outside / name).write_text('{"text": "Outside."}\n')
    (seeds / name).symlink_to(outside / name)
    os.mkfifo(seeds / f"fifo{Path(name).suffix}")
    (seeds / f"nul{Path(name).suffix}").write_bytes(b"Title\n\n\x00\x00")
    monkeypatch.setattr("semsearch.index.readers.files.MAX_ARTICLE_BYTES", 16)
    (seeds / f"big{Path(name).suffix}").write_text('{"text": "A body over eight bytes."}\n')
    warnings: list[str] = []
    articles = list(read_corpus(seeds, warnings.append))
    suffix = Path(name).suffix
    expected = [
        f"a{suffix}: skipped, a symlink to a file outside the seeds folder "
        "(use --follow-symlinks to index it)",
        f"fifo{suffix}: skipped, not a regular file",
        f"nul{suffix}: skipped, looks like a binary file (NUL bytes)",
    ]
    if suffix != ".jsonl":  # a JSONL file's limit is on each line
        expected.insert(1, f"big{suffix}: skipped, 0.0 MiB is over the 0 MiB limit for one "
                        "article: split it into several files")  # fmt: skip
    assert sorted(warnings) == sorted(expected)
    assert len(articles) == (1 if suffix == ".jsonl" else 0)


def test_read_article_still_reads_one_txt_file() -> None:
    article = read_article(SEED_FILE, SEED_FILE.parent, lambda _: None)
    assert article is not None and article.section == "" and article.published is None
    assert all(b.role == "" for b in article.blocks)


# Builds of a mixed folder


def test_a_mixed_folder_builds_and_reports_formats_and_ignored(tmp_path: Path) -> None:
    seeds = mixed_folder(tmp_path / "seeds")
    report = build_index(seeds, tmp_path / "ix", FakeEmbedder())
    assert report.articles == 6
    assert report.formats == {"txt": 1, "md": 1, "html": 1, "jsonl": 3}
    assert report.format_files == {"txt": 1, "md": 1, "html": 1, "jsonl": 1}
    assert report.ignored == {".docx": 1, ".pdf": 1}
    again = build_index(seeds, tmp_path / "ix", FakeEmbedder(), skip_unchanged=True)
    assert again.up_to_date and again.ignored == {".docx": 1, ".pdf": 1}


def test_editing_one_jsonl_line_embeds_only_that_article(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    lines = [
        json.dumps({"id": f"n{n}", "title": f"Story {n}",
                    "text": f"Paragraph one of story {n} tells what happened.\n\n"
                            f"Paragraph two of story {n} says what comes next."})
        for n in range(50)
    ]  # fmt: skip
    in_folder(seeds, "export.jsonl", "\n".join(lines))
    first = build_index(seeds, tmp_path / "ix", FakeEmbedder(), sentence_vectors=False)
    assert (first.articles, first.passages, first.embedded) == (50, 100, 100)
    lines[7] = lines[7].replace("says what comes next", "says what happens next")
    in_folder(seeds, "export.jsonl", "\n".join(lines))
    second = build_index(seeds, tmp_path / "ix", FakeEmbedder(), skip_unchanged=True,
                         sentence_vectors=False)  # fmt: skip
    assert not second.up_to_date
    assert (second.embedded, second.reused) == (1, 99)


def test_changed_metadata_is_a_change(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    in_folder(seeds, "a.md", "---\ndate: 2024-01-01\n---\n\n# T\n\nBody text of the note.\n")
    build_index(seeds, tmp_path / "ix", FakeEmbedder())
    in_folder(seeds, "a.md", "---\ndate: 2024-01-02\n---\n\n# T\n\nBody text of the note.\n")
    report = build_index(seeds, tmp_path / "ix", FakeEmbedder(), skip_unchanged=True)
    assert not report.up_to_date and report.embedded == 0


def test_a_folder_of_other_files_says_what_it_ignored(tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(b"%PDF")
    (tmp_path / "b.pdf").write_bytes(b"%PDF")
    (tmp_path / "c.docx").write_bytes(b"PK")
    with pytest.raises(CorpusError) as error:
        build_index(tmp_path, tmp_path / "ix", FakeEmbedder())
    assert str(error.value) == (
        f"no readable .txt article under {tmp_path} (nor .md, .html, .jsonl; ignored: 2 .pdf, "
        "1 .docx): add articles or pass --seeds DIR"
    )
    (tmp_path / "d.txt").write_text("Title\n\nBody.\n")
    with pytest.raises(CorpusError) as error:
        build_index(tmp_path, tmp_path / "ix", FakeEmbedder(), formats=("md",))
    assert str(error.value) == (
        f"no readable .md article under {tmp_path} (ignored: 2 .pdf, 1 .docx, 1 .txt): "
        "add articles, pass --seeds DIR or change --formats"
    )
