"""Badges: milestones awarded in the transaction of the points that earned them, and reading them."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from protocol.badges import CROWD_FAVOURITE_VOTES, LEVEL_BADGES, MILESTONES, TASTEMAKER_ADDERS, badge_of
from storage.database import Database, Record, micros

if TYPE_CHECKING:
    from storage.progression import Award


async def award_milestones(
    conn: asyncpg.Connection, user_id: str, new: list[Award], level_ups: list[int], at: datetime
) -> list[str]:
    """The milestone badges these newly written awards earn the user; each at most once, ever."""
    uid = uuid.UUID(user_id)
    earned: list[tuple[str, dict[str, Any]]] = []
    played = [a for a in new if a.event_type == "track_played"]
    if played:
        earned.append(("FIRST_PLAY", {"item_id": played[0].source_id}))
    earned += [(LEVEL_BADGES[lvl], {"level": lvl}) for lvl in level_ups if lvl in LEVEL_BADGES]
    for source in sorted({a.source_id for a in new if a.event_type == "upvote_received"}):
        ups = await conn.fetchval(
            """SELECT count(*) FROM point_transactions
               WHERE user_id = $1 AND event_type = 'upvote_received' AND source_id = $2""",
            uid,
            source,
        )
        if ups >= CROWD_FAVOURITE_VOTES:
            earned.append(("CROWD_FAVOURITE", {"item_id": source, "up_votes": ups}))
    if any(a.event_type == "playlist_add" for a in new):
        adders = await conn.fetchval(
            """SELECT count(DISTINCT voter_id) FROM point_transactions
               WHERE user_id = $1 AND event_type = 'playlist_add'""",
            uid,
        )
        if adders >= TASTEMAKER_ADDERS:
            earned.append(("TASTEMAKER", {"adders": adders}))
    if not earned:
        return []
    rows = await conn.fetch(
        """INSERT INTO user_badges (user_id, badge_code, awarded_at, metadata)
           SELECT $1, c, $2, m::jsonb FROM unnest($3::text[], $4::text[]) AS x(c, m)
           ON CONFLICT DO NOTHING RETURNING badge_code""",
        uid,
        at,
        [code for code, _ in earned],
        [json.dumps(meta) for _, meta in earned],
    )
    return [r["badge_code"] for r in rows]


def _awarded(r: Record) -> dict[str, Any]:
    metadata = r["metadata"]
    return {
        "badge": badge_of(r["badge_code"]),
        "awarded_at": r["awarded_at"].isoformat(),
        "metadata": json.loads(metadata) if isinstance(metadata, str) else metadata,
    }


class Badges:
    def __init__(self, db: Database) -> None:
        self._db = db

    def catalogue(self) -> list[dict[str, Any]]:
        return list(MILESTONES.values())

    async def of_user(
        self, user_id: uuid.UUID, limit: int, before: tuple[datetime, str] | None
    ) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            """SELECT badge_code, awarded_at, metadata FROM user_badges
               WHERE user_id = $1 AND (badge_code = ANY($2::text[]) OR badge_code LIKE 'SEASON%')
                 AND ($3::timestamptz IS NULL OR (awarded_at, badge_code) < ($3, $4))
               ORDER BY awarded_at DESC, badge_code DESC LIMIT $5""",
            user_id,
            list(MILESTONES),
            before[0] if before else None,
            before[1] if before else None,
            limit + 1,
        )
        return [{**_awarded(r), "_key": (micros(r["awarded_at"]), r["badge_code"])} for r in rows]

    async def season_ranks(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        """The user's final ranks in closed seasons, best first."""
        rows = await self._db.fetch(
            "SELECT season, rank, score FROM season_results WHERE user_id = $1 ORDER BY rank, season DESC",
            user_id,
        )
        return [{"season": r["season"], "rank": r["rank"], "score": r["score"]} for r in rows]
