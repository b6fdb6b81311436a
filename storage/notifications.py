"""The notification center: rows written in their cause's transaction, read and marked over REST.

:func:`create_notifications` runs inside whatever transaction writes the cause
(a follow, a chat message in the journal's batch, a level up, a join request),
so a notification exists exactly when its cause does. It skips a user's own
acts, the types they switched off and the acts of anyone they block, and returns
what it created so the caller can push each one live after the commit.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from protocol.notifications import NOTIFICATION_TYPES
from storage.database import Database, Record, micros
from storage.refs import user_ref, user_ref_columns

# (user to notify, type, actor or None, data)
NoteRow = tuple[str, str, str | None, dict[str, Any]]

_SELECT = f"n.id, n.user_id, n.type, n.data, n.created_at, n.read_at, {user_ref_columns('a', 'ap', 'by_')}"


def _note(r: Record) -> dict[str, Any]:
    data = r["data"]
    return {
        "id": str(r["id"]),
        "type": r["type"],
        "actor": user_ref(r, "by_"),
        "data": json.loads(data) if isinstance(data, str) else data,
        "created_at": r["created_at"].isoformat(),
        "read_at": r["read_at"].isoformat() if r["read_at"] else None,
    }


async def create_notifications(
    conn: asyncpg.Connection, rows: list[NoteRow]
) -> list[tuple[str, dict[str, Any]]]:
    """Insert what is due, in one statement; ``(user_id, Notification)`` for each one created."""
    wanted = [r for r in rows if r[2] is None or r[2] != r[0]]  # nobody is told of their own act
    if not wanted:
        return []
    records = await conn.fetch(
        f"""WITH x AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[])
                       WITH ORDINALITY AS x(u, t, a, d, k)),
                 n AS (INSERT INTO notifications (user_id, type, actor_id, data)
                       SELECT x.u, x.t, x.a, x.d::jsonb FROM x
                       WHERE EXISTS (SELECT 1 FROM users WHERE id = x.u)
                         AND NOT EXISTS (SELECT 1 FROM notification_preferences p
                                         WHERE p.user_id = x.u AND p.type = x.t AND NOT p.enabled)
                         AND NOT EXISTS (SELECT 1 FROM user_blocks b
                                         WHERE b.blocker_id = x.u AND b.blocked_id = x.a)
                       ORDER BY x.k
                       RETURNING *)
            SELECT {_SELECT} FROM n LEFT JOIN users a ON a.id = n.actor_id
            LEFT JOIN profiles ap ON ap.user_id = n.actor_id
            ORDER BY n.created_at, n.id""",
        [uuid.UUID(r[0]) for r in wanted],
        [r[1] for r in wanted],
        [uuid.UUID(r[2]) if r[2] else None for r in wanted],
        [json.dumps(r[3]) for r in wanted],
    )
    return [(str(r["user_id"]), _note(r)) for r in records]


class Notifications:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, rows: list[NoteRow]) -> list[tuple[str, dict[str, Any]]]:
        return await self._db.run(create_notifications, rows)

    async def page(
        self, user_id: uuid.UUID, unread_only: bool, limit: int, before: tuple[datetime, uuid.UUID] | None
    ) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            f"""SELECT {_SELECT} FROM notifications n LEFT JOIN users a ON a.id = n.actor_id
                LEFT JOIN profiles ap ON ap.user_id = n.actor_id
                WHERE n.user_id = $1 AND (NOT $2 OR n.read_at IS NULL)
                  AND ($3::timestamptz IS NULL OR (n.created_at, n.id) < ($3, $4))
                ORDER BY n.created_at DESC, n.id DESC LIMIT $5""",
            user_id,
            unread_only,
            before[0] if before else None,
            before[1] if before else None,
            limit + 1,
        )
        return [{**_note(r), "_key": (micros(r["created_at"]), str(r["id"]))} for r in rows]

    async def unread_count(self, user_id: uuid.UUID) -> int:
        count: int = await self._db.fetchval(
            "SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL", user_id
        )
        return count

    async def mark_read(self, user_id: uuid.UUID, notification_id: uuid.UUID) -> bool:
        """False when the user has no such notification (someone else's is as good as none)."""
        found = await self._db.fetchval(
            """UPDATE notifications SET read_at = coalesce(read_at, now())
               WHERE id = $1 AND user_id = $2 RETURNING true""",
            notification_id,
            user_id,
        )
        return bool(found)

    async def read_all(self, user_id: uuid.UUID) -> int:
        status: str = await self._db.execute(
            "UPDATE notifications SET read_at = now() WHERE user_id = $1 AND read_at IS NULL", user_id
        )
        return int(status.split()[-1])

    async def preferences(self, user_id: uuid.UUID) -> dict[str, bool]:
        rows = await self._db.fetch(
            "SELECT type, enabled FROM notification_preferences WHERE user_id = $1", user_id
        )
        off = {r["type"] for r in rows if not r["enabled"]}
        return {t: t not in off for t in NOTIFICATION_TYPES}

    async def set_preferences(self, user_id: uuid.UUID, changes: dict[str, bool]) -> dict[str, bool]:
        if changes:
            await self._db.execute(
                """INSERT INTO notification_preferences (user_id, type, enabled)
                   SELECT $1, t, e FROM unnest($2::text[], $3::boolean[]) AS x(t, e)
                   ON CONFLICT (user_id, type) DO UPDATE SET enabled = excluded.enabled""",
                user_id,
                list(changes),
                list(changes.values()),
            )
        return await self.preferences(user_id)
