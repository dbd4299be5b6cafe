"""Generations of a FAISS index folder: naming, CURRENT, publishing, keep-N, and the next name.

The one place for how generations are named and kept (the Milvus store names its collections
after the same numbers):

    <index dir>/CURRENT        the live generation's name, replaced atomically
    <index dir>/gen-<n>/       one published generation (see `index.faiss_layout`)
    <index dir>/.tmp-gen-<n>/  a generation being written; removed when the next build starts

A build writes a whole generation into a temporary folder, fsyncs it, renames it into place and
only then points CURRENT at it: readers see the old generation or the new one, never half.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from semsearch.index.errors import IndexCorrupt
from semsearch.index.lock import claim_for_removal

__all__ = [
    "CURRENT",
    "KEEP_GENERATIONS",
    "check_current",
    "fsync_dir",
    "fsync_file",
    "generation_name",
    "generation_names",
    "generation_number",
    "is_generation_name",
    "live_generation",
    "new_generation_dir",
    "publish_generation",
    "remove_old_generations",
    "sha256_of",
    "write_json",
]

CURRENT = "CURRENT"
# Generations kept after a build: the live one and the one before (a fallback while the new
# one is checked, and for requests still running on it).
KEEP_GENERATIONS = 2
_GENERATION = re.compile(r"gen-(\d+)")
_TMP_PREFIX = ".tmp-"
# CURRENT holds one short name; more than this is garbage, and is not read whole.
_CURRENT_MAX_BYTES = 4096


def generation_name(number: int) -> str:
    """The name of generation `number`: "gen-3"."""
    return f"gen-{number}"


def generation_number(name: str) -> int:
    """The number of a generation name ("gen-3" -> 3).

    Raises:
        IndexCorrupt: `name` is not a generation name.
    """
    match = _GENERATION.fullmatch(name)
    if match is None:
        raise IndexCorrupt(f"{name!r} is not a generation name such as gen-3")
    return int(match.group(1))


def is_generation_name(name: str) -> bool:
    return _GENERATION.fullmatch(name) is not None


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can fsync a folder
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write `data` as JSON through a temporary file, fsynced, then renamed over `path`."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    fsync_file(tmp)
    os.replace(tmp, path)


def _generations(index_dir: Path) -> list[tuple[int, Path]]:
    if not index_dir.is_dir():
        return []
    found = []
    for child in index_dir.iterdir():
        match = _GENERATION.fullmatch(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def generation_names(index_dir: Path) -> list[str]:
    """The published generation folders of `index_dir`, oldest first."""
    return [folder.name for _, folder in _generations(index_dir)]


def new_generation_dir(index_dir: Path) -> tuple[str, Path]:
    """Reserve the next generation name and a temporary folder to build it in.

    Half-written folders left by an interrupted build are removed first.

    Raises:
        IndexCorrupt: CURRENT is there but is no file (it could never be replaced).
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    current = index_dir / CURRENT
    if (current.exists() or current.is_symlink()) and not current.is_file():
        raise IndexCorrupt(f"{current} is not a file: remove it, then build again")
    for child in index_dir.iterdir():
        if child.name.startswith(_TMP_PREFIX) and child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
    generations = _generations(index_dir)
    name = generation_name(generations[-1][0] + 1 if generations else 1)
    tmp = index_dir / f"{_TMP_PREFIX}{name}"
    tmp.mkdir()
    return name, tmp


def publish_generation(index_dir: Path, name: str, tmp_folder: Path) -> Path:
    """Move a finished generation into place, then point CURRENT at it atomically."""
    final = index_dir / name
    os.replace(tmp_folder, final)
    fsync_dir(index_dir)
    pointer = index_dir / (CURRENT + ".tmp")
    pointer.write_text(name + "\n", encoding="utf-8")
    fsync_file(pointer)
    os.replace(pointer, index_dir / CURRENT)
    fsync_dir(index_dir)
    return final


def remove_old_generations(index_dir: Path, keep: int = KEEP_GENERATIONS) -> list[str]:
    """Delete all but the newest `keep` generations, never the live one. Returns removed names.

    A generation that an open store still holds (in any process) is left for a later call.
    """
    live = live_generation(index_dir)
    removed = []
    for _, folder in _generations(index_dir)[:-keep]:
        if folder.name == live:
            continue
        with claim_for_removal(folder) as unused:
            if unused:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
    return removed


def live_generation(index_dir: Path) -> str | None:
    """The generation CURRENT names, or None when nothing is published.

    What CURRENT holds is returned as it is, even when it names no generation (bytes that are
    not UTF-8 read as U+FFFD): `check_current` says what is wrong with it.

    Raises:
        IndexCorrupt: CURRENT is there but cannot be read (a folder, no permission).
    """
    try:
        with open(index_dir / CURRENT, "rb") as handle:
            data = handle.read(_CURRENT_MAX_BYTES)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise IndexCorrupt(
            f"cannot read {index_dir / CURRENT} ({error.strerror}): make it a readable file "
            "holding the live generation's name, such as gen-3"
        ) from None
    return data.decode("utf-8", "replace").strip() or None


def check_current(index_dir: Path, name: str) -> None:
    """Raise IndexCorrupt, saying how to mend it, when CURRENT holds `name` and `name` is no
    published generation of `index_dir` (garbage, "gen-2.bak", a generation removed by hand).

    A `name` that CURRENT does not hold (a generation asked for by name) is left to its opener.
    """
    names = generation_names(index_dir)
    if name in names or name != live_generation(index_dir):
        return
    shown = repr(name) if len(name) <= 40 else repr(name[:40]) + "..."
    what = "which does not exist" if is_generation_name(name) else "not a generation such as gen-3"
    fix = "run `semsearch index`"
    if names:
        fix = f"write {names[-1]} (the newest generation) into it, or {fix}"
    raise IndexCorrupt(f"{index_dir / CURRENT} names {shown}, {what}: {fix}")
