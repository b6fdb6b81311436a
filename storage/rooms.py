"""Rooms, memberships, bans, tracks and chat history."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from protocol.errors import Conflict, Forbidden
from protocol.events import Event
from protocol.tracks import TrackSpec
from storage.database import Database, Record, micros
from storage.notifications import create_notifications
from storage.refs import TRACK_COLUMNS, track

_SLUG_CHARS = re.compile(r"[^a-z0-9]+")
# Paths beside /api/v1/rooms/:idOrSlug: a room with one of these slugs could not be read by it.
RESERVED_SLUGS = frozenset({"me", "mine", "discover", "trending"})


def slugify(name: str) -> str:
    slug = _SLUG_CHARS.sub("-", name.lower()).strip("-")[:50].strip("-")
    if slug in RESERVED_SLUGS:
        return f"room-{slug}"
    return slug if len(slug) >= 2 else f"room-{slug}".strip("-")


def _like_literal(text: str) -> str:
    """``text`` matched literally inside a LIKE pattern (``%`` and ``_`` are not wildcards)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def room_dict(r: Record) -> dict[str, Any]:
    """A room row in the shape the live protocol and the REST API share."""
    return {
        "id": str(r["id"]),
        "slug": r["slug"],
        "name": r["name"],
        "type": r["type"],
        "visibility": r["visibility"],
        "owner_id": str(r["owner_id"]),
        "description": r["description"],
        "genres": list(r["genres"]),
        "tags": list(r["tags"]),
        "pinned_track": r["pinned_track"],
        "created_at": r["created_at"].isoformat(),
    }


def is_private(room: dict[str, Any]) -> bool:
    """Private rooms admit members only (type or visibility private)."""
    return bool(room["type"] == "private" or room["visibility"] == "private")


def _request_dict(r: Record) -> dict[str, Any]:
    return {
        "id": str(r["id"]),
        "room_id": str(r["room_id"]),
        "user_id": str(r["user_id"]),
        "message": r["message"],
        "status": r["status"],
        "reason": r["reason"],
        "created_at": r["created_at"].isoformat(),
        "decided_at": r["decided_at"].isoformat() if r["decided_at"] else None,
    }


@dataclass(frozen=True)
class RoomSeed:
    """What a room actor starts from: the room row, the newest snapshot, the events after it."""

    room: dict[str, Any]
    pinned_message_ids: list[str]
    snapshot: dict[str, Any] | None
    events: list[Event]


_ROOM_COLUMNS = (
    "id, slug, name, description, type, visibility, owner_id, genres, tags, pinned_track, "
    "pinned_message_ids, created_at"
)


async def _insert_room(conn: asyncpg.Connection, owner_id: uuid.UUID, fields: dict[str, Any]) -> Record:
    slug = fields.pop("slug", None)
    explicit = slug is not None
    if slug in RESERVED_SLUGS:
        raise Conflict("that slug names another path; choose another", field="slug")
    slug = slug or slugify(fields["name"])
    for attempt in range(5):
        candidate = slug if attempt == 0 else f"{slug[:50]}-{secrets.token_hex(3)}"
        try:
            async with conn.transaction():
                row = await conn.fetchrow(
                    f"""INSERT INTO rooms (slug, name, description, type, visibility, owner_id, genres, tags)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_ROOM_COLUMNS}""",
                    candidate,
                    fields["name"],
                    fields.get("description"),
                    fields["type"],
                    fields["visibility"],
                    owner_id,
                    fields.get("genres", []),
                    fields.get("tags", []),
                )
        except asyncpg.UniqueViolationError:
            if explicit:
                raise Conflict("that slug is taken", field="slug") from None
            continue
        assert row is not None
        await conn.execute(
            "INSERT INTO room_memberships (room_id, user_id, role) VALUES ($1, $2, 'owner')",
            row["id"],
            owner_id,
        )
        return row
    raise Conflict("could not find a free slug; give one", field="slug")


async def _load_seed(conn: asyncpg.Connection, room_id: uuid.UUID) -> RoomSeed | None:
    room = await conn.fetchrow(
        f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE id = $1 AND deleted_at IS NULL", room_id
    )
    if room is None:
        return None
    snap = await conn.fetchrow("SELECT seq, state FROM room_snapshots WHERE room_id = $1", room_id)
    after = snap["seq"] if snap is not None else 0
    rows = await conn.fetch(
        "SELECT seq, name, payload, at FROM room_events WHERE room_id = $1 AND seq > $2 ORDER BY seq",
        room_id,
        after,
    )
    return RoomSeed(
        room=room_dict(room),
        pinned_message_ids=[str(m) for m in room["pinned_message_ids"]],
        snapshot=snap["state"] if snap is not None else None,
        events=[Event.from_journal(r["name"], r["seq"], _ms(r["at"]), r["payload"]) for r in rows],
    )


