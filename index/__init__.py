"""Indexing: read articles, chunk them into paragraphs, embed them and store them on disk."""

import os


def _openblas_kernels() -> None:
    """Name the CPU's kernels for the OpenBLAS bundled with faiss-cpu, before faiss loads it.

    That OpenBLAS (0.3.15) does not recognise recent Intel Xeons and falls back to its generic
    Prescott kernels: FAISS's k-means (IVF training) and batched exact search then run several
    times slower (IVF over 100,000 vectors: 27 s instead of 4.7 s on a 2-core Xeon with
    AVX-512). The kernels follow the CPU's own feature flags; a user's OPENBLAS_CORETYPE wins.
    Runs here, in the package, before any module of it imports faiss.
    """
    if "OPENBLAS_CORETYPE" in os.environ:
        return
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            lines = [line for line in cpuinfo if line.startswith("flags")]
        flags = set(lines[0].split(":", 1)[1].split()) if lines else set()
    except OSError:  # not Linux: OpenBLAS detects the CPU itself
        return
    if {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        os.environ["OPENBLAS_CORETYPE"] = "SKYLAKEX"
    elif {"avx2", "fma"} <= flags:
        os.environ["OPENBLAS_CORETYPE"] = "HASWELL"


_openblas_kernels()
