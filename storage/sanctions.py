"""Site-wide sanctions on a user (ban, mute, warn): kept in Postgres, mirrored in this process's memory.

Every REST request with a token, every socket upgrade and every ``chat.send`` asks
whether its user is banned or muted. Those answers come from the in-memory mirror
(a dict look-up), which is loaded at start and updated right after each commit that
changes a sanction, before the call that made it returns. Nothing expires by a job:
a ban or mute is in force while its end lies ahead of :attr:`Sanctions.clock`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg

from protocol.errors import Forbidden
from storage.database import Database, Record

SanctionKind = Literal["ban", "unban", "mute", "unmute", "warn"]


@dataclass(frozen=True, slots=True)
class Ban:
    until: datetime | None  # None: for good


@dataclass(frozen=True, slots=True)
class SanctionRow:
    """A user's sanctions as stored (what may be in force, before the clock is asked)."""

    user_id: str
    banned_at: datetime | None
    banned_until: datetime | None
    muted_until: datetime | None
    warn_count: int

    @classmethod
    def of(cls, r: Record) -> SanctionRow:
        return cls(str(r["user_id"]), r["banned_at"], r["banned_until"], r["muted_until"], r["warn_count"])

    def ban_in_force(self, now: datetime) -> bool:
        return self.banned_at is not None and (self.banned_until is None or self.banned_until > now)

    def mute_in_force(self, now: datetime) -> bool:
        return self.muted_until is not None and self.muted_until > now


