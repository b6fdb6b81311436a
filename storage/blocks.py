"""Personal blocks (REST.md "Blocks"): who hides whom.

One blocker's blocks change one at a time: each change takes the transaction-scoped advisory
lock :func:`lock_blocks_of` exclusively, so the 1,000 limit holds under concurrent requests.
A follow of the blocker takes the same lock shared (``storage.social``): a block and a follow
of the blocker by the blocked user never overlap, so the block always sees (and removes) the
follow, and the follow always sees the block.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from protocol.errors import Conflict, NotFound
from storage.database import Database, Record, micros
from storage.refs import user_ref, user_ref_columns

MAX_BLOCKS = 1000

# Unfollowing as storage.social does it: the follow row, then its count, by one.
_DROP_FOLLOW = "DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2 RETURNING true"
_DROP_FOLLOWS_COUNT = """UPDATE entity_stats SET follows_count = follows_count - 1, updated_at = now()
                         WHERE entity_type = 'user' AND entity_id = $1"""


async def lock_blocks_of(conn: asyncpg.Connection, blocker_id: uuid.UUID, *, shared: bool = False) -> None:
    """Hold the blocks of ``blocker_id`` still until the transaction ends (exclusive: to change
    them; shared: to act on the blocker as someone they may block, e.g. follow them)."""
    fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    await conn.execute(f"SELECT {fn}(hashtextextended('blocks:' || $1::text, 0))", str(blocker_id))


_ENTRY = f"""SELECT b.created_at, {user_ref_columns("u", "p", "user_")}
             FROM user_blocks b JOIN users u ON u.id = b.blocked_id
             LEFT JOIN profiles p ON p.user_id = u.id"""


def _entry(r: Record) -> dict[str, Any]:
    return {"user": user_ref(r, "user_"), "created_at": r["created_at"].isoformat()}


class Blocks:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def blocked_ids(self, blocker_id: uuid.UUID) -> frozenset[str]:
        """Everyone ``blocker_id`` blocks (what their sockets hide)."""
        rows = await self._db.fetch("SELECT blocked_id FROM user_blocks WHERE blocker_id = $1", blocker_id)
        return frozenset(str(r["blocked_id"]) for r in rows)

    async def block(self, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> tuple[dict[str, Any], bool]:
        """``(entry, created)``; blocking again changes nothing and returns the first block. An
        unknown user is NotFound, a blocker at the limit a Conflict. The blocked user's follow of
        the blocker ends in the same transaction."""

        async def unit(conn: asyncpg.Connection) -> tuple[Record, bool]:
            await lock_blocks_of(conn, blocker_id)
            existing: Record | None = await conn.fetchrow(
                f"{_ENTRY} WHERE b.blocker_id = $1 AND b.blocked_id = $2", blocker_id, blocked_id
            )
            if existing is not None:
                return existing, False
            count: int = await conn.fetchval(
                "SELECT count(*) FROM user_blocks WHERE blocker_id = $1", blocker_id
            )
            if count >= MAX_BLOCKS:
                raise Conflict(f"you may block at most {MAX_BLOCKS} users", field="user_id")
            # FOR KEY SHARE: the user cannot be deleted before the block is in.
            row: Record | None = await conn.fetchrow(
                f"""WITH target AS (SELECT id FROM users WHERE id = $2 FOR KEY SHARE),
                         b AS (INSERT INTO user_blocks (blocker_id, blocked_id)
                               SELECT $1, id FROM target RETURNING *)
                    SELECT b.created_at, {user_ref_columns("u", "p", "user_")}
                    FROM b JOIN users u ON u.id = b.blocked_id LEFT JOIN profiles p ON p.user_id = u.id""",
                blocker_id,
                blocked_id,
            )
            if row is None:
                raise NotFound("no such user", field="user_id")
            if await conn.fetchval(_DROP_FOLLOW, blocked_id, blocker_id):
                await conn.execute(_DROP_FOLLOWS_COUNT, blocker_id)
            return row, True

        row, created = await self._db.run(unit)
        return _entry(row), created

    async def unblock(self, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> bool:
        """False when the blocker did not block ``blocked_id``."""

        async def unit(conn: asyncpg.Connection) -> bool:
            await lock_blocks_of(conn, blocker_id)
            gone = await conn.fetchval(
                "DELETE FROM user_blocks WHERE blocker_id = $1 AND blocked_id = $2 RETURNING true",
                blocker_id,
                blocked_id,
            )
            return bool(gone)

        return await self._db.run(unit)

    async def page(
        self, blocker_id: uuid.UUID, limit: int, before: tuple[datetime, uuid.UUID] | None
    ) -> list[dict[str, Any]]:
        """Whom the user blocks, newest first, each with a UserRef."""
        rows = await self._db.fetch(
            f"""{_ENTRY}
                WHERE b.blocker_id = $1
                  AND ($2::timestamptz IS NULL OR (b.created_at, b.blocked_id) < ($2, $3))
                ORDER BY b.created_at DESC, b.blocked_id DESC LIMIT $4""",
            blocker_id,
            before[0] if before else None,
            before[1] if before else None,
            limit + 1,
        )
        return [{**_entry(r), "_key": (micros(r["created_at"]), str(r["user_id"]))} for r in rows]
