"""File locks on an index folder: one build at a time, and generations pinned while open.

Both are `flock(2)` locks, so the kernel drops them when their holder exits, even on kill -9:
a crashed build never leaves a stale lock behind.

- `BuildLock`: exclusive lock on `<index dir>/.build.lock`, taken by every build (the CLI's
  `semsearch index` and the server's `POST /admin/reindex`); a second build fails at once with
  `BuildRunning`.
- `GenerationLease`: shared lock on a generation's folder, held by every open FAISS generation.
  `remove_old_generations` takes the exclusive lock before deleting a folder and skips folders
  it cannot lock, so a generation still serving requests (in this process or another) is never
  deleted under them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from semsearch.index.errors import BuildRunning, IndexCorrupt

__all__ = ["BUILD_LOCK", "BuildLock", "GenerationLease", "claim_for_removal"]

BUILD_LOCK = ".build.lock"


class BuildLock:
    """The exclusive build lock of one index folder; use `with BuildLock(dir):` or acquire()."""

    def __init__(self, index_dir: Path):
        self.index_dir = index_dir
        self.path = index_dir / BUILD_LOCK
        self._fd: int | None = None

    def acquire(self) -> BuildLock:
        """Take the lock now or raise BuildRunning; never waits."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise BuildRunning(
                f"a build of {self.index_dir} is already running (pid {holder}): "
                "wait for it to finish, then try again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Let the next build run (closing the file drops the lock; the file stays)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> BuildLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class GenerationLease:
    """A shared lock on a generation folder: while held, no cleanup deletes the folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as error:
            raise IndexCorrupt(
                f"index generation {folder} is missing ({error.strerror}): "
                "rebuild the index with `semsearch index`"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise IndexCorrupt(f"index generation {folder} is being removed") from None
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def claim_for_removal(folder: Path) -> Iterator[bool]:
    """Yield True while holding the folder exclusively (no one has it open), else False."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