async def apply_sanction(
    conn: asyncpg.Connection,
    *,
    actor_id: uuid.UUID,
    user_id: uuid.UUID,
    kind: SanctionKind,
    now: datetime,
    seconds: int | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> SanctionRow:
    """Change one user's sanctions and write the act to the moderation log, in the caller's transaction."""
    until = now + timedelta(seconds=seconds) if seconds is not None else None
    statements: dict[SanctionKind, str] = {
        "ban": "banned_at = $2, banned_until = $3, ban_reason = $4",
        "unban": "banned_at = NULL, banned_until = NULL, ban_reason = NULL",
        "mute": "muted_until = $3, mute_reason = $4",
        "unmute": "muted_until = NULL, mute_reason = NULL",
        "warn": "warn_count = user_sanctions.warn_count + 1",
    }
    fresh = {
        "ban": "($1, $2, $3, $4, NULL, NULL, 0)",
        "mute": "($1, NULL, NULL, NULL, $3, $4, 0)",
        "warn": "($1, NULL, NULL, NULL, NULL, NULL, 1)",
        "unban": "($1, NULL, NULL, NULL, NULL, NULL, 0)",
        "unmute": "($1, NULL, NULL, NULL, NULL, NULL, 0)",
    }[kind]
    row = await conn.fetchrow(
        # Every act passes the same four parameters; the casts type those it does not use.
        f"""WITH p AS (SELECT $3::timestamptz AS until, $4::text AS reason)
            INSERT INTO user_sanctions AS user_sanctions
                   (user_id, banned_at, banned_until, ban_reason, muted_until, mute_reason, warn_count)
            VALUES {fresh}
            ON CONFLICT (user_id) DO UPDATE SET {statements[kind]}, updated_at = $2
            RETURNING user_id, banned_at, banned_until, muted_until, warn_count""",
        user_id,
        now,
        until,
        reason,
    )
    meta = {"scope": "site", **({"seconds": seconds} if seconds is not None else {}), **(details or {})}
    await conn.execute(
        """INSERT INTO moderation_log (room_id, actor_id, action, target_user_id, reason, details, created_at)
           VALUES (NULL, $1, $2, $3, $4, $5::jsonb, $6)""",
        actor_id,
        kind,
        user_id,
        reason,
        json.dumps(meta),
        now,
    )
    assert row is not None
    return SanctionRow.of(row)


class Sanctions:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self.clock = clock  # seconds since the epoch; tests move it to expire sanctions
        self._rows: dict[str, SanctionRow] = {}
        # Told of each change committed here (the other nodes reload the user from Postgres).
        self.announce: Callable[[str], None] | None = None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def load(self) -> None:
        """Mirror every stored ban and mute (those long over are dropped by the clock, not here)."""
        rows = await self._db.fetch(
            """SELECT user_id, banned_at, banned_until, muted_until, warn_count FROM user_sanctions
               WHERE banned_at IS NOT NULL OR muted_until IS NOT NULL"""
        )
        self._rows = {str(r["user_id"]): SanctionRow.of(r) for r in rows}

    async def reload(self, user_id: str) -> None:
        """Take one user's stored sanctions into the mirror again (another node changed them)."""
        r = await self._db.fetchrow(
            """SELECT user_id, banned_at, banned_until, muted_until, warn_count FROM user_sanctions
               WHERE user_id = $1""",
            uuid.UUID(user_id),
        )
        self.remember(SanctionRow.of(r) if r is not None else SanctionRow(user_id, None, None, None, 0))

    def committed(self, row: SanctionRow) -> None:
        """A change this node committed: mirrored here, and announced to the other nodes."""
        self.remember(row)
        if self.announce is not None:
            self.announce(row.user_id)

    def remember(self, row: SanctionRow) -> None:
        """Take a committed change into the mirror."""
        if row.banned_at is None and row.muted_until is None:
            self._rows.pop(row.user_id, None)
        else:
            self._rows[row.user_id] = row

    # ---- what is in force now ----------------------------------------------------------

    def ban_of(self, user_id: str) -> Ban | None:
        row = self._rows.get(user_id)
        return Ban(row.banned_until) if row is not None and row.ban_in_force(self.now()) else None

    def refuse_if_banned(self, user_id: str) -> None:
        """A banned user's login, token and socket upgrade all end here: 403 with ``banned_until``."""
        ban = self.ban_of(user_id)
        if ban is not None:
            until = ban.until.isoformat() if ban.until is not None else None
            raise Forbidden(
                f"this account is banned {'until ' + until if until else 'for good'}",
                details={"banned_until": until},
            )

    def muted_until_ms(self, user_id: str) -> int | None:
        """When the user's site-wide mute ends (epoch ms, as the live protocol counts), if muted now."""
        row = self._rows.get(user_id)
        if row is None or row.muted_until is None or not row.mute_in_force(self.now()):
            return None
        return int(row.muted_until.timestamp() * 1000)

    async def status(self, user_id: uuid.UUID) -> dict[str, Any]:
        """``{user_id, is_banned, banned_until, muted_until, warn_count}`` as in force now."""
        r = await self._db.fetchrow(
            """SELECT user_id, banned_at, banned_until, muted_until, warn_count FROM user_sanctions
               WHERE user_id = $1""",
            user_id,
        )
        row = SanctionRow.of(r) if r is not None else SanctionRow(str(user_id), None, None, None, 0)
        return self.describe(row)

    def describe(self, row: SanctionRow) -> dict[str, Any]:
        now = self.now()
        banned, muted = row.ban_in_force(now), row.mute_in_force(now)
        return {
            "user_id": row.user_id,
            "is_banned": banned,
            "banned_until": row.banned_until.isoformat() if banned and row.banned_until else None,
            "muted_until": row.muted_until.isoformat() if muted and row.muted_until else None,
            "warn_count": row.warn_count,
        }

    # ---- changes -----------------------------------------------------------------------

    async def apply(
        self,
        *,
        actor_id: uuid.UUID,
        user_id: uuid.UUID,
        kind: SanctionKind,
        seconds: int | None = None,
        reason: str | None = None,
    ) -> SanctionRow:
        """One admin act on one user: stored and logged in one transaction, then mirrored."""
        now = self.now()

        async def unit(conn: asyncpg.Connection) -> SanctionRow:
            return await apply_sanction(
                conn, actor_id=actor_id, user_id=user_id, kind=kind, now=now, seconds=seconds, reason=reason
            )

        row = await self._db.run(unit)
        self.committed(row)
        return row
