"""Personal blocks (REST.md "Blocks"): who hides whom."""

from __future__ import annotations

import uuid

from storage.database import Database


class Blocks:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def blocked_ids(self, blocker_id: uuid.UUID) -> frozenset[str]:
        """Everyone ``blocker_id`` blocks (what their sockets hide)."""
        rows = await self._db.fetch("SELECT blocked_id FROM user_blocks WHERE blocker_id = $1", blocker_id)
        return frozenset(str(r["blocked_id"]) for r in rows)
