"""Playlists, their ordered items and collaborators; PLAYLIST_ADD points for the track's DJs.

Items are ordered by a sparse ``rank``: appending takes the last rank plus a gap,
removing leaves the others alone, and a move takes a rank between its new
neighbours (renumbering the playlist only when there is no room left). So a page
keyed on ``(rank, id)`` never skips or repeats an item when others are added or
removed between pages. Every change to a playlist's items locks the playlist row
first, so concurrent changes apply one at a time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from protocol.errors import Conflict, NotFound
from protocol.playlists import MAX_COLLABORATORS, MAX_ITEMS
from storage.database import Database, Record, micros
from storage.progression import PLAYLIST_ADD_POINTS, Award, Progress, apply_awards
from storage.refs import TRACK_COLUMNS, track, user_ref, user_ref_columns

RANK_GAP = 1024


def _playlists_seen_by(viewer_param: str) -> str:
    """Playlists with their owner's UserRef and whether the viewer (a query parameter) collaborates."""
    return f"""SELECT pl.id, pl.name, pl.description, pl.is_public, pl.items_count, pl.created_at,
                      pl.updated_at, {user_ref_columns("u", "p", "owner_")},
                      EXISTS (SELECT 1 FROM playlist_collaborators c
                              WHERE c.playlist_id = pl.id AND c.user_id = {viewer_param}) AS is_collaborator
               FROM playlists pl JOIN users u ON u.id = pl.owner_id
               LEFT JOIN profiles p ON p.user_id = pl.owner_id"""


_ITEMS = f"""SELECT i.id, i.playlist_id, i.rank, i.created_at, {TRACK_COLUMNS},
                    {user_ref_columns("a", "ap", "by_")}
             FROM playlist_items i JOIN track_refs t ON t.id = i.track_ref_id
             LEFT JOIN users a ON a.id = i.added_by LEFT JOIN profiles ap ON ap.user_id = i.added_by"""


@dataclass(frozen=True)
class Access:
    """What one user may do with one playlist."""

    owner_id: uuid.UUID
    is_public: bool
    role: str | None  # "owner", "collaborator" or None

    @property
    def can_read(self) -> bool:
        return self.is_public or self.role is not None

    @property
    def can_edit_items(self) -> bool:
        return self.role is not None

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"


def _role(r: Record, viewer: uuid.UUID | None) -> str | None:
    if viewer is not None and r["owner_id"] == viewer:
        return "owner"
    return "collaborator" if r["is_collaborator"] else None


def _playlist(r: Record, role: str | None) -> dict[str, Any]:
    return {
        "id": str(r["id"]),
        "owner": user_ref(r, "owner_"),
        "name": r["name"],
        "description": r["description"],
        "is_public": r["is_public"],
        "items_count": r["items_count"],
        "my_role": role,
        "created_at": r["created_at"].isoformat(),
        "updated_at": r["updated_at"].isoformat(),
    }


def _item(r: Record, position: int) -> dict[str, Any]:
    return {
        "id": str(r["id"]),
        "playlist_id": str(r["playlist_id"]),
        "track": track(r),
        "added_by": user_ref(r, "by_"),
        "position": position,
        "created_at": r["created_at"].isoformat(),
    }


async def _lock(conn: asyncpg.Connection, playlist_id: uuid.UUID) -> None:
    if await conn.fetchval("SELECT 1 FROM playlists WHERE id = $1 FOR UPDATE", playlist_id) is None:
        raise NotFound("no such playlist", field="playlist_id")


