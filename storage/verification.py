"""Artist verification requests and their review."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from protocol.errors import Conflict, NotFound
from storage.database import Database, Record, micros
from storage.refs import user_ref, user_ref_columns

_SELECT = f"""SELECT v.id, v.artist_name, v.links, v.message, v.status, v.reason, v.reviewed_by,
                     v.reviewed_at, v.created_at, {user_ref_columns("u", "p", "user_")}
              FROM verification_requests v JOIN users u ON u.id = v.user_id
              LEFT JOIN profiles p ON p.user_id = v.user_id"""


def _request(r: Record) -> dict[str, Any]:
    return {
        "id": str(r["id"]),
        "user": user_ref(r, "user_"),
        "artist_name": r["artist_name"],
        "links": list(r["links"]),
        "message": r["message"],
        "status": r["status"],
        "reason": r["reason"],
        "reviewed_by": str(r["reviewed_by"]) if r["reviewed_by"] else None,
        "reviewed_at": r["reviewed_at"].isoformat() if r["reviewed_at"] else None,
        "created_at": r["created_at"].isoformat(),
    }


class Verification:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def request(
        self, user_id: uuid.UUID, artist_name: str, links: list[str], message: str | None
    ) -> dict[str, Any]:
        """A new pending request; while one is pending, another is a Conflict."""
        try:
            request_id = await self._db.fetchval(
                """INSERT INTO verification_requests (user_id, artist_name, links, message)
                   VALUES ($1, $2, $3, $4) RETURNING id""",
                user_id,
                artist_name.strip(),
                links,
                message,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("you already have a pending verification request") from None
        found = await self.get(request_id)
        assert found is not None
        return found

    async def get(self, request_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self._db.fetchrow(f"{_SELECT} WHERE v.id = $1", request_id)
        return _request(row) if row is not None else None

    async def mine(
        self, user_id: uuid.UUID, limit: int, before: tuple[datetime, uuid.UUID] | None
    ) -> list[dict[str, Any]]:
        """The user's own requests, newest first."""
        rows = await self._db.fetch(
            f"""{_SELECT} WHERE v.user_id = $1
                AND ($2::timestamptz IS NULL OR (v.created_at, v.id) < ($2, $3))
                ORDER BY v.created_at DESC, v.id DESC LIMIT $4""",
            user_id,
            before[0] if before else None,
            before[1] if before else None,
            limit + 1,
        )
        return [{**_request(r), "_key": (micros(r["created_at"]), str(r["id"]))} for r in rows]

    async def queue(
        self, status: str, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[dict[str, Any]]:
        """Requests with ``status``, oldest first: the admin review queue."""
        rows = await self._db.fetch(
            f"""{_SELECT} WHERE v.status = $1
                AND ($2::timestamptz IS NULL OR (v.created_at, v.id) > ($2, $3))
                ORDER BY v.created_at, v.id LIMIT $4""",
            status,
            after[0] if after else None,
            after[1] if after else None,
            limit + 1,
        )
        return [{**_request(r), "_key": (micros(r["created_at"]), str(r["id"]))} for r in rows]

    async def decide(
        self, request_id: uuid.UUID, by: uuid.UUID, approve: bool, reason: str | None
    ) -> dict[str, Any]:
        """Approve or deny a pending request, in one transaction.

        Approval makes the user a verified artist: the artist profile takes the
        request's name and links, and the role becomes ``artist`` (an admin keeps
        their role: approval never demotes anyone).
        """

        async def unit(conn: asyncpg.Connection) -> Record | None:
            row: Record | None = await conn.fetchrow(
                """UPDATE verification_requests
                   SET status = $3, reason = $4, reviewed_by = $2, reviewed_at = now()
                   WHERE id = $1 AND status = 'pending'
                   RETURNING user_id, artist_name, links""",
                request_id,
                by,
                "approved" if approve else "denied",
                reason,
            )
            if row is None or not approve:
                return row
            await conn.execute(
                """INSERT INTO artist_profiles (user_id, artist_name, links, verified, verified_at)
                   VALUES ($1, $2, $3, true, now())
                   ON CONFLICT (user_id) DO UPDATE
                   SET artist_name = excluded.artist_name, links = excluded.links, verified = true,
                       verified_at = now()""",
                row["user_id"],
                row["artist_name"],
                row["links"],
            )
            await conn.execute(
                "UPDATE users SET role = 'artist', updated_at = now() WHERE id = $1 AND role = 'user'",
                row["user_id"],
            )
            return row

        decided = await self._db.run(unit)
        if decided is None:
            existing = await self.get(request_id)
            if existing is None:
                raise NotFound("no such verification request", field="id")
            raise Conflict(f"this request was already {existing['status']}", field="status")
        found = await self.get(request_id)
        assert found is not None
        return found
