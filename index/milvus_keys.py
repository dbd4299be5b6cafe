"""What an opened Milvus generation remembers of its passages from the searches it ran.

A search returns each hit's near-duplicate group, article and whether other passages share the
group (`FIELDS`, asked as output fields); the ranking and the page of hits ask for exactly those
next, so they are kept (`PassageKeys`) and those round trips to the server are not made. So are
the passages of shared groups once read. A generation's rows never change: nothing kept goes
stale. Dict operations are atomic, so one `PassageKeys` is shared by a generation's threads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["FIELDS", "KEPT", "PassageKeys"]

FIELDS = ("dup_group", "article_id", "grouped")
# Passages (and shared groups) kept; past it, all are forgotten and learnt again.
KEPT = 200_000

Member = tuple[int, str, int]  # (chunk id, article id, paragraph)


class PassageKeys:
    """Each passage's (group, article, shared) from searches; each shared group's passages."""

    def __init__(self) -> None:
        self._keys: dict[int, tuple[int, str, bool]] = {}
        self._members: dict[int, list[Member]] = {}

    def remember(self, hits: Iterable[dict[str, Any]]) -> None:
        """Keep the `FIELDS` of a search's hits (those that came with them)."""
        if len(self._keys) > KEPT:
            self._keys.clear()
        keys = self._keys
        for hit in hits:
            entity = hit.get("entity", hit)
            try:
                keys[int(hit["id"])] = (
                    int(entity["dup_group"]),
                    entity["article_id"],
                    bool(entity["grouped"]),
                )
            except KeyError:  # (a search that did not ask for them)
                continue

    def get(self, chunk_id: int) -> tuple[int, str, bool] | None:
        """(group, article id, whether the group is shared), or None when no search said."""
        return self._keys.get(chunk_id)

    def unread_groups(self, ids: Iterable[int]) -> list[int]:
        """The shared groups of these passages (as searches said) whose passages are not kept."""
        groups = {
            keys[0]
            for keys in (self._keys.get(chunk_id) for chunk_id in ids)
            if keys is not None and keys[2]
        }
        return sorted(groups - self._members.keys())

    def keep_members(self, rows: list[dict[str, Any]], groups: Iterable[int]) -> None:
        """Keep the passages of `groups`, all of which are among `rows` (rows with the fields
        dup_group, article_id and paragraph; other rows are passed over)."""
        members: dict[int, list[Member]] = {group: [] for group in groups}
        for row in rows:
            if int(row["dup_group"]) in members:
                members[int(row["dup_group"])].append(
                    (int(row["id"]), row["article_id"], int(row["paragraph"]))
                )
        if len(self._members) > KEPT:
            self._members.clear()
        self._members.update(members)

    def members(self, group: int) -> list[Member] | None:
        """The passages of a shared group, or None when they are not kept."""
        return self._members.get(group)