async def _item_out(conn: asyncpg.Connection, item_id: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow(f"{_ITEMS} WHERE i.id = $1", item_id)
    assert row is not None
    position = await conn.fetchval(
        "SELECT count(*) FROM playlist_items WHERE playlist_id = $1 AND (rank, id) < ($2, $3)",
        row["playlist_id"],
        row["rank"],
        row["id"],
    )
    return _item(row, position)


async def _rank_at(conn: asyncpg.Connection, playlist_id: uuid.UUID, moving: uuid.UUID, index: int) -> int:
    """A rank that puts ``moving`` at ``index`` among the playlist's other items."""
    for _ in range(2):
        others = await conn.fetch(
            "SELECT id, rank FROM playlist_items WHERE playlist_id = $1 AND id <> $2 ORDER BY rank, id",
            playlist_id,
            moving,
        )
        index = min(index, len(others))
        before: int | None = others[index - 1]["rank"] if index > 0 else None
        after: int | None = others[index]["rank"] if index < len(others) else None
        if before is None:
            return 0 if after is None else after - RANK_GAP
        if after is None:
            return before + RANK_GAP
        if after - before >= 2:
            return (before + after) // 2
        # No room between the neighbours: spread everything out once, then place.
        await conn.execute(
            """UPDATE playlist_items i SET rank = x.n * $2
               FROM (SELECT id, row_number() OVER (ORDER BY rank, id) AS n
                     FROM playlist_items WHERE playlist_id = $1 AND id <> $3) x
               WHERE i.id = x.id""",
            playlist_id,
            RANK_GAP,
            moving,
        )
    raise AssertionError("renumbered ranks always leave room")


class Playlists:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def find(
        self, playlist_id: uuid.UUID, viewer: uuid.UUID | None
    ) -> tuple[Access, dict[str, Any]] | None:
        """The playlist and what ``viewer`` may do with it, or None if there is no such playlist."""
        row = await self._db.fetchrow(
            f"{_playlists_seen_by('$2::uuid')} WHERE pl.id = $1", playlist_id, viewer
        )
        if row is None:
            return None
        role = _role(row, viewer)
        return Access(row["owner_id"], row["is_public"], role), _playlist(row, role)

    async def item_playlist(self, item_id: uuid.UUID) -> uuid.UUID | None:
        found: uuid.UUID | None = await self._db.fetchval(
            "SELECT playlist_id FROM playlist_items WHERE id = $1", item_id
        )
        return found

    async def create(
        self, owner: uuid.UUID, name: str, description: str | None, is_public: bool
    ) -> dict[str, Any]:
        playlist_id = await self._db.fetchval(
            """INSERT INTO playlists (owner_id, name, description, is_public)
               VALUES ($1, $2, $3, $4) RETURNING id""",
            owner,
            name.strip(),
            description,
            is_public,
        )
        found = await self.find(playlist_id, owner)
        assert found is not None
        return found[1]

    async def update(self, playlist_id: uuid.UUID, changes: dict[str, Any]) -> None:
        fields = [f for f in ("name", "description", "is_public") if f in changes]
        if not fields:
            return
        values = [changes[f].strip() if f == "name" else changes[f] for f in fields]
        sets = ", ".join(f"{f} = ${i + 2}" for i, f in enumerate(fields))
        await self._db.execute(
            f"UPDATE playlists SET {sets}, updated_at = now() WHERE id = $1", playlist_id, *values
        )

    async def delete(self, playlist_id: uuid.UUID) -> None:
        await self._db.execute("DELETE FROM playlists WHERE id = $1", playlist_id)

    async def listed(
        self,
        viewer: uuid.UUID,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None,
        *,
        owner: uuid.UUID | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first: the viewer's own and shared-with-them playlists, or (``owner`` given)
        that user's playlists the viewer may read."""
        rows = await self._db.fetch(
            f"""SELECT * FROM (
                    {_playlists_seen_by("$1")}
                    WHERE ($2::uuid IS NULL OR pl.owner_id = $2)
                      AND ($3::timestamptz IS NULL OR (pl.created_at, pl.id) < ($3, $4))) x
                WHERE (x.owner_id = $1 OR x.is_collaborator OR ($2::uuid IS NOT NULL AND x.is_public))
                ORDER BY x.created_at DESC, x.id DESC LIMIT $5""",
            viewer,
            owner,
            before[0] if before else None,
            before[1] if before else None,
            limit + 1,
        )
        return [
            {**_playlist(r, _role(r, viewer)), "_key": (micros(r["created_at"]), str(r["id"]))} for r in rows
        ]

    async def items(
        self, playlist_id: uuid.UUID, limit: int, after: tuple[int, uuid.UUID] | None
    ) -> list[dict[str, Any]]:
        """Items in playlist order from just after ``after`` (a (rank, id) key)."""

        async def unit(conn: asyncpg.Connection) -> list[dict[str, Any]]:
            # One snapshot for the page and the count before it, so positions agree with the page.
            start = 0
            if after is not None:
                start = await conn.fetchval(
                    "SELECT count(*) FROM playlist_items WHERE playlist_id = $1 AND (rank, id) <= ($2, $3)",
                    playlist_id,
                    after[0],
                    after[1],
                )
            rows = await conn.fetch(
                f"""{_ITEMS} WHERE i.playlist_id = $1 AND ($2::bigint IS NULL OR (i.rank, i.id) > ($2, $3))
                    ORDER BY i.rank, i.id LIMIT $4""",
                playlist_id,
                after[0] if after else None,
                after[1] if after else None,
                limit + 1,
            )
            return [{**_item(r, start + n), "_key": (r["rank"], str(r["id"]))} for n, r in enumerate(rows)]

        return await self._db.run(unit)

    async def add_item(
        self, playlist_id: uuid.UUID, track_id: str, by: uuid.UUID
    ) -> tuple[dict[str, Any], list[Progress]]:
        """Append a track; whoever played it in a room gets PLAYLIST_ADD points, once per adder."""
        track_uuid = uuid.UUID(track_id)

        async def unit(conn: asyncpg.Connection) -> tuple[dict[str, Any], list[Progress]]:
            await _lock(conn, playlist_id)
            row = await conn.fetchrow(
                "SELECT count(*), max(rank) FROM playlist_items WHERE playlist_id = $1", playlist_id
            )
            assert row is not None
            count, last = row
            if count >= MAX_ITEMS:
                raise Conflict(f"a playlist holds at most {MAX_ITEMS} items", field="track")
            item_id = await conn.fetchval(
                """INSERT INTO playlist_items (playlist_id, track_ref_id, added_by, rank)
                   VALUES ($1, $2, $3, $4) RETURNING id""",
                playlist_id,
                track_uuid,
                by,
                0 if last is None else last + RANK_GAP,
            )
            await conn.execute(
                "UPDATE playlists SET items_count = items_count + 1, updated_at = now() WHERE id = $1",
                playlist_id,
            )
            djs = await conn.fetch(
                "SELECT DISTINCT dj_id FROM track_plays WHERE track_ref_id = $1 AND dj_id <> $2",
                track_uuid,
                by,
            )
            awards = [
                Award(str(r["dj_id"]), "playlist_add", PLAYLIST_ADD_POINTS, track_id, str(by)) for r in djs
            ]
            progress = await apply_awards(conn, awards, None, datetime.now(UTC)) if awards else []
            return await _item_out(conn, item_id), progress

        return await self._db.run(unit)

    async def remove_item(self, playlist_id: uuid.UUID, item_id: uuid.UUID) -> None:
        async def unit(conn: asyncpg.Connection) -> None:
            await _lock(conn, playlist_id)
            removed = await conn.fetchval(
                "DELETE FROM playlist_items WHERE id = $1 AND playlist_id = $2 RETURNING id",
                item_id,
                playlist_id,
            )
            if removed is None:
                raise NotFound("no such item in this playlist", field="item_id")
            await conn.execute(
                "UPDATE playlists SET items_count = items_count - 1, updated_at = now() WHERE id = $1",
                playlist_id,
            )

        await self._db.run(unit)

    async def move_item(self, playlist_id: uuid.UUID, item_id: uuid.UUID, position: int) -> dict[str, Any]:
        async def unit(conn: asyncpg.Connection) -> dict[str, Any]:
            await _lock(conn, playlist_id)
            exists = await conn.fetchval(
                "SELECT 1 FROM playlist_items WHERE id = $1 AND playlist_id = $2", item_id, playlist_id
            )
            if exists is None:
                raise NotFound("no such item in this playlist", field="item_id")
            rank = await _rank_at(conn, playlist_id, item_id, position)
            await conn.execute("UPDATE playlist_items SET rank = $2 WHERE id = $1", item_id, rank)
            await conn.execute("UPDATE playlists SET updated_at = now() WHERE id = $1", playlist_id)
            return await _item_out(conn, item_id)

        return await self._db.run(unit)

    async def add_collaborator(
        self, playlist_id: uuid.UUID, user_id: uuid.UUID, by: uuid.UUID
    ) -> tuple[dict[str, Any], bool]:
        """Invite a user; ``(collaborator, created)``: inviting a collaborator again changes nothing."""

        async def unit(conn: asyncpg.Connection) -> tuple[dict[str, Any], bool]:
            await _lock(conn, playlist_id)
            count = await conn.fetchval(
                "SELECT count(*) FROM playlist_collaborators WHERE playlist_id = $1", playlist_id
            )
            inserted = await conn.fetchval(
                """INSERT INTO playlist_collaborators (playlist_id, user_id, added_by)
                   SELECT $1, $2, $3 WHERE $4 ON CONFLICT DO NOTHING RETURNING true""",
                playlist_id,
                user_id,
                by,
                count < MAX_COLLABORATORS,
            )
            row = await conn.fetchrow(
                f"""SELECT c.created_at, {user_ref_columns("u", "p", "user_")}
                    FROM playlist_collaborators c JOIN users u ON u.id = c.user_id
                    LEFT JOIN profiles p ON p.user_id = c.user_id
                    WHERE c.playlist_id = $1 AND c.user_id = $2""",
                playlist_id,
                user_id,
            )
            if row is None:
                raise Conflict(f"a playlist has at most {MAX_COLLABORATORS} collaborators", field="user_id")
            return {"user": user_ref(row, "user_"), "added_at": row["created_at"].isoformat()}, bool(inserted)

        return await self._db.run(unit)

    async def remove_collaborator(self, playlist_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        removed = await self._db.fetchval(
            "DELETE FROM playlist_collaborators WHERE playlist_id = $1 AND user_id = $2 RETURNING true",
            playlist_id,
            user_id,
        )
        return bool(removed)

    async def collaborators(
        self, playlist_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[dict[str, Any]]:
        """In the order they were invited."""
        rows = await self._db.fetch(
            f"""SELECT c.created_at, {user_ref_columns("u", "p", "user_")}
                FROM playlist_collaborators c JOIN users u ON u.id = c.user_id
                LEFT JOIN profiles p ON p.user_id = c.user_id
                WHERE c.playlist_id = $1 AND ($2::timestamptz IS NULL OR (c.created_at, c.user_id) > ($2, $3))
                ORDER BY c.created_at, c.user_id LIMIT $4""",
            playlist_id,
            after[0] if after else None,
            after[1] if after else None,
            limit + 1,
        )
        return [
            {
                "user": user_ref(r, "user_"),
                "added_at": r["created_at"].isoformat(),
                "_key": (micros(r["created_at"]), str(r["user_id"])),
            }
            for r in rows
        ]
