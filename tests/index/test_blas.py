"""FAISS's bundled OpenBLAS is told the CPU's kernels when it cannot tell them itself."""

from __future__ import annotations

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


def test_kernels_follow_the_cpu_flags_and_a_users_choice_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    index._openblas_kernels()
    flags = _flags()
    expected = None
    if {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        expected = "SKYLAKEX"
    elif {"avx2", "fma"} <= flags:
        expected = "HASWELL"
    assert os.environ.get("OPENBLAS_CORETYPE") == expected

    monkeypatch.setenv("OPENBLAS_CORETYPE", "ZEN")
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
