"""The on-disk format of one FAISS generation: its file names and the SQLite schema of its records.

    <index dir>/gen-<n>/manifest.json         model, format version, counts, files' sha256
    <index dir>/gen-<n>/store.sqlite          articles, chunks (passages), and their FTS5 tables
    <index dir>/gen-<n>/vectors.faiss         the FAISS index searched (ids = chunk ids)
    <index dir>/gen-<n>/vectors.npy           the passages' vectors as float16, row = chunk id
    <index dir>/gen-<n>/sentences.npy         each passage's sentences' vectors, 8-bit codes
    <index dir>/gen-<n>/sentence_ranges.npy   the codes' lowest value and step per dimension
    <index dir>/gen-<n>/sentence_offsets.npy  passage i's sentence rows: offsets[i] to offsets[i+1]

Folders and CURRENT: `index.generations`; the FTS5 tables: `index.lexical`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FILES",
    "MANIFEST",
    "OPTIONAL_FILES",
    "RECORDS_SCHEMA",
    "SENTENCES_NPY",
    "SENTENCE_OFFSETS_NPY",
    "SENTENCE_RANGES_NPY",
    "STORE",
    "VECTORS",
    "VECTORS_NPY",
    "VECTORS_NPY_DTYPE",
]

MANIFEST = "manifest.json"
STORE = "store.sqlite"
VECTORS = "vectors.faiss"
# The passages' vectors, so that a new FAISS index never needs re-embedding: float16 (float32 in
# generations written before), read as float32. Rounding moves a cosine by about 1e-4.
VECTORS_NPY = "vectors.npy"
VECTORS_NPY_DTYPE = np.dtype(np.float16)
# The vectors of each passage's sentences, passage by passage: 8-bit codes (`index.sentence_codes`)
# with their ranges beside them; float16 or float32 in generations written before.
SENTENCES_NPY = "sentences.npy"
SENTENCE_RANGES_NPY = "sentence_ranges.npy"
SENTENCE_OFFSETS_NPY = "sentence_offsets.npy"  # passage i's rows: offsets[i] to offsets[i + 1]
# Every file a generation may hold, in the order the manifest lists their checksums.
FILES = (STORE, VECTORS, VECTORS_NPY, SENTENCES_NPY, SENTENCE_RANGES_NPY, SENTENCE_OFFSETS_NPY)
# Those a generation may lack: built without sentence vectors, or written before ranges.
OPTIONAL_FILES = (SENTENCES_NPY, SENTENCE_RANGES_NPY, SENTENCE_OFFSETS_NPY)

RECORDS_SCHEMA = """
CREATE TABLE articles (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    encoding TEXT NOT NULL,
    section TEXT NOT NULL DEFAULT '',  -- format 5 on, as the four below
    published TEXT,  -- an ISO date (YYYY-MM-DD), NULL when unknown
    author TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT ''  -- format 6 on: one a line
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,
    article_id TEXT NOT NULL REFERENCES articles(id),
    paragraph INTEGER NOT NULL,
    part INTEGER NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    embed_hash TEXT NOT NULL,
    dup_group INTEGER NOT NULL  -- smallest chunk id among its near-duplicates (its own id if none)
);
CREATE INDEX chunks_by_article ON chunks(article_id, paragraph, part);
CREATE INDEX chunks_by_group ON chunks(dup_group);
CREATE INDEX articles_by_section ON articles(section);
CREATE INDEX articles_by_date ON articles(published);
"""
