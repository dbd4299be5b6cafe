"""Reading an opened Milvus generation's passages back: rows, near-duplicate groups, articles.

A page of hits needs its passages' rows, and their near-duplicate groups' other passages: one
`query` brings both (`chunks`). What the searches said of their hits (`index.milvus_keys`)
saves the look-ups of groups and articles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from semsearch.index.milvus_client import METADATA_FIELDS, QUERY_BATCH, TAGS_FIELD, call, literal
from semsearch.index.milvus_keys import PassageKeys
from semsearch.index.records import ArticleRecord, ChunkRecord, split_tags

__all__ = ["MilvusRows"]

# The collection's fields a ChunkRecord is made of, in its order (they share their names);
# a collection older than format 5 has no metadata fields, one older than 6 no tags.
_ID_FIELDS = [field.name for field in dataclasses.fields(ChunkRecord)]
_WITHOUT_TAGS = [name for name in _ID_FIELDS if name != TAGS_FIELD]
_BASE_FIELDS = [name for name in _WITHOUT_TAGS if name not in METADATA_FIELDS]


def _record(row: dict[str, Any], fields: list[str]) -> ChunkRecord:
    values = {field: row[field] for field in fields}
    if values.get("published") == "":  # stored as "" when the article has no date
        values["published"] = None
    if TAGS_FIELD in values:
        values[TAGS_FIELD] = split_tags(values[TAGS_FIELD])
    return ChunkRecord(**values)


class MilvusRows:
    """The passages of the collection `collection`, read for searches; safe to share between
    threads.

    Args:
        client: gives the generation's connected MilvusClient.
        collection: the generation's collection.
        format_version: the generation's index format (older collections lack some fields).
        keys: what the generation's searches said of their hits.
    """

    def __init__(
        self,
        client: Callable[[], Any],
        collection: str,
        format_version: int,
        keys: PassageKeys,
    ):
        self._client = client
        self._collection = collection
        self._keys = keys
        self._fields = (
            _ID_FIELDS
            if format_version >= 6
            else _WITHOUT_TAGS
            if format_version >= 5
            else _BASE_FIELDS
        )

    def rows(self, ids: Sequence[int], fields: list[str]) -> list[dict[str, Any]]:
        """These passages' `fields` (and id), in queries of at most `QUERY_BATCH`."""
        rows: list[dict[str, Any]] = []
        for offset in range(0, len(ids), QUERY_BATCH):
            batch = [int(i) for i in ids[offset : offset + QUERY_BATCH]]
            found = call(self._client().query, self._collection, ids=batch, output_fields=fields)
            rows.extend(found)
        return rows

    def chunks(self, ids: Iterable[int]) -> dict[int, ChunkRecord]:
        """The stored passages with these ids (unknown ids are left out), read in one query.

        Where a search said some of them share their near-duplicate group, the same query
        brings the groups' other passages, kept for `duplicates_of_many` (which a page of hits
        asks next): one round trip to a server, not two.
        """
        wanted = list(dict.fromkeys(int(i) for i in ids))
        shared = self._keys.unread_groups(wanted)
        if not shared or len(wanted) + len(shared) > QUERY_BATCH:
            rows = self.rows(wanted, self._fields)
        else:
            rows = call(
                self._client().query,
                self._collection,
                filter=f"id in {wanted} or dup_group in {shared}",
                output_fields=[*self._fields, "dup_group"],
            )
            self._keys.keep_members(rows, shared)
        asked = set(wanted)
        return {
            int(row["id"]): _record(row, self._fields) for row in rows if int(row["id"]) in asked
        }

    def passage_keys(self, ids: np.ndarray) -> tuple[dict[int, int], dict[int, str]]:
        """The near-duplicate group and article of each of `ids`: those the searches returned
        as they found them, the rest looked up in one query."""
        groups: dict[int, int] = {}
        articles: dict[int, str] = {}
        missing = []
        for chunk_id in np.asarray(ids).tolist():
            known = self._keys.get(chunk_id)
            if known is None:
                missing.append(chunk_id)
            else:
                groups[chunk_id], articles[chunk_id], _ = known
        for row in self.rows(missing, ["dup_group", "article_id"]) if missing else ():
            groups[int(row["id"])] = int(row["dup_group"])
            articles[int(row["id"])] = row["article_id"]
        return groups, articles

    def duplicates_of_many(self, ids: Sequence[int]) -> dict[int, list[tuple[int, str, int]]]:
        """`duplicates_of` each of `ids`, in at most two queries: the groups of those no search
        returned, then the passages of those groups shared (not two a passage: a page of hits
        was 20 round trips); none when the searches said no group is shared, or `chunks`
        brought the groups' passages already."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        found: dict[int, list[tuple[int, str, int]]] = {chunk_id: [] for chunk_id in wanted}
        known = {chunk_id: self._keys.get(chunk_id) for chunk_id in wanted}
        missing = [chunk_id for chunk_id, keys in known.items() if keys is None]
        own = [
            {"id": chunk_id, "dup_group": keys[0]}
            for chunk_id, keys in known.items()
            if keys is not None and keys[2]
        ]
        if missing:
            rows = self.rows(missing, ["grouped", "dup_group"])
            own += [row for row in rows if row["grouped"]]
        groups = sorted(
            {
                int(row["dup_group"])
                for row in own
                if self._keys.members(int(row["dup_group"])) is None
            }
        )
        for offset in range(0, len(groups), QUERY_BATCH):
            batch = groups[offset : offset + QUERY_BATCH]
            rows = call(
                self._client().query,
                self._collection,
                filter=f"dup_group in {batch}",
                output_fields=["dup_group", "article_id", "paragraph"],
            )
            self._keys.keep_members(rows, batch)
        for row in own:
            chunk_id = int(row["id"])
            group = self._keys.members(int(row["dup_group"])) or []
            found[chunk_id] = sorted(member for member in group if member[0] != chunk_id)
        return found

    def _all(self, fields: list[str]) -> list[dict[str, Any]]:
        """Every row, a page at a time, by ascending id."""
        rows: list[dict[str, Any]] = []
        last = -1
        while True:
            page = call(
                self._client().query,
                self._collection,
                filter=f"id > {last}",
                output_fields=fields,
                limit=QUERY_BATCH,
            )
            if not page:
                return rows
            page.sort(key=lambda row: int(row["id"]))
            rows.extend(page)
            last = int(page[-1]["id"])

    def passage_locations(self) -> list[tuple[str, int, str]]:
        """(article id, paragraph, text) of every passage, indexed by chunk id."""
        rows = self._all(["article_id", "paragraph", "text"])
        located: list[tuple[str, int, str]] = [("", 0, "")] * (
            int(rows[-1]["id"]) + 1 if rows else 0
        )
        for row in rows:
            located[int(row["id"])] = (row["article_id"], int(row["paragraph"]), row["text"])
        return located

    def article(self, article_id: str) -> ArticleRecord | None:
        """An article and its passages, or None when no article has this id."""
        rows = call(
            self._client().query,
            self._collection,
            filter=f"article_id == {literal(article_id)}",
            output_fields=self._fields,
        )
        if not rows:
            return None
        records = sorted(
            (_record(row, self._fields) for row in rows),
            key=lambda record: (record.paragraph, record.part),
        )
        first = records[0]
        return ArticleRecord(
            article_id,
            first.title,
            tuple(records),
            first.section,
            first.published,
            first.author,
            first.url,
            first.tags,
        )