def _message_select(reader: str | None = None) -> str:
    """The select of messages with their reactions. With ``reader`` (the SQL parameter of a user
    id, or of null): also ``hidden``, whether the reader blocks the author, and the reactions
    without those of anyone the reader blocks (PROTOCOL.md "Personal blocks")."""
    hidden, unblocked = "", ""
    if reader is not None:
        hidden = f""", EXISTS (SELECT 1 FROM user_blocks b
                               WHERE b.blocker_id = {reader} AND b.blocked_id = m.user_id) AS hidden"""
        unblocked = f"""AND NOT EXISTS (SELECT 1 FROM user_blocks b
                                        WHERE b.blocker_id = {reader} AND b.blocked_id = r.user_id)"""
    return f"""SELECT m.id, m.user_id, u.username, m.text, m.parent_id, m.mentions, m.seq,
                      m.created_at, m.deleted_at IS NOT NULL AS deleted, {TRACK_COLUMNS},
                      coalesce((SELECT jsonb_object_agg(emoji, users) FROM (
                          SELECT emoji, jsonb_agg(r.user_id::text ORDER BY r.created_at, r.user_id) AS users
                          FROM message_reactions r WHERE r.message_id = m.id {unblocked} GROUP BY emoji) g),
                          '{{}}') AS reactions{hidden}
               FROM messages m JOIN users u ON u.id = m.user_id
               LEFT JOIN track_refs t ON t.id = m.track_ref_id"""


_MESSAGE_SELECT = _message_select()
_HISTORY_SELECT = _message_select("$4")


async def _load_messages(conn: asyncpg.Connection, room_id: uuid.UUID, ids: list[uuid.UUID]) -> list[Record]:
    return list(
        await conn.fetch(f"{_MESSAGE_SELECT} WHERE m.room_id = $1 AND m.id = ANY($2::uuid[])", room_id, ids)
    )


async def _messages_page(
    conn: asyncpg.Connection, room_id: uuid.UUID, limit: int, before: int | None, reader: uuid.UUID | None
) -> list[Record]:
    """Up to ``limit + 1`` live messages, newest first by seq, with seq below ``before``, as
    ``reader`` sees them (``hidden``: by someone they block)."""
    return list(
        await conn.fetch(
            f"""{_HISTORY_SELECT}
                WHERE m.room_id = $1 AND m.deleted_at IS NULL AND ($2::bigint IS NULL OR m.seq < $2)
                ORDER BY m.seq DESC LIMIT $3""",
            room_id,
            before,
            limit + 1,
            reader,
        )
    )


# The room, and the viewer's role in it (null without a viewer or a membership).
_ROOM_FOR_VIEWER = f"""SELECT {_ROOM_COLUMNS},
                              (SELECT role FROM room_memberships WHERE room_id = $1 AND user_id = $2)
                                  AS viewer_role
                       FROM rooms WHERE id = $1 AND deleted_at IS NULL"""


def _room_with_pins(row: Record) -> dict[str, Any]:
    room = room_dict(row)
    room["pinned_message_ids"] = [str(m) for m in row["pinned_message_ids"]]
    return room


async def room_for_viewer(
    conn: asyncpg.Connection, room_id: uuid.UUID, viewer: uuid.UUID | None
) -> tuple[dict[str, Any], str | None] | None:
    """The room and the viewer's role in it (None: not a member, or no viewer), in one query,
    for a unit of work that reads more of the room (one bridge crossing in all)."""
    row = await conn.fetchrow(_ROOM_FOR_VIEWER, room_id, viewer)
    return (_room_with_pins(row), row["viewer_role"]) if row is not None else None


def _message_out(r: Record) -> dict[str, Any]:
    return {**message_state(r), "at_us": micros(r["created_at"])}


