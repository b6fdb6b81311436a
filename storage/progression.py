"""Points, levels and credits (PRODUCT.md "Progression rules")."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from protocol.errors import Conflict
from protocol.events import private_event
from storage.badges import award_milestones
from storage.database import Database, Record
from storage.notifications import create_notifications

CREDITS_PER_MONTH = 100
PLAYLIST_ADD_POINTS = 5  # to whoever played the track in a room, once per adding user per track


def level_for(total_points: int) -> int:
    """The highest L with ``floor(100 * (L - 1)^1.5) <= total`` (level 1 at 0 points)."""
    level = 1
    while threshold(level + 1) <= total_points:
        level += 1
    return level


def threshold(level: int) -> int:
    return math.floor(100 * (level - 1) ** 1.5)  # type: ignore[no-any-return]


def season_of(at: datetime) -> str:
    return f"{at.year}-Q{(at.month - 1) // 3 + 1}"


@dataclass(frozen=True)
class Award:
    user_id: str
    event_type: str
    points: int
    source_id: str
    voter_id: str = ""


@dataclass(frozen=True)
class Progress:
    """What an award changed for one user, for the private live events."""

    user_id: str
    points: int
    reasons: list[str]
    total: int
    level: int
    level_ups: list[int]
    credits_awarded: int
    notifications: list[dict[str, Any]] = field(default_factory=list)  # the level_up ones created

    def notices(self, at: int) -> list[dict[str, Any]]:
        """The private ``points.awarded``, ``level.up`` and ``notification`` events owed to the user."""
        awarded = {
            "points": self.points,
            "reason": "+".join(self.reasons),
            "total": self.total,
            "level": self.level,
        }
        return (
            [private_event("points.awarded", at, awarded)]
            + [
                private_event("level.up", at, {"level": lvl, "credits_awarded": lvl})
                for lvl in self.level_ups
            ]
            + [private_event("notification", at, note) for note in self.notifications]
        )


# Every board an award counts on moves with it, in its transaction (REST.md leaderboards).
_MOVE_SCORES = """INSERT INTO leaderboard_scores (board, scope, season, user_id, score, reached_at)
                  SELECT b, sc, se, $1, $2, $3 FROM unnest($4::text[], $5::text[], $6::text[]) AS x(b, sc, se)
                  ON CONFLICT (board, scope, season, user_id)
                  DO UPDATE SET score = leaderboard_scores.score + excluded.score,
                                reached_at = excluded.reached_at"""


async def _boards_of(
    conn: asyncpg.Connection, room_id: str | None, season: str
) -> list[tuple[str, str, str]]:
    """(board, scope, season) of every board that points earned now in ``room_id`` count on."""
    boards = [("global", "", ""), ("seasonal", "", season)]
    if room_id:
        boards.append(("room", room_id, ""))
        genres = await conn.fetchval("SELECT genres FROM rooms WHERE id = $1", uuid.UUID(room_id))
        boards.extend(("genre", genre, "") for genre in genres or [])
    return boards


async def apply_awards(
    conn: asyncpg.Connection, awards: list[Award], room_id: str | None, at: datetime
) -> list[Progress]:
    """Write awards exactly once and move totals, levels and credits; run inside a transaction.

    A level up adds its bonus (5 * level) as its own once-only row, which may
    itself reach the next level; each level grants credits equal to it.
    """
    by_user: dict[str, list[Award]] = {}
    for award in awards:
        by_user.setdefault(award.user_id, []).append(award)
    season = season_of(at)
    boards = await _boards_of(conn, room_id, season) if awards else []
    results: list[Progress] = []
    for user_id in sorted(by_user):  # a fixed order: no deadlocks between concurrent writers
        gained = 0
        reasons: list[str] = []
        new: list[Award] = []
        for award in by_user[user_id]:
            inserted = await conn.fetchval(
                """INSERT INTO point_transactions (user_id, event_type, points, source_id, voter_id, room_id,
                                                   created_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)
                   ON CONFLICT (user_id, event_type, source_id, voter_id) DO NOTHING RETURNING points""",
                uuid.UUID(user_id),
                award.event_type,
                award.points,
                award.source_id,
                award.voter_id,
                uuid.UUID(room_id) if room_id else None,
                at,
            )
            if inserted is not None:
                gained += inserted
                reasons.append(award.event_type)
                new.append(award)
        if not reasons:
            continue
        row = await conn.fetchrow(
            """INSERT INTO user_progressions (user_id, season) VALUES ($1, $2)
               ON CONFLICT (user_id) DO UPDATE SET updated_at = now()
               RETURNING total_points, seasonal_points, season, current_level, credits_balance""",
            uuid.UUID(user_id),
            season,
        )
        assert row is not None
        total = row["total_points"] + gained
        seasonal = (row["seasonal_points"] if row["season"] == season else 0) + gained
        level = row["current_level"]
        level_ups: list[int] = []
        credits = 0
        while level_for(total) > level:
            level += 1
            level_ups.append(level)
            bonus = await conn.fetchval(
                """INSERT INTO point_transactions
                          (user_id, event_type, points, source_id, room_id, created_at)
                   VALUES ($1, 'level_up_bonus', $2, $3, $4, $5)
                   ON CONFLICT (user_id, event_type, source_id, voter_id) DO NOTHING RETURNING points""",
                uuid.UUID(user_id),
                5 * level,
                f"level:{level}",
                uuid.UUID(room_id) if room_id else None,
                at,
            )
            if bonus is not None:
                total += bonus
                seasonal += bonus
                gained += bonus
            granted = await conn.fetchval(
                """INSERT INTO credit_transactions
                          (user_id, type, credits, description, source_id, created_at)
                   VALUES ($1, 'earned_level_up', $2, $3, $4, $5)
                   ON CONFLICT (user_id, type, source_id) DO NOTHING RETURNING credits""",
                uuid.UUID(user_id),
                level,
                f"reached level {level}",
                f"level:{level}",
                at,
            )
            credits += granted or 0
        await conn.execute(
            """UPDATE user_progressions SET total_points = $2, seasonal_points = $3, season = $4,
                      current_level = $5, credits_balance = credits_balance + $6,
                      last_level_up_at = CASE WHEN $7 THEN $8 ELSE last_level_up_at END, updated_at = now()
               WHERE user_id = $1""",
            uuid.UUID(user_id),
            total,
            seasonal,
            season,
            level,
            credits,
            bool(level_ups),
            at,
        )
        if gained:
            await conn.execute(
                _MOVE_SCORES,
                uuid.UUID(user_id),
                gained,
                at,
                [b[0] for b in boards],
                [b[1] for b in boards],
                [b[2] for b in boards],
            )
        badges = await award_milestones(conn, user_id, new, level_ups, at)
        notes = await create_notifications(
            conn,
            [(user_id, "level_up", None, {"level": lvl, "credits": lvl}) for lvl in level_ups]
            + [(user_id, "badge", None, {"badge_code": code}) for code in badges],
        )
        results.append(
            Progress(user_id, gained, reasons, total, level, level_ups, credits, [n for _, n in notes])
        )
    return results


def progression_out(user_id: uuid.UUID, r: Record | None, now: datetime) -> dict[str, Any]:
    """The progression shape of PRODUCT.md."""
    total = r["total_points"] if r else 0
    level = r["current_level"] if r else 1
    seasonal = r["seasonal_points"] if r and r["season"] == season_of(now) else 0
    return {
        "user_id": str(user_id),
        "total_points": total,
        "seasonal_points": seasonal,
        "current_level": level,
        "credits_balance": r["credits_balance"] if r else 0,
        "next_level_at": threshold(level + 1),
        "last_level_up_at": r["last_level_up_at"].isoformat() if r and r["last_level_up_at"] else None,
    }


class Progression:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, user_id: uuid.UUID) -> dict[str, Any]:
        row = await self._db.fetchrow("SELECT * FROM user_progressions WHERE user_id = $1", user_id)
        return progression_out(user_id, row, datetime.now(UTC))

    async def points_page(
        self, user_id: uuid.UUID, limit: int, before_id: int | None
    ) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            """SELECT id, event_type, points, source_id, voter_id, room_id, created_at FROM point_transactions
               WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3""",
            user_id,
            before_id,
            limit + 1,
        )
        return [
            {
                "id": r["id"],
                "event_type": r["event_type"],
                "points": r["points"],
                "source_id": r["source_id"],
                "room_id": str(r["room_id"]) if r["room_id"] else None,
                "created_at": r["created_at"].isoformat(),
            }
            for r in rows
        ]

    async def credits(self, user_id: uuid.UUID, limit: int = 50) -> dict[str, Any]:
        balance = await self._db.fetchval(
            "SELECT credits_balance FROM user_progressions WHERE user_id = $1", user_id
        )
        premium = await self._db.fetchval(
            "SELECT premium_until FROM user_progressions WHERE user_id = $1", user_id
        )
        rows = await self._db.fetch(
            """SELECT type, credits, description, created_at FROM credit_transactions WHERE user_id = $1
               ORDER BY id DESC LIMIT $2""",
            user_id,
            limit,
        )
        return {
            "credits_balance": balance or 0,
            "premium_until": premium.isoformat() if premium else None,
            "history": [
                {
                    "type": r["type"],
                    "credits": r["credits"],
                    "description": r["description"],
                    "created_at": r["created_at"].isoformat(),
                }
                for r in rows
            ],
        }

    async def redeem(self, user_id: uuid.UUID, months: int) -> dict[str, Any]:
        """Spend 100 credits a month on Premium; one conditional UPDATE, so racing redemptions
        can never take the balance below zero."""
        cost = months * CREDITS_PER_MONTH

        async def unit(conn: asyncpg.Connection) -> Record | None:
            row: Record | None = await conn.fetchrow(
                """UPDATE user_progressions
                   SET credits_balance = credits_balance - $2,
                       premium_until = greatest(coalesce(premium_until, now()), now())
                                       + make_interval(months => $3),
                       updated_at = now()
                   WHERE user_id = $1 AND credits_balance >= $2
                   RETURNING credits_balance, premium_until""",
                user_id,
                cost,
                months,
            )
            if row is not None:
                await conn.execute(
                    """INSERT INTO credit_transactions (user_id, type, credits, description)
                       VALUES ($1, 'redeemed_premium', $2, $3)""",
                    user_id,
                    -cost,
                    f"{months} month(s) of Premium",
                )
            return row

        row = await self._db.run(unit)
        if row is None:
            raise Conflict(f"redeeming {months} month(s) needs {cost} credits", field="months")
        return {"credits_balance": row["credits_balance"], "premium_until": row["premium_until"].isoformat()}
