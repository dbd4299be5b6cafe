"""FAISS's bundled OpenBLAS is told the CPU's kernels when it cannot tell them itself."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from semsearch import index


def _flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return set()
    lines = [line for line in text.splitlines() if line.startswith("flags")]
    return set(lines[0].split(":", 1)[1].split()) if lines else set()


AVX512 = "avx512f avx512cd avx512bw avx512dq avx512vl"


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        (f"processor\t: 0\nflags\t\t: fpu sse2 avx2 fma {AVX512}\n", "SKYLAKEX"),
        # one of the five AVX-512 flags missing: the AVX2 kernels
        ("flags\t\t: fpu avx2 fma avx512f avx512cd avx512bw avx512dq\n", "HASWELL"),
        ("flags\t\t: fpu sse2 avx avx2 fma\n", "HASWELL"),
        ("flags\t\t: fpu sse2 avx avx2\n", None),  # no FMA: OpenBLAS decides
        ("processor\t: 0\nmodel name\t: some ARM core\n", None),  # no flags line
        # only the first processor's flags are read
        ("flags\t\t: fpu avx2 fma\nflags\t\t: fpu " + AVX512 + "\n", "HASWELL"),
        (OSError, None),  # no /proc/cpuinfo (not Linux)
    ],
)
def test_kernels_follow_the_cpu_flags(
    monkeypatch: pytest.MonkeyPatch, cpuinfo: str | type[OSError], expected: str | None
) -> None:
    def fake_open(path: str, *args: object, **kwargs: object) -> io.StringIO:
        assert path == "/proc/cpuinfo"
        if cpuinfo is OSError:
            raise OSError("no such file")
        return io.StringIO(str(cpuinfo))

    monkeypatch.setenv("OPENBLAS_CORETYPE", "placeholder")  # restored after the test
    del os.environ["OPENBLAS_CORETYPE"]
    monkeypatch.setattr(index, "open", fake_open, raising=False)  # shadows the builtin there
    index._openblas_kernels()
    assert os.environ.get("OPENBLAS_CORETYPE") == expected


def test_a_users_choice_of_kernels_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("/proc/cpuinfo read although the user chose")

    monkeypatch.setenv("OPENBLAS_CORETYPE", "ZEN")
    monkeypatch.setattr(index, "open", no_read, raising=False)
    index._openblas_kernels()
    assert os.environ["OPENBLAS_CORETYPE"] == "ZEN"


def test_faiss_openblas_does_not_run_generic_kernels() -> None:
    """In a fresh process importing the store, faiss's OpenBLAS reports the chosen kernels."""
    import faiss

    libs = Path(faiss.__file__).resolve().parent.parent / "faiss_cpu.libs"
    found = sorted(libs.glob("libopenblas*.so*")) if libs.is_dir() else []
    if not found or not {"avx2", "fma"} <= _flags():
        pytest.skip("faiss-cpu without a bundled OpenBLAS, or a CPU without AVX2")
    probe = (
        "import ctypes, semsearch.index.vectors; "
        f"lib = ctypes.CDLL({str(found[0])!r}); "
        "lib.openblas_get_corename.restype = ctypes.c_char_p; "
        "print(lib.openblas_get_corename().decode())"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    core = done.stdout.strip().lower()
    assert core and core != "prescott", core
