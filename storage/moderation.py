"""Reading the moderation log: every act, live or REST, one row (written with the act)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from storage.database import Database, Record


def _entry(r: Record) -> dict[str, Any]:
    details = r["details"]
    return {
        "id": str(r["id"]),
        "action": r["action"],
        "actor_id": str(r["actor_id"]),
        "target_user_id": str(r["target_user_id"]) if r["target_user_id"] else None,
        "room_id": str(r["room_id"]) if r["room_id"] else None,
        "message_id": str(r["target_message_id"]) if r["target_message_id"] else None,
        "reason": r["reason"],
        "metadata": json.loads(details) if isinstance(details, str) else details,
        "created_at": r["created_at"].isoformat(),
    }


class ModerationLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(
        self,
        *,
        room_id: uuid.UUID | None,
        actor_id: uuid.UUID | None,
        action: str | None,
        limit: int,
        before: int | None,
    ) -> list[dict[str, Any]]:
        """Newest first, narrowed by room, actor and action when given."""
        rows = await self._db.fetch(
            """SELECT id, room_id, actor_id, action, target_user_id, target_message_id, reason, details,
                      created_at
               FROM moderation_log
               WHERE ($1::uuid IS NULL OR room_id = $1) AND ($2::uuid IS NULL OR actor_id = $2)
                 AND ($3::text IS NULL OR action = $3) AND ($4::bigint IS NULL OR id < $4)
               ORDER BY id DESC LIMIT $5""",
            room_id,
            actor_id,
            action,
            before,
            limit + 1,
        )
        return [{**_entry(r), "_key": (r["id"],)} for r in rows]
