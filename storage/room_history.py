"""A room's history of played tracks (REST.md "Room history"), from ``track_plays``.

A play is written when its track starts and completed when it ends (the journal, in the
transaction of ``track.ended`` or of the session's end); one still playing is not history yet.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg

from storage.database import Database, Record, micros
from storage.refs import TRACK_COLUMNS, track
from storage.rooms import room_for_viewer

_NO_VOTES = {"up": 0, "down": 0, "skip": 0}

# Newest first by (started_at, item_id); $2 narrows to one DJ, ($3, $4) is the cursor.
_PAGE = f"""SELECT p.item_id, p.dj_id, p.started_at, p.ended_at, p.end_reason, p.votes, {TRACK_COLUMNS}
            FROM track_plays p JOIN track_refs t ON t.id = p.track_ref_id
            WHERE p.room_id = $1 AND p.ended_at IS NOT NULL AND ($2::uuid IS NULL OR p.dj_id = $2)
              AND ($3::timestamptz IS NULL OR (p.started_at, p.item_id) < ($3, $4::text))
            ORDER BY p.started_at DESC, p.item_id DESC LIMIT $5"""


def _entry(r: Record) -> dict[str, Any]:
    votes = r["votes"] if isinstance(r["votes"], dict) else {}
    return {
        "item_id": r["item_id"],
        "track": track(r),
        "dj_id": str(r["dj_id"]),
        "started_at": r["started_at"].isoformat(),
        "ended_at": r["ended_at"].isoformat(),
        "reason": r["end_reason"],
        "votes": {k: int(votes.get(k, 0)) for k in _NO_VOTES},
        "_key": (micros(r["started_at"]), r["item_id"]),
    }


async def history_page(
    db: Database,
    room_id: uuid.UUID,
    viewer: uuid.UUID | None,
    may_see: Callable[[dict[str, Any], str | None], bool],
    dj_id: uuid.UUID | None,
    limit: int,
    before: tuple[datetime, str] | None,
) -> list[dict[str, Any]] | None:
    """Up to ``limit + 1`` ended plays of the room, newest first, each with its ``_key``, if the
    room exists and ``may_see(room, the viewer's role)``; else None. One bridge crossing."""

    async def unit(conn: asyncpg.Connection) -> list[Record] | None:
        found = await room_for_viewer(conn, room_id, viewer)
        if found is None or not may_see(*found):
            return None
        return list(
            await conn.fetch(
                _PAGE, room_id, dj_id, before[0] if before else None, before[1] if before else None, limit + 1
            )
        )

    rows = await db.run_outside_transaction(unit)
    return None if rows is None else [_entry(r) for r in rows]
