"""Closing a season: its final board frozen and its medals awarded, exactly once.

The admin endpoint and the background closer both call :meth:`Seasons.close`.
The season's row is locked for the close, so two concurrent closes serialize;
the second finds it closed and answers what the first awarded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import trio

from protocol.badges import season_badge_code
from protocol.errors import Conflict
from storage.database import Database
from storage.notifications import create_notifications
from storage.progression import season_of

log = logging.getLogger("seda.seasons")

CLOSER_PERIOD_S = 30.0  # a season ends; within a minute it is closed


def season_end(season: str) -> datetime:
    """The instant the season (``YYYY-Qn``, UTC quarters) ends."""
    year, quarter = int(season[:4]), int(season[-1])
    return datetime(year + quarter // 4, 1 + (quarter * 3) % 12, 1, tzinfo=UTC)


def previous_season(season: str) -> str:
    year, quarter = int(season[:4]), int(season[-1])
    return f"{year - 1}-Q4" if quarter == 1 else f"{year}-Q{quarter - 1}"


def _tier(rank: int) -> str:
    return {1: "gold", 2: "silver", 3: "bronze"}.get(rank, "participant")


async def _close(conn: asyncpg.Connection, season: str, now: datetime) -> tuple[dict[str, Any], list[Any]]:
    await conn.execute("INSERT INTO seasons (season) VALUES ($1) ON CONFLICT DO NOTHING", season)
    row = await conn.fetchrow("SELECT closed_at, awarded FROM seasons WHERE season = $1 FOR UPDATE", season)
    assert row is not None
    if row["closed_at"] is not None:
        stored = row["awarded"]
        return (json.loads(stored) if isinstance(stored, str) else stored), []
    board = await conn.fetch(
        """SELECT user_id, score, rank() OVER (ORDER BY score DESC) AS rank FROM leaderboard_scores
           WHERE board = 'seasonal' AND scope = '' AND season = $1 AND score > 0
           ORDER BY score DESC, reached_at, user_id""",
        season,
    )
    awarded: dict[str, Any] = {"gold": [], "silver": [], "bronze": [], "participant": 0}
    for r in board:
        tier = _tier(r["rank"])
        if tier == "participant":
            awarded["participant"] += 1
        else:
            awarded[tier].append(str(r["user_id"]))
    if board:
        tiers = [_tier(r["rank"]) for r in board]
        await conn.execute(
            """INSERT INTO season_results (season, user_id, rank, score, tier)
               SELECT $1, u, rk, sc, t
               FROM unnest($2::uuid[], $3::int[], $4::int[], $5::text[]) AS x(u, rk, sc, t)""",
            season,
            [r["user_id"] for r in board],
            [r["rank"] for r in board],
            [r["score"] for r in board],
            tiers,
        )
        codes = [season_badge_code(season, t) for t in tiers]
        made = await conn.fetch(
            """INSERT INTO user_badges (user_id, badge_code, awarded_at, metadata)
               SELECT u, c, $2, jsonb_build_object('season', $1::text, 'rank', rk, 'score', sc)
               FROM unnest($3::uuid[], $4::text[], $5::int[], $6::int[]) AS x(u, c, rk, sc)
               ON CONFLICT DO NOTHING RETURNING user_id, badge_code""",
            season,
            now,
            [r["user_id"] for r in board],
            codes,
            [r["rank"] for r in board],
            [r["score"] for r in board],
        )
        notes = await create_notifications(
            conn, [(str(m["user_id"]), "badge", None, {"badge_code": m["badge_code"]}) for m in made]
        )
    else:
        notes = []
    await conn.execute(
        "UPDATE seasons SET closed_at = $2, awarded = $3::jsonb WHERE season = $1",
        season,
        now,
        json.dumps(awarded),
    )
    return awarded, notes


class Seasons:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def close(self, season: str, now: datetime) -> tuple[dict[str, Any], list[Any]]:
        """Freeze and award a season that has ended (409 while it runs); again: the same answer."""
        if now < season_end(season):
            raise Conflict(f"season {season} has not ended", field="season")
        return await self._db.run(_close, season, now)

    async def closed(self, season: str) -> bool:
        return bool(
            await self._db.fetchval("SELECT closed_at IS NOT NULL FROM seasons WHERE season = $1", season)
        )

    async def close_due(self, now: datetime) -> list[tuple[str, Any]]:
        """Close the season that ended last, if it is not closed yet: what the background closer runs."""
        last = previous_season(season_of(now))
        if await self.closed(last):
            return []

        async def unit(conn: asyncpg.Connection) -> list[Any] | None:
            # One closer across every node: the others skip while one holds the lock.
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext('seda.season_closer'))"):
                return None
            _, notes = await _close(conn, last, now)
            return notes

        notes = await self._db.run(unit)
        if notes is None:
            return []
        log.info("season %s closed", last)
        return notes

    async def run_closer(
        self,
        tell: Callable[[list[Any]], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Supervised: every half minute, close what has ended; a failure is logged and retried."""
        task_status.started()
        while True:
            try:
                tell(await self.close_due(clock()))
            except Exception:
                log.exception("closing the last season failed; retrying")
            await trio.sleep(CLOSER_PERIOD_S)
