"""The `semsearch` CLI: readable and JSON output, info, errors as one line with exit code 2."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semsearch.search.cli import app

SEMSEARCH = str(Path(sys.executable).parent / "semsearch")
runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


@pytest.mark.model
def test_readable_search(real_index: Path) -> None:
    result = run("search", "casualties in Kharkiv", "-k", "2", "--index", str(real_index))
    assert result.exit_code == 0
    assert result.stdout.startswith("1. US-brokered Russia-Ukraine talks")
    assert "000_9d59a1cdc1672ff3.txt ¶12" in result.stdout
    assert "2. " in result.stdout


@pytest.mark.model
def test_json_search_has_api_fields(real_index: Path) -> None:
    result = run("search", "power outages", "--json", "-k", "3", "--mode", "dense",
                 env={"SEMSEARCH_INDEX_DIR": str(real_index)})  # fmt: skip
    document = json.loads(result.stdout)
    assert (document["query"], document["mode"], document["k"]) == ("power outages", "dense", 3)
    assert len(document["hits"]) == 3
    assert document["hits"][0]["dense_rank"] == 1
    assert {"snippet", "paragraph", "article_id", "lexical_score"} <= set(document["hits"][0])


def test_info(fake_index: Path) -> None:
    result = run("info", "--index", str(fake_index), "--json")
    facts = json.loads(result.stdout)
    assert (facts["articles"], facts["passages"], facts["model"]) == (1, 18, "fake-hash")
    assert facts["sentences"] == 20


@pytest.mark.model
def test_index_command_reports_and_reuses(copy_seeds: Path, tmp_path: Path) -> None:
    args = ["index", "--seeds", str(copy_seeds), "--index", str(tmp_path / "ix")]
    first, second, forced = run(*args), run(*args), run(*args, "--force")
    assert first.exit_code == 0, first.output
    assert f"Indexed {tmp_path / 'ix'}/gen-1" in first.stdout
    rows = [re.sub(r" {2,}", "|", line.strip()) for line in first.stdout.splitlines()]
    assert {"articles|1", "passages|18", "embedded now|18", "reused from cache|0"} <= set(rows)
    assert second.exit_code == 0, second.output
    assert f"Up to date: {tmp_path / 'ix'}/gen-1 was built from the same 1 article," in " ".join(
        second.stdout.split()
    )
    assert forced.exit_code == 0, forced.output
    assert f"Indexed {tmp_path / 'ix'}/gen-2" in forced.stdout
    rows = [re.sub(r" {2,}", "|", line.strip()) for line in forced.stdout.splitlines()]
    assert {"embedded now|0", "reused from cache|18"} <= set(rows)
    ix = tmp_path / "ix"
    # The next commands take the index folder; neither search nor serve has --seeds.
    assert (
        f'Next: semsearch search "your question" --index {ix}  or  semsearch serve --index {ix}'
        in (forced.stdout.splitlines())
    )
    seed = next(copy_seeds.glob("*.txt"))
    seed.write_text(seed.read_text().replace("wounded 27 people", "wounded 28 people"))
    edited = run(*args)
    assert f"Indexed {tmp_path / 'ix'}/gen-3" in edited.stdout


@pytest.mark.model
def test_index_summary_counts_formats_and_ignored_files(tmp_path: Path) -> None:
    seeds = tmp_path / "mixed"
    (seeds / "energy").mkdir(parents=True)
    fixtures = Path(__file__).resolve().parent.parent / "fixtures" / "articles"
    for name in ("export.jsonl", "garden-notes.md"):
        shutil.copy(fixtures / name, seeds / name)
    shutil.copy(fixtures / "harbour.html", seeds / "energy" / "harbour.html")
    (seeds / "notes.txt").write_text("Notes\n\nA plain text note about the harbour turbines.\n")
    (seeds / "scan.pdf").write_bytes(b"%PDF-1.4")
    args = ["index", "--seeds", str(seeds), "--index", str(tmp_path / "ix")]
    first = run(*args)
    assert first.exit_code == 0, first.output
    rows = [re.sub(r" {2,}", "|", line.strip()) for line in first.stdout.splitlines()]
    assert {
        "articles|6",
        "by format|1 txt, 1 md, 1 html, 3 jsonl (1 file)",
        "files skipped|0",
        "JSONL lines skipped|1",
        "files ignored|1 .pdf",
    } <= set(rows)
    assert "export.jsonl:3: skipped, not valid JSON" in first.stderr
    again = run(*args, "-v")
    assert again.exit_code == 0, again.output
    assert " ".join(again.stdout.split()).startswith(
        f"Up to date: {tmp_path / 'ix'}/gen-1 was built from the same 6 articles,"
    )
    assert "Ignored: 1 .pdf." in " ".join(again.stdout.split())
    assert "ignored: scan.pdf (not an article format)" in again.stdout.splitlines()
    found = run("search", "crab and lobster stocks", "-k", "1", "--index", str(tmp_path / "ix"))
    assert found.stdout.startswith("1. Harbour town bets on tidal power  energy/harbour.html ¶5")
    only_md = run(*args, "--formats", "md", "-v")
    assert only_md.exit_code == 0, only_md.output
    rows = [re.sub(r" {2,}", "|", line.strip()) for line in only_md.stdout.splitlines()]
    assert {
        "articles|1",
        "by format|1 md",
        "files ignored|1 .html, 1 .jsonl, 1 .pdf, 1 .txt",
    } <= set(rows)
    assert "ignored: energy/harbour.html (html, not in --formats md)" in only_md.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "power"], "no index at {tmp}: run `semsearch index --index {tmp}` first"),
        (["info"], "no index at {tmp}: run `semsearch index --index {tmp}` first"),
        (["search", "   "], "the query is empty"),
        (["search", "power", "-k", "0"], "k must be a whole number from 1 to 100"),
        (["search", "power", "--mode", "fuzzy"], "unknown mode 'fuzzy'"),
        (["index", "--seeds", "{tmp}/missing"], "articles folder {tmp}/missing does not exist"),
        (
            ["index", "--seeds", "{tmp}", "--formats", "txt,pdf"],
            "unknown format 'pdf' in --formats: use txt, md, html, jsonl",
        ),
    ],
)
def test_errors_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args] + ["--index", str(tmp_path)]
    done = subprocess.run([SEMSEARCH, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"semsearch: error: {message.replace('{tmp}', str(tmp_path))}")
    assert done.stdout == ""


def test_version() -> None:
    assert run("--version").stdout.startswith("semsearch ")


def test_no_index_names_the_exact_command(tmp_path: Path) -> None:
    env = {"SEMSEARCH_INDEX_DIR": str(tmp_path / "my index"), "SEMSEARCH_SEEDS_DIR": "articles"}
    result = runner.invoke(app, ["search", "power"], env=env)
    assert result.exit_code == 2
    expected = f"run `semsearch index --index '{tmp_path}/my index' --seeds articles` first"
    assert expected in result.stderr


@pytest.mark.model
def test_jsonl_prints_one_hit_a_line(real_index: Path) -> None:
    result = run("search", "power outages", "--jsonl", "-k", "3", "--index", str(real_index))
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert [hit["rank"] for hit in hits] == [1, 2, 3]
    assert hits[0]["article_id"] == "000_9d59a1cdc1672ff3.txt"


@pytest.mark.model
def test_quiet_and_verbose_search(real_index: Path) -> None:
    args = ["search", "power outages", "-k", "2", "--index", str(real_index)]
    quiet = run(*args, "-q").stdout.splitlines()
    assert [line.split("\t")[0] for line in quiet] == ["1", "2"]
    assert re.fullmatch(r"1\t\d+\.\d{4}\t000_9d59a1cdc1672ff3\.txt ¶\d+", quiet[0])
    verbose = run(*args, "--mode", "hybrid", "-v").stdout
    assert "dense #1 (" in verbose and "lexical #1 (" in verbose
    assert re.search(
        r"2 hits in [\d.]+ ms \(embed [\d.]+ ms, dense [\d.]+ ms, lexical .*fuse [\d.]+ ms\)",
        verbose,
    )


def test_completion_is_offered() -> None:
    assert "--install-completion" in run("--help").stdout


def test_a_deprecated_setting_warns_in_one_line(fake_index: Path) -> None:
    done = subprocess.run(
        [SEMSEARCH, "info", "--index", str(fake_index)],
        env={**os.environ, "SEMSEARCH_BACKEND": "faiss"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    warning = "semsearch: warning: SEMSEARCH_BACKEND is deprecated and will be removed: "
    assert f"{warning}set SEMSEARCH_STORE instead" in done.stderr.splitlines()
    assert "FutureWarning" not in done.stderr  # no library source line either


@pytest.fixture
def linked_seeds(copy_seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of seeds/ with `linked.txt`, a symlink to an article outside it; `semsearch index`
    embeds with the fake embedder."""
    from semsearch.search import indexing
    from tests.conftest import FakeEmbedder

    outside = tmp_path / "outside.txt"
    outside.write_text("Outside report\n\nThe linked text talks about power.\n", encoding="utf-8")
    (copy_seeds / "linked.txt").symlink_to(outside)
    monkeypatch.setattr(indexing, "_loaded_embedder", lambda settings, feedback: FakeEmbedder())
    return copy_seeds


