"""Nodes and room leases: who is alive, and which node owns each live room (ARCHITECTURE.md
"Many processes and machines").

Every time comes from Postgres's ``now()``, so machines with skewed clocks still agree on
when a lease has expired. A claim bumps the room's epoch; the journal fences each batch on
it (``storage/journal.py``), so a stale owner can never commit after a takeover.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.database import Database

_CLAIM = """
    INSERT INTO room_leases (room_id, node_id, epoch, expires_at)
    SELECT $1, $2, 1, now() + make_interval(secs => $3)
    WHERE EXISTS (SELECT 1 FROM rooms WHERE id = $1)
    ON CONFLICT (room_id) DO UPDATE
        SET node_id = EXCLUDED.node_id, epoch = room_leases.epoch + 1, expires_at = EXCLUDED.expires_at,
            seq = 0, sockets = 0, listeners = 0, session = NULL
        WHERE room_leases.expires_at <= now() OR room_leases.node_id = EXCLUDED.node_id
    RETURNING epoch"""

# One statement per node every TTL/3: its heartbeat, and every lease it still holds renewed
# with what it sees of the room. The rooms it believes it owns but no longer does are missing
# from the result: a takeover happened while it was away.
_RENEW = """
    WITH beat AS (
        UPDATE nodes SET heartbeat_at = now(), sockets = $3 WHERE node_id = $1
    )
    UPDATE room_leases l
       SET expires_at = now() + make_interval(secs => $2),
           seq = s.seq, sockets = s.sockets, listeners = s.listeners, session = s.session::jsonb
      FROM unnest($4::uuid[], $5::bigint[], $6::bigint[], $7::int[], $8::int[], $9::text[])
           AS s(room_id, epoch, seq, sockets, listeners, session)
     WHERE l.room_id = s.room_id AND l.node_id = $1 AND l.epoch = s.epoch
    RETURNING l.room_id::text"""


@dataclass(frozen=True)
class Owner:
    room_id: str
    node_id: str
    epoch: int
    expires_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "room_id": self.room_id,
            "node_id": self.node_id,
            "epoch": self.epoch,
            "expires_at": self.expires_at.isoformat(),
        }


@dataclass(frozen=True)
class RoomSeen:
    """What an owner sees of one of its rooms, written with each renewal."""

    room_id: str
    epoch: int
    seq: int
    sockets: int
    listeners: int
    session: dict[str, Any] | None


class Leases:
    def __init__(self, db: Database, node_id: str, ttl_s: float) -> None:
        self._db = db
        self.node_id = node_id
        self.ttl_s = ttl_s

    async def register(self) -> None:
        await self._db.execute(
            """INSERT INTO nodes (node_id, host, pid) VALUES ($1, $2, $3)
               ON CONFLICT (node_id) DO UPDATE
                   SET host = EXCLUDED.host, pid = EXCLUDED.pid, started_at = now(), heartbeat_at = now(),
                       sockets = 0, stopped_at = NULL""",
            uuid.UUID(self.node_id),
            socket.gethostname(),
            os.getpid(),
        )

    async def claim(self, room_id: str) -> int | None:
        """Take the room if its lease is free, expired, never existed or ours (an actor of ours
        restarting): the new epoch; else None (another node holds it, or the room is gone)."""
        epoch = await self._db.fetchval(_CLAIM, uuid.UUID(room_id), uuid.UUID(self.node_id), self.ttl_s)
        return int(epoch) if epoch is not None else None

    async def renew(self, rooms: list[RoomSeen], sockets: int) -> set[str]:
        """Renew every lease held; the rooms among ``rooms`` still held."""
        rows = await self._db.fetch(
            _RENEW,
            uuid.UUID(self.node_id),
            self.ttl_s,
            sockets,
            [uuid.UUID(r.room_id) for r in rooms],
            [r.epoch for r in rooms],
            [r.seq for r in rooms],
            [r.sockets for r in rooms],
            [r.listeners for r in rooms],
            [json.dumps(r.session) if r.session is not None else None for r in rooms],
        )
        return {r[0] for r in rows}

    async def release(self, room_id: str, epoch: int) -> None:
        """Hand the room back at once (its actor stopped): anyone may claim it now."""
        await self._db.execute(
            """UPDATE room_leases SET expires_at = now() - interval '1 millisecond'
               WHERE room_id = $1 AND node_id = $2 AND epoch = $3""",
            uuid.UUID(room_id),
            uuid.UUID(self.node_id),
            epoch,
        )

    async def stop(self) -> None:
        """A clean stop: every lease back, and the node marked gone."""
        await self._db.execute(
            """WITH gone AS (UPDATE nodes SET stopped_at = now() WHERE node_id = $1)
               UPDATE room_leases SET expires_at = now() - interval '1 millisecond' WHERE node_id = $1""",
            uuid.UUID(self.node_id),
        )

    async def owner(self, room_id: str) -> Owner | None:
        """The room's live owner (a lease not expired), if any."""
        row = await self._db.fetchrow(
            """SELECT room_id::text, node_id::text, epoch, expires_at FROM room_leases
               WHERE room_id = $1 AND expires_at > now()""",
            uuid.UUID(room_id),
        )
        return Owner(row[0], row[1], row[2], row[3]) if row is not None else None

    async def orphaned_sessions(self) -> list[str]:
        """Rooms with a live DJ session whose lease is free or expired: nobody plays their tracks."""
        rows = await self._db.fetch(
            """SELECT DISTINCT s.room_id::text FROM dj_sessions s
               JOIN rooms r ON r.id = s.room_id AND r.deleted_at IS NULL
               LEFT JOIN room_leases l ON l.room_id = s.room_id
               WHERE s.ended_at IS NULL AND (l.room_id IS NULL OR l.expires_at <= now())"""
        )
        return [r[0] for r in rows]

    async def nodes(self) -> list[dict[str, Any]]:
        """The nodes alive now (a heartbeat within three TTLs), with the rooms each owns."""
        rows = await self._db.fetch(
            """SELECT n.node_id::text, n.host, n.pid, n.started_at, n.heartbeat_at, n.sockets,
                      (SELECT count(*) FROM room_leases l
                        WHERE l.node_id = n.node_id AND l.expires_at > now()) AS rooms_owned
               FROM nodes n
               WHERE n.stopped_at IS NULL AND n.heartbeat_at > now() - make_interval(secs => $1)
               ORDER BY n.started_at, n.node_id""",
            3 * self.ttl_s,
        )
        return [
            {
                "node_id": r["node_id"],
                "host": r["host"],
                "pid": r["pid"],
                "started_at": r["started_at"].isoformat(),
                "heartbeat_at": r["heartbeat_at"].isoformat(),
                "rooms_owned": r["rooms_owned"],
                "sockets": r["sockets"],
            }
            for r in rows
        ]

    async def live_rooms(self, after: tuple[int, str] | None, limit: int) -> list[dict[str, Any]]:
        """Rooms with a live owner, most listeners first (ties by room id); keyset-paged."""
        rows = await self._db.fetch(
            """SELECT l.room_id::text, r.name, l.node_id::text, l.epoch, l.seq, l.sockets, l.listeners,
                      l.session::text AS session
               FROM room_leases l JOIN rooms r ON r.id = l.room_id
               WHERE l.expires_at > now()
                 AND ($1::int IS NULL OR (l.listeners, l.room_id::text) < ($1::int, $2::text))
               ORDER BY l.listeners DESC, l.room_id::text DESC
               LIMIT $3""",
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        return [
            {
                "room_id": r["room_id"],
                "name": r["name"],
                "node_id": r["node_id"],
                "epoch": r["epoch"],
                "seq": r["seq"],
                "sockets": r["sockets"],
                "listeners": r["listeners"],
                "session": json.loads(r["session"]) if r["session"] is not None else None,
            }
            for r in rows
        ]

    async def listeners(self) -> dict[str, int]:
        """Listeners per live room, as the owners last wrote them (for room listings)."""
        rows = await self._db.fetch(
            "SELECT room_id::text, listeners FROM room_leases WHERE expires_at > now() AND listeners > 0"
        )
        return {r[0]: r[1] for r in rows}