def message_state(r: Record) -> dict[str, Any]:
    """A message row in the shape of ``actors.room_state.Message.to_dict``."""
    reactions = r["reactions"]
    if isinstance(reactions, str):
        reactions = json.loads(reactions)
    return {
        "id": str(r["id"]),
        "user_id": str(r["user_id"]),
        "username": r["username"],
        "text": r["text"],
        "reply_to": str(r["parent_id"]) if r["parent_id"] else None,
        "track": track(r) if r["track_id"] is not None else None,
        "mentions": [str(m) for m in r["mentions"]],
        "at": _ms(r["created_at"]),
        "seq": r["seq"],
        "reactions": reactions,
        "deleted": r["deleted"],
    }


class Rooms:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, owner_id: uuid.UUID, **fields: Any) -> dict[str, Any]:
        """Insert a room with its owner's membership; a taken explicit slug is a Conflict."""
        row = await self._db.run(_insert_room, owner_id, fields)
        room = room_dict(row)
        room["pinned_message_ids"] = []
        return room

    async def get(self, room_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self._db.fetchrow(
            f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE id = $1 AND deleted_at IS NULL", room_id
        )
        return _room_with_pins(row) if row is not None else None

    async def get_for(
        self, room_id: uuid.UUID, viewer: uuid.UUID | None
    ) -> tuple[dict[str, Any], str | None] | None:
        """The room and the viewer's role in it (None: not a member, or no viewer), in one query."""
        row = await self._db.fetchrow(_ROOM_FOR_VIEWER, room_id, viewer)
        return (_room_with_pins(row), row["viewer_role"]) if row is not None else None

    async def history_for(
        self,
        room_id: uuid.UUID,
        viewer: uuid.UUID | None,
        may_see: Callable[[dict[str, Any], str | None], bool],
        limit: int,
        before: int | None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]] | None] | None:
        """The room and a page of its history if ``may_see(room, the viewer's role)``, else the room
        and None; None without the room. One bridge crossing.

        The page: up to ``limit + 1`` live messages, newest first by the room's seq (the order
        everyone saw them live; one batch shares a timestamp), with seq below ``before``; each
        ``hidden`` when the viewer blocks its author, and without the reactions of those they block."""

        async def unit(conn: asyncpg.Connection) -> tuple[dict[str, Any], list[Record] | None] | None:
            found = await room_for_viewer(conn, room_id, viewer)
            if found is None:
                return None
            room, role = found
            if not may_see(room, role):
                return room, None
            return room, await _messages_page(conn, room_id, limit, before, viewer)

        found = await self._db.run_outside_transaction(unit)
        if found is None:
            return None
        room, messages = found
        return room, None if messages is None else [
            {**_message_out(m), "hidden": m["hidden"]} for m in messages
        ]

    async def message_room(self, message_id: uuid.UUID) -> uuid.UUID | None:
        """The room of a message that exists and is not deleted."""
        found: uuid.UUID | None = await self._db.fetchval(
            "SELECT room_id FROM messages WHERE id = $1 AND deleted_at IS NULL", message_id
        )
        return found

    async def track_exists(self, track_id: uuid.UUID) -> bool:
        return bool(await self._db.fetchval("SELECT true FROM track_refs WHERE id = $1", track_id))

    async def id_by_slug(self, slug: str) -> uuid.UUID | None:
        found: uuid.UUID | None = await self._db.fetchval(
            "SELECT id FROM rooms WHERE slug = lower($1) AND deleted_at IS NULL", slug
        )
        return found

    async def leave(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Drop a non-owner membership; False if there was none."""
        status: str = await self._db.execute(
            "DELETE FROM room_memberships WHERE room_id = $1 AND user_id = $2 AND role <> 'owner'",
            room_id,
            user_id,
        )
        return status.endswith(" 1")

    async def set_role(self, room_id: uuid.UUID, user_id: uuid.UUID, role: str, by: uuid.UUID) -> bool:
        """Make a member a moderator or back (logged as a moderation act); the owner's role does not
        change this way."""
        changed: int = await self._db.fetchval(
            """WITH changed AS (
                   UPDATE room_memberships SET role = $3
                   WHERE room_id = $1 AND user_id = $2 AND role <> 'owner' RETURNING user_id),
               logged AS (
                   INSERT INTO moderation_log (room_id, actor_id, action, target_user_id, details)
                   SELECT $1, $4, 'set_role', user_id, jsonb_build_object('role', $3::text) FROM changed)
               SELECT count(*) FROM changed""",
            room_id,
            user_id,
            role,
            by,
        )
        return changed == 1

    async def members_page(
        self, room_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[dict[str, Any]]:
        """Members in join order (oldest first), strictly after ``after``."""
        rows = await self._db.fetch(
            """SELECT m.user_id, u.username, p.display_name, p.avatar_url, m.role, m.joined_at
               FROM room_memberships m JOIN users u ON u.id = m.user_id
               LEFT JOIN profiles p ON p.user_id = u.id
               WHERE m.room_id = $1 AND ($2::timestamptz IS NULL OR (m.joined_at, m.user_id) > ($2, $3))
               ORDER BY m.joined_at, m.user_id LIMIT $4""",
            room_id,
            after[0] if after else None,
            after[1] if after else None,
            limit + 1,
        )
        return [
            {
                "user": {
                    "id": str(r["user_id"]),
                    "username": r["username"],
                    "display_name": r["display_name"],
                    "avatar_url": r["avatar_url"],
                },
                "role": r["role"],
                "joined_at": r["joined_at"].isoformat(),
                "_key": (micros(r["joined_at"]), str(r["user_id"])),
            }
            for r in rows
        ]

    async def listed_page(
        self,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        member: uuid.UUID | None = None,
        q: str | None = None,
        room_type: str | None = None,
        genre: str | None = None,
        tag: str | None = None,
    ) -> list[dict[str, Any]]:
        """Rooms newest first: a member's rooms (``member``), or public listed ones matching the filters."""
        rows = await self._db.fetch(
            f"""SELECT {_ROOM_COLUMNS} FROM rooms r
                WHERE r.deleted_at IS NULL
                  AND ($2::uuid IS NULL AND r.visibility = 'public'
                       OR r.id IN (SELECT room_id FROM room_memberships WHERE user_id = $2))
                  AND ($3::text IS NULL OR r.name ILIKE '%' || $9 || '%' OR lower($3) = ANY(r.tags)
                       OR lower($3) = ANY(r.genres))
                  AND ($4::text IS NULL OR r.type = $4)
                  AND ($5::text IS NULL OR lower($5) = ANY(r.genres))
                  AND ($6::text IS NULL OR lower($6) = ANY(r.tags))
                  AND ($7::timestamptz IS NULL OR (r.created_at, r.id) < ($7, $8))
                ORDER BY r.created_at DESC, r.id DESC LIMIT $1""",
            limit + 1,
            member,
            q,
            room_type,
            genre,
            tag,
            after[0] if after else None,
            after[1] if after else None,
            _like_literal(q) if q is not None else None,
        )
        out = []
        for r in rows:
            room = room_dict(r)
            room["pinned_message_ids"] = [str(m) for m in r["pinned_message_ids"]]
            room["_key"] = (micros(r["created_at"]), room["id"])
            out.append(room)
        return out

    async def recent_activity(self, since: datetime, limit: int) -> dict[str, int]:
        """Chat messages per public listed room since ``since``, the busiest first."""
        rows = await self._db.fetch(
            """SELECT m.room_id, count(*) AS n FROM messages m JOIN rooms r ON r.id = m.room_id
               WHERE m.created_at >= $1 AND r.deleted_at IS NULL AND r.visibility = 'public'
               GROUP BY m.room_id ORDER BY n DESC LIMIT $2""",
            since,
            limit,
        )
        return {str(r["room_id"]): r["n"] for r in rows}

    async def public_rooms(self, ids: list[str]) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            f"""SELECT {_ROOM_COLUMNS} FROM rooms
                WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL AND visibility = 'public'""",
            ids,
        )
        out = []
        for r in rows:
            room = room_dict(r)
            room["pinned_message_ids"] = [str(m) for m in r["pinned_message_ids"]]
            out.append(room)
        return out

    async def swap_owner(self, room_id: uuid.UUID, old: uuid.UUID, new: uuid.UUID) -> bool:
        """The new owner (already a member) becomes owner, the old one a moderator; False if not a member."""

        async def unit(conn: asyncpg.Connection) -> bool:
            moved: str = await conn.execute(
                "UPDATE room_memberships SET role = 'owner' WHERE room_id = $1 AND user_id = $2", room_id, new
            )
            if not moved.endswith(" 1"):
                return False
            await conn.execute(
                "UPDATE room_memberships SET role = 'moderator' WHERE room_id = $1 AND user_id = $2",
                room_id,
                old,
            )
            await conn.execute(
                "UPDATE rooms SET owner_id = $2, updated_at = now() WHERE id = $1", room_id, new
            )
            return True

        return await self._db.run(unit)

    async def enter(self, room: dict[str, Any], user_id: uuid.UUID, *, is_admin: bool) -> str:
        """The role a user takes part in the room as, socket or REST alike.

        Banned users are refused before anything is written. A non-private room
        makes them a member on first entry (recorded once); a private one admits
        members only, and site admins, who look in without joining.
        """
        room_id = uuid.UUID(room["id"])
        if await self.is_banned(room_id, user_id):
            raise Forbidden("you are banned from this room")
        role = await self.role_of(room_id, user_id)
        if role is not None:
            return role
        if is_private(room):
            if not is_admin:
                raise Forbidden("this room is private; ask to join")
            return "member"
        return await self.join(room_id, user_id)

    async def add_member(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Make the user a member (an invite); False if they already were."""
        status: str = await self._db.execute(
            "INSERT INTO room_memberships (room_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            room_id,
            user_id,
        )
        return status.endswith(" 1")

    async def request_to_join(
        self, room_id: uuid.UUID, user_id: uuid.UUID, message: str | None
    ) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
        """A pending request (a second pending one is a Conflict), and the ``join_request``
        notifications of the room's owner and moderators, written with it."""

        async def unit(conn: asyncpg.Connection) -> tuple[Record, list[tuple[str, dict[str, Any]]]]:
            row: Record | None = await conn.fetchrow(
                """INSERT INTO room_join_requests (room_id, user_id, message) VALUES ($1, $2, $3)
                   RETURNING id, room_id, user_id, message, status, reason, created_at, decided_at""",
                room_id,
                user_id,
                message,
            )
            assert row is not None
            deciders = await conn.fetch(
                """SELECT user_id FROM room_memberships WHERE room_id = $1 AND role IN ('owner', 'moderator')
                   ORDER BY joined_at""",
                room_id,
            )
            about = {"room_id": str(room_id)}
            notes = await create_notifications(
                conn, [(str(d["user_id"]), "join_request", str(user_id), about) for d in deciders]
            )
            return row, notes

        try:
            row, notes = await self._db.run(unit)
        except asyncpg.UniqueViolationError:
            raise Conflict("you already asked to join this room") from None
        return _request_dict(row), notes

    async def requests_page(
        self, room_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            """SELECT id, room_id, user_id, message, status, reason, created_at, decided_at
               FROM room_join_requests
               WHERE room_id = $1 AND status = 'pending'
                 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
               ORDER BY created_at, id LIMIT $4""",
            room_id,
            after[0] if after else None,
            after[1] if after else None,
            limit + 1,
        )
        return [{**_request_dict(r), "_key": (micros(r["created_at"]), str(r["id"]))} for r in rows]

    async def pending_request_id(self, room_id: uuid.UUID, user_id: uuid.UUID) -> uuid.UUID | None:
        """The id of the user's pending request to join the room, if there is one."""
        found: uuid.UUID | None = await self._db.fetchval(
            "SELECT id FROM room_join_requests WHERE room_id = $1 AND user_id = $2 AND status = 'pending'",
            room_id,
            user_id,
        )
        return found

    async def decide_request(
        self, room_id: uuid.UUID, request_id: uuid.UUID, by: uuid.UUID, approve: bool, reason: str | None
    ) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]] | None:
        """Approve (the user becomes a member, in the same transaction) or deny a pending request;
        the asker's ``join_request_decision`` notification is written with it."""

        async def unit(conn: asyncpg.Connection) -> tuple[Record, list[tuple[str, dict[str, Any]]]] | None:
            row: Record | None = await conn.fetchrow(
                """UPDATE room_join_requests SET status = $4, reason = $5, decided_by = $3, decided_at = now()
                   WHERE id = $2 AND room_id = $1 AND status = 'pending'
                   RETURNING id, room_id, user_id, message, status, reason, created_at, decided_at""",
                room_id,
                request_id,
                by,
                "approved" if approve else "denied",
                reason,
            )
            if row is None:
                return None
            if approve:
                await conn.execute(
                    "INSERT INTO room_memberships (room_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    room_id,
                    row["user_id"],
                )
            await conn.execute(
                """INSERT INTO moderation_log (room_id, actor_id, action, target_user_id, reason, details)
                   VALUES ($1, $2, $3, $4, $5, jsonb_build_object('request_id', $6::text))""",
                room_id,
                by,
                "approve_join" if approve else "deny_join",
                row["user_id"],
                reason,
                str(request_id),
            )
            about = {"room_id": str(room_id), "approved": approve}
            notes = await create_notifications(
                conn, [(str(row["user_id"]), "join_request_decision", str(by), about)]
            )
            return row, notes

        decided = await self._db.run(unit)
        return (_request_dict(decided[0]), decided[1]) if decided is not None else None

    async def target_role(self, room_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
        """The role a moderation op's target has here ("member" when none); None if no such user."""
        role: str | None = await self._db.fetchval(
            """SELECT coalesce(m.role, 'member') FROM users u
               LEFT JOIN room_memberships m ON m.room_id = $1 AND m.user_id = u.id
               WHERE u.id = $2""",
            room_id,
            user_id,
        )
        return role

    async def role_of(self, room_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
        role: str | None = await self._db.fetchval(
            "SELECT role FROM room_memberships WHERE room_id = $1 AND user_id = $2", room_id, user_id
        )
        return role

    async def join(self, room_id: uuid.UUID, user_id: uuid.UUID) -> str:
        """Make the user a member if they are not one (recorded once); returns their role."""
        role: str = await self._db.fetchval(
            """WITH ins AS (INSERT INTO room_memberships (room_id, user_id) VALUES ($1, $2)
                            ON CONFLICT DO NOTHING RETURNING role)
               SELECT role FROM ins UNION ALL
               SELECT role FROM room_memberships WHERE room_id = $1 AND user_id = $2 LIMIT 1""",
            room_id,
            user_id,
        )
        return role

    async def is_banned(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        banned: bool = await self._db.fetchval(
            """SELECT EXISTS (SELECT 1 FROM room_bans WHERE room_id = $1 AND user_id = $2
                              AND (until IS NULL OR until > now()))""",
            room_id,
            user_id,
        )
        return banned

    async def load_seed(self, room_id: uuid.UUID) -> RoomSeed | None:
        return await self._db.run(_load_seed, room_id)

    async def with_live_sessions(self) -> list[str]:
        """Rooms whose DJ session has not ended: their actors run even with nobody connected."""
        rows = await self._db.fetch(
            """SELECT s.room_id FROM dj_sessions s JOIN rooms r ON r.id = s.room_id
               WHERE s.ended_at IS NULL AND r.deleted_at IS NULL"""
        )
        return [str(r["room_id"]) for r in rows]

    async def events_after(self, room_id: uuid.UUID, since: int, limit: int) -> list[Event]:
        rows = await self._db.fetch(
            """SELECT seq, name, payload, at FROM room_events WHERE room_id = $1 AND seq > $2
               ORDER BY seq LIMIT $3""",
            room_id,
            since,
            limit,
        )
        return [Event.from_journal(r["name"], r["seq"], _ms(r["at"]), r["payload"]) for r in rows]

    async def upsert_track(self, spec: TrackSpec) -> dict[str, Any]:
        """The track's row, created on first sight; (provider, provider_id) is the identity."""
        row = await self._db.fetchrow(
            """INSERT INTO track_refs (provider, provider_id, title, artist, duration_ms, artwork_url)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (provider, provider_id) DO UPDATE SET provider = excluded.provider
               RETURNING id, provider, provider_id, title, artist, duration_ms, artwork_url""",
            spec.provider,
            spec.provider_id,
            spec.title,
            spec.artist,
            spec.duration_ms,
            spec.artwork_url,
        )
        assert row is not None
        return {**dict(row), "id": str(row["id"])}

    async def user_ids_by_username(self, usernames: list[str], room_id: uuid.UUID) -> list[str]:
        """Ids of the named users who exist and can see the room (a private one: its members),
        in the order given."""
        if not usernames:
            return []
        rows = await self._db.fetch(
            """SELECT u.id, u.username FROM users u, rooms r
               WHERE u.username = ANY($1::text[]) AND r.id = $2
                 AND ((r.type <> 'private' AND r.visibility <> 'private')
                      OR EXISTS (SELECT 1 FROM room_memberships m
                                 WHERE m.room_id = r.id AND m.user_id = u.id))""",
            [u.lower() for u in usernames],
            room_id,
        )
        by_name = {r["username"]: str(r["id"]) for r in rows}
        return [by_name[u.lower()] for u in usernames if u.lower() in by_name]

    async def messages_by_id(self, room_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[str, dict[str, Any]]:
        rows = await self._db.run_outside_transaction(_load_messages, room_id, ids)
        return {str(r["id"]): _message_out(r) for r in rows}