def indexed_articles(stdout: str) -> int:
    rows = dict(re.sub(r" {2,}", "|", line.strip()).split("|", 1) for line in stdout.splitlines()
                if re.match(r"\s*articles {2,}\d+$", line))  # fmt: skip
    return int(rows["articles"])


def test_index_skips_a_symlink_out_of_the_seeds_unless_told(
    linked_seeds: Path, tmp_path: Path
) -> None:
    args = ["index", "--seeds", str(linked_seeds), "--index", str(tmp_path / "ix")]
    skipped = run(*args)
    assert skipped.exit_code == 0, skipped.output
    assert indexed_articles(skipped.stdout) == 1
    assert skipped.stderr == (
        "warning: linked.txt: skipped, a symlink to a file outside the seeds folder "
        "(use --follow-symlinks to index it)\n"
    )
    followed = run(*args, "--follow-symlinks")
    assert followed.exit_code == 0, followed.output
    assert indexed_articles(followed.stdout) == 2 and followed.stderr == ""


def test_follow_symlinks_is_also_a_setting(linked_seeds: Path, tmp_path: Path) -> None:
    args = ["index", "--seeds", str(linked_seeds), "--index", str(tmp_path / "ix")]
    followed = run(*args, env={"SEMSEARCH_FOLLOW_SYMLINKS": "true"})
    assert followed.exit_code == 0, followed.output
    assert indexed_articles(followed.stdout) == 2 and followed.stderr == ""


@pytest.mark.parametrize("current", ["gen-2.bak", "garbage\x00\x1b[31m", "gen-9"])
@pytest.mark.parametrize("command", [["info"], ["search", "power"]])
def test_a_malformed_current_is_one_line_naming_the_fix(
    fake_index: Path, current: str, command: list[str]
) -> None:
    (fake_index / "CURRENT").write_text(current + "\n", encoding="utf-8")
    done = subprocess.run([SEMSEARCH, *command, "--index", str(fake_index)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "\x1b" not in done.stderr
    assert done.stderr.startswith(f"semsearch: error: {fake_index / 'CURRENT'} names {current!r}")
    assert done.stderr.endswith(
        ": write gen-1 (the newest generation) into it, or run `semsearch index`\n"
    )


def test_a_bad_formats_setting_fails_before_the_model_loads(tmp_path: Path) -> None:
    env = {"SEMSEARCH_FORMATS": "md,docx", "SEMSEARCH_MODEL": str(tmp_path / "no-such-model")}
    args = ["index", "--seeds", str(tmp_path), "--index", str(tmp_path / "ix")]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 2
    assert result.stderr == (
        "semsearch: error: unknown format 'docx' in --formats: use txt, md, html, jsonl\n"
    )
