"""Reports of users, messages and rooms, and their resolution by admins."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from protocol.errors import Conflict, RateLimited
from storage.database import Database, Record, micros
from storage.notifications import create_notifications
from storage.refs import user_ref, user_ref_columns
from storage.sanctions import SanctionKind, SanctionRow, Sanctions, apply_sanction

REPORTS_PER_HOUR = 20
_HOUR = timedelta(hours=1)

_COLUMNS = """r.id, r.reporter_id, r.target_type, r.target_id, r.reason, r.description, r.status, r.action,
              r.resolved_by, r.resolved_at, r.created_at"""

# Whether $2 (the viewer, or NULL) may see room r: private rooms only for members, or $3 (admin).
_ROOM_SEEN = """r.deleted_at IS NULL AND (r.visibility <> 'private' OR $3
                OR EXISTS (SELECT 1 FROM room_memberships m WHERE m.room_id = r.id AND m.user_id = $2))"""


@dataclass(frozen=True, slots=True)
class Target:
    """What a report is about, as the reporter may see it."""

    user_id: uuid.UUID  # who a sanction falls on: the user, the message's author, the room's owner
    room_id: uuid.UUID | None
    message_id: uuid.UUID | None


def _report(r: Record) -> dict[str, Any]:
    action = r["action"]
    return {
        "id": str(r["id"]),
        "reporter_id": str(r["reporter_id"]),
        "target_type": r["target_type"],
        "target_id": str(r["target_id"]),
        "reason": r["reason"],
        "description": r["description"],
        "status": r["status"],
        "action": json.loads(action) if isinstance(action, str) else action,
        "resolved_by": str(r["resolved_by"]) if r["resolved_by"] else None,
        "resolved_at": r["resolved_at"].isoformat() if r["resolved_at"] else None,
        "created_at": r["created_at"].isoformat(),
    }


class Reports:
    def __init__(self, db: Database, sanctions: Sanctions) -> None:
        self._db = db
        self._sanctions = sanctions

    async def target(
        self, target_type: str, target_id: uuid.UUID, viewer: uuid.UUID, is_admin: bool
    ) -> Target | None:
        """What a reporter names, if it exists and they may see it (a deleted message or room is gone)."""
        return await self._find(
            target_type, target_id, _ROOM_SEEN, "msg.deleted_at IS NULL", viewer, is_admin
        )

    async def subject(self, target_type: str, target_id: uuid.UUID) -> Target | None:
        """What a report is about, as an admin resolves it: deleted since or not, it reaches its author."""
        return await self._find(target_type, target_id, "TRUE", "TRUE")

    async def _find(
        self, target_type: str, target_id: uuid.UUID, room_seen: str, message_alive: str, *seen_args: Any
    ) -> Target | None:
        if target_type == "user":
            found = await self._db.fetchval("SELECT id FROM users WHERE id = $1", target_id)
            return Target(found, None, None) if found else None
        if target_type == "room":
            r = await self._db.fetchrow(
                f"SELECT r.id, r.owner_id FROM rooms r WHERE r.id = $1 AND {room_seen}", target_id, *seen_args
            )
            return Target(r["owner_id"], r["id"], None) if r else None
        r = await self._db.fetchrow(
            f"""SELECT msg.user_id, msg.room_id FROM messages msg JOIN rooms r ON r.id = msg.room_id
                WHERE msg.id = $1 AND {message_alive} AND {room_seen}""",
            target_id,
            *seen_args,
        )
        return Target(r["user_id"], r["room_id"], target_id) if r else None

    async def create(
        self,
        reporter: uuid.UUID,
        target_type: str,
        target_id: uuid.UUID,
        reason: str,
        description: str | None,
    ) -> dict[str, Any]:
        """A pending report; 409 if this reporter's report of the target is pending, 429 past 20 an hour."""

        async def unit(conn: asyncpg.Connection) -> dict[str, Any]:
            # One reporter's reports are counted and written one at a time.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('report:' || $1::text, 0))", str(reporter)
            )
            row = await conn.fetchrow(
                f"""INSERT INTO reports AS r (reporter_id, target_type, target_id, reason, description)
                    VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (reporter_id, target_type, target_id) WHERE status = 'pending' DO NOTHING
                    RETURNING {_COLUMNS}""",
                reporter,
                target_type,
                target_id,
                reason,
                description,
            )
            if row is None:
                raise Conflict("you already reported this and it is still pending", field="target_id")
            recent = await conn.fetch(
                """SELECT created_at FROM reports
                   WHERE reporter_id = $1 AND created_at > now() - interval '1 hour' ORDER BY created_at""",
                reporter,
            )
            if len(recent) > REPORTS_PER_HOUR:  # the new one is among them
                now: datetime = row["created_at"]
                frees = recent[len(recent) - REPORTS_PER_HOUR - 1]["created_at"] + _HOUR
                retry_ms = max(1, int((frees - now).total_seconds() * 1000))
                raise RateLimited(f"at most {REPORTS_PER_HOUR} reports an hour", retry_after_ms=retry_ms)
            return _report(row)

        return await self._db.run(unit)

    async def get(self, report_id: uuid.UUID) -> dict[str, Any] | None:
        r = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM reports r WHERE r.id = $1", report_id)
        return _report(r) if r else None

    async def page(
        self, status: str, target_type: str | None, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[dict[str, Any]]:
        """The queue: oldest first, so what waited longest is handled first."""
        rows = await self._db.fetch(
            f"""SELECT {_COLUMNS} FROM reports r
                WHERE r.status = $1 AND ($2::text IS NULL OR r.target_type = $2)
                  AND ($3::timestamptz IS NULL OR (r.created_at, r.id) > ($3, $4))
                ORDER BY r.created_at, r.id LIMIT $5""",
            status,
            target_type,
            after[0] if after else None,
            after[1] if after else None,
            limit + 1,
        )
        return [{**_report(r), "_key": (micros(r["created_at"]), r["id"])} for r in rows]

    async def target_detail(self, report: dict[str, Any]) -> dict[str, Any]:
        """The reported thing as an admin sees it: message text, the user's moderation status, the room."""
        kind, target_id = report["target_type"], uuid.UUID(report["target_id"])
        message = room = None
        user_id: Any = target_id
        if kind == "message":
            m = await self._db.fetchrow(
                """SELECT msg.id, msg.room_id, msg.user_id, msg.text, msg.created_at, msg.deleted_at,
                          r.slug, r.name
                   FROM messages msg JOIN rooms r ON r.id = msg.room_id WHERE msg.id = $1""",
                target_id,
            )
            if m is not None:
                user_id = m["user_id"]
                message = {
                    "id": str(m["id"]),
                    "room_id": str(m["room_id"]),
                    "user_id": str(m["user_id"]),
                    "text": m["text"],
                    "created_at": m["created_at"].isoformat(),
                    "deleted_at": m["deleted_at"].isoformat() if m["deleted_at"] else None,
                }
                room = {"id": str(m["room_id"]), "slug": m["slug"], "name": m["name"]}
        elif kind == "room":
            r = await self._db.fetchrow("SELECT id, slug, name, owner_id FROM rooms WHERE id = $1", target_id)
            if r is not None:
                user_id = r["owner_id"]
                room = {"id": str(r["id"]), "slug": r["slug"], "name": r["name"]}
        u = await self._db.fetchrow(
            f"""SELECT {user_ref_columns("u", "p", "u_")} FROM users u
                LEFT JOIN profiles p ON p.user_id = u.id WHERE u.id = $1""",
            user_id,
        )
        user = user_ref(u, "u_") if u is not None else None
        moderation = await self._sanctions.status(user_id) if user is not None else None
        return {"type": kind, "user": user, "moderation": moderation, "message": message, "room": room}

    async def resolve(
        self,
        report_id: uuid.UUID,
        admin_id: uuid.UUID,
        status: str,
        action: dict[str, Any] | None,
        target: Target | None,
    ) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
        """Close a pending report (409 if it is not), with its sanction, log row and the reporter's notice.

        A ban, mute or warn is applied and mirrored here, in the report's transaction; deleting a
        message is the room's own op, sent by the caller before this.
        """
        now = self._sanctions.now()
        kind = action["type"] if action else None

        async def unit(
            conn: asyncpg.Connection,
        ) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]], SanctionRow | None]:
            current = await conn.fetchval("SELECT status FROM reports WHERE id = $1 FOR UPDATE", report_id)
            if current != "pending":
                raise Conflict(f"this report is already {current}", field="status")
            sanction = None
            if kind in ("ban", "mute", "warn"):
                assert action is not None and target is not None
                sanction_kind: SanctionKind = kind
                sanction = await apply_sanction(
                    conn,
                    actor_id=admin_id,
                    user_id=target.user_id,
                    kind=sanction_kind,
                    now=now,
                    seconds=action.get("seconds"),
                    reason=action.get("reason"),
                    details={"report_id": str(report_id)},
                )
            row = await conn.fetchrow(
                f"""UPDATE reports r SET status = $2, action = $3::jsonb, resolved_by = $4, resolved_at = $5
                    WHERE r.id = $1 RETURNING {_COLUMNS}""",
                report_id,
                status,
                json.dumps(action) if action else None,
                admin_id,
                now,
            )
            assert row is not None
            await conn.execute(
                """INSERT INTO moderation_log (room_id, actor_id, action, target_user_id, target_message_id,
                                              reason, details, created_at)
                   VALUES ($1, $2, 'resolve_report', $3, $4, $5, $6::jsonb, $7)""",
                target.room_id if target else None,
                admin_id,
                target.user_id if target else None,
                target.message_id if target else None,
                action.get("reason") if action else None,
                json.dumps({"report_id": str(report_id), "status": status, "action": kind}),
                now,
            )
            notes = await create_notifications(
                conn,
                [
                    (
                        str(row["reporter_id"]),
                        "report_resolved",
                        str(admin_id),
                        {"report_id": str(report_id), "status": status},
                    )
                ],
            )
            return _report(row), notes, sanction

        report, notes, sanction = await self._db.run(unit)
        if sanction is not None:
            self._sanctions.committed(sanction)
        return report, notes
