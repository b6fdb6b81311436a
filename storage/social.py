"""Follows and likes, and the exact counts in ``entity_stats`` that move with them.

Each follow or like changes its count in the same transaction, by one, under the
stats row's lock: concurrent likes of one entity serialize on that row, so the
count is exact without ever being recounted.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from protocol.errors import Forbidden
from storage.blocks import lock_blocks_of
from storage.database import Database, Record, micros
from storage.notifications import create_notifications
from storage.refs import user_ref, user_ref_columns

_BUMP = """INSERT INTO entity_stats (entity_type, entity_id, {column}) VALUES ($1, $2, 1)
           ON CONFLICT (entity_type, entity_id)
           DO UPDATE SET {column} = entity_stats.{column} + 1, updated_at = now()"""
# Decrements are an UPDATE: a CHECK holds for the row an INSERT proposes, even one turned into an update.
_DROP = """UPDATE entity_stats SET {column} = {column} - 1, updated_at = now()
           WHERE entity_type = $1 AND entity_id = $2"""
_BUMP_LIKES, _DROP_LIKES = _BUMP.format(column="likes_count"), _DROP.format(column="likes_count")
_BUMP_FOLLOWS, _DROP_FOLLOWS = _BUMP.format(column="follows_count"), _DROP.format(column="follows_count")


def _follow(r: Record) -> dict[str, Any]:
    return {
        "follower_id": str(r["follower_id"]),
        "followee_id": str(r["followee_id"]),
        "followee_type": r["followee_type"],
        "created_at": r["created_at"].isoformat(),
    }


class Social:
    def __init__(self, db: Database) -> None:
        self._db = db

    # ---- follows ----------------------------------------------------------------------

    async def follow(
        self, follower: uuid.UUID, followee: uuid.UUID, followee_type: str
    ) -> tuple[dict[str, Any], bool, list[tuple[str, dict[str, Any]]]]:
        """``(follow, created, notifications)``; following again changes nothing and returns the
        first follow. The followee's ``follow`` notification is written in the same transaction.
        Someone the followee blocks cannot follow them (Forbidden)."""

        async def unit(conn: asyncpg.Connection) -> tuple[Record, bool, list[tuple[str, dict[str, Any]]]]:
            # Shared: follows of one user run side by side, but never beside a block by them.
            await lock_blocks_of(conn, followee, shared=True)
            if await conn.fetchval(
                "SELECT true FROM user_blocks WHERE blocker_id = $1 AND blocked_id = $2", followee, follower
            ):
                raise Forbidden("that user blocks you: you cannot follow them", field="target_id")
            row: Record | None = await conn.fetchrow(
                """INSERT INTO follows (follower_id, followee_id, followee_type) VALUES ($1, $2, $3)
                   ON CONFLICT DO NOTHING RETURNING *""",
                follower,
                followee,
                followee_type,
            )
            if row is not None:
                await conn.execute(_BUMP_FOLLOWS, "user", followee)
                notes = await create_notifications(conn, [(str(followee), "follow", str(follower), {})])
                return row, True, notes
            existing: Record | None = await conn.fetchrow(
                "SELECT * FROM follows WHERE follower_id = $1 AND followee_id = $2", follower, followee
            )
            assert existing is not None
            return existing, False, []

        row, created, notes = await self._db.run(unit)
        return _follow(row), created, notes

    async def unfollow(self, follower: uuid.UUID, followee: uuid.UUID) -> bool:
        async def unit(conn: asyncpg.Connection) -> bool:
            gone = await conn.fetchval(
                "DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2 RETURNING true",
                follower,
                followee,
            )
            if gone:
                await conn.execute(_DROP_FOLLOWS, "user", followee)
            return bool(gone)

        return await self._db.run(unit)

    async def follow_page(
        self, user_id: uuid.UUID, *, followers: bool, limit: int, before: tuple[datetime, uuid.UUID] | None
    ) -> list[dict[str, Any]]:
        """The user's followers (or whom they follow), newest first, each with a UserRef."""
        mine, other = ("followee_id", "follower_id") if followers else ("follower_id", "followee_id")
        rows = await self._db.fetch(
            f"""SELECT f.created_at, {user_ref_columns("u", "p", "user_")}
                FROM follows f JOIN users u ON u.id = f.{other} LEFT JOIN profiles p ON p.user_id = u.id
                WHERE f.{mine} = $1 AND ($2::timestamptz IS NULL OR (f.created_at, f.{other}) < ($2, $3))
                ORDER BY f.created_at DESC, f.{other} DESC LIMIT $4""",
            user_id,
            before[0] if before else None,
            before[1] if before else None,
            limit + 1,
        )
        return [
            {
                "user": user_ref(r, "user_"),
                "followed_at": r["created_at"].isoformat(),
                "_key": (micros(r["created_at"]), str(r["user_id"])),
            }
            for r in rows
        ]

    # ---- likes ------------------------------------------------------------------------

    async def like(self, user_id: uuid.UUID, entity_type: str, entity_id: uuid.UUID) -> tuple[str, bool]:
        """``(liked_at, created)``; liking again changes nothing."""

        async def unit(conn: asyncpg.Connection) -> tuple[datetime, bool]:
            at = await conn.fetchval(
                """INSERT INTO likes (user_id, entity_type, entity_id) VALUES ($1, $2, $3)
                   ON CONFLICT DO NOTHING RETURNING created_at""",
                user_id,
                entity_type,
                entity_id,
            )
            if at is not None:
                await conn.execute(_BUMP_LIKES, entity_type, entity_id)
                return at, True
            existing: datetime = await conn.fetchval(
                "SELECT created_at FROM likes WHERE user_id = $1 AND entity_type = $2 AND entity_id = $3",
                user_id,
                entity_type,
                entity_id,
            )
            return existing, False

        at, created = await self._db.run(unit)
        return at.isoformat(), created

    async def unlike(self, user_id: uuid.UUID, entity_type: str, entity_id: uuid.UUID) -> bool:
        async def unit(conn: asyncpg.Connection) -> bool:
            gone = await conn.fetchval(
                """DELETE FROM likes WHERE user_id = $1 AND entity_type = $2 AND entity_id = $3
                   RETURNING true""",
                user_id,
                entity_type,
                entity_id,
            )
            if gone:
                await conn.execute(_DROP_LIKES, entity_type, entity_id)
            return bool(gone)

        return await self._db.run(unit)

    async def likers(
        self, entity_type: str, entity_id: uuid.UUID, limit: int, before: tuple[datetime, uuid.UUID] | None
    ) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            f"""SELECT l.created_at, {user_ref_columns("u", "p", "user_")}
                FROM likes l JOIN users u ON u.id = l.user_id LEFT JOIN profiles p ON p.user_id = u.id
                WHERE l.entity_type = $1 AND l.entity_id = $2
                  AND ($3::timestamptz IS NULL OR (l.created_at, l.user_id) < ($3, $4))
                ORDER BY l.created_at DESC, l.user_id DESC LIMIT $5""",
            entity_type,
            entity_id,
            before[0] if before else None,
            before[1] if before else None,
            limit + 1,
        )
        return [
            {
                "user": user_ref(r, "user_"),
                "liked_at": r["created_at"].isoformat(),
                "_key": (micros(r["created_at"]), str(r["user_id"])),
            }
            for r in rows
        ]

    async def my_likes(
        self,
        user_id: uuid.UUID,
        entity_type: str | None,
        limit: int,
        before: tuple[datetime, str, uuid.UUID] | None,
    ) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            """SELECT entity_type, entity_id, created_at FROM likes
               WHERE user_id = $1 AND ($2::text IS NULL OR entity_type = $2)
                 AND ($3::timestamptz IS NULL OR (created_at, entity_type, entity_id) < ($3, $4, $5))
               ORDER BY created_at DESC, entity_type DESC, entity_id DESC LIMIT $6""",
            user_id,
            entity_type,
            before[0] if before else None,
            before[1] if before else None,
            before[2] if before else None,
            limit + 1,
        )
        return [
            {
                "entity_type": r["entity_type"],
                "entity_id": str(r["entity_id"]),
                "liked_at": r["created_at"].isoformat(),
                "_key": (micros(r["created_at"]), r["entity_type"], str(r["entity_id"])),
            }
            for r in rows
        ]

    async def stats(self, entity_type: str, entity_id: uuid.UUID) -> dict[str, int]:
        """Likes of the entity; for a user or artist, their followers."""
        key = "user" if entity_type in ("user", "artist") else entity_type
        row = await self._db.fetchrow(
            "SELECT likes_count, follows_count FROM entity_stats WHERE entity_type = $1 AND entity_id = $2",
            key,
            entity_id,
        )
        if row is None:
            return {"likes_count": 0, "follows_count": 0}
        return {"likes_count": row["likes_count"], "follows_count": row["follows_count"]}
