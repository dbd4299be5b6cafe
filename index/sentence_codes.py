"""Sentence vectors stored as one byte a dimension: 8-bit scalar quantisation, FAISS's SQ8.

Each dimension's range over a generation's sentences (lowest to highest value) is cut into 255
equal steps and a value stored as the number of its step. A sentence takes 384 bytes instead of
768 as float16 (1,536 as float32): at about 3.4 sentences a passage, a million-passage archive's
are 1.3 GB instead of 2.6. A value moves by at most half a step (a range of about 0.4 makes that
0.0008), and an inner product with a unit query by about 5e-4: enough to lift a passage toward
its best sentence and to pick its answer sentence.

Scoring a query against coded rows needs no decoding of the rows into vectors: with each
dimension's lowest value `lo` and step `step`, `v = lo + code * step`, so
`v . q = codes . (q * step) + lo . q`.

FAISS's `ScalarQuantizer` (QT_8bit, min-max ranges) codes the same way, but it is trained on the
whole matrix as float32 (5.2 GB for a million passages' sentences, which the build keeps as
float16) and scored from Python by decoding rows first; the ranges here are taken block by block.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["CODE_DTYPE", "products", "write_codes"]

CODE_DTYPE = np.dtype(np.uint8)
# Rows coded at a time: a block's float32 copy (100 MB at 384 dimensions) is the extra memory.
_BLOCK = 65_536


def write_codes(vectors: np.ndarray, codes_path: Path, ranges_path: Path) -> None:
    """Save `vectors` (rows of float16 or float32) as codes to `codes_path` (an .npy of uint8,
    written block by block, never whole in memory) and each dimension's lowest value and step to
    `ranges_path` (an .npy of float32, shape (2, dimension))."""
    rows, dimension = vectors.shape
    lowest = np.full(dimension, np.inf, dtype=np.float32)
    highest = np.full(dimension, -np.inf, dtype=np.float32)
    for start in range(0, rows, _BLOCK):
        block = vectors[start : start + _BLOCK]
        np.minimum(lowest, block.min(axis=0), out=lowest)
        np.maximum(highest, block.max(axis=0), out=highest)
    if not rows:
        lowest[:] = highest[:] = 0.0
    step = (highest - lowest) / 255.0
    step[step <= 0] = 1.0  # a dimension with one value: every code is 0
    codes = np.lib.format.open_memmap(
        codes_path, mode="w+", dtype=CODE_DTYPE, shape=(rows, dimension)
    )
    for start in range(0, rows, _BLOCK):
        block = (vectors[start : start + _BLOCK].astype(np.float32) - lowest) / step
        codes[start : start + _BLOCK] = np.clip(np.rint(block), 0, 255)
    codes.flush()
    del codes
    np.save(ranges_path, np.stack([lowest, step]).astype(np.float32))


def products(codes: np.ndarray, query: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """The inner product of `query` (float32) with each coded row (float32, a value a row)."""
    lowest, step = ranges[0], ranges[1]
    return codes.astype(np.float32) @ (query * step) + np.float32(lowest @ query)
