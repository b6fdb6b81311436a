"""Reading the boards kept in ``leaderboard_scores`` (written by :func:`storage.progression.apply_awards`).

Competition ranking: equal scores share a rank (1, 2, 2, 4) and are listed by who
reached the score first. A rank is 1 + how many have a higher score: one index
range count, so a user's rank never needs the board read.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from storage.database import Database, Record, micros
from storage.refs import user_ref, user_ref_columns

_TOP = 2**31 - 1  # a "cursor" above every score: the first page asks for the same shape of query
_BOARD = "s.board = $1 AND s.scope = $2 AND s.season = $3 AND s.score > 0"


class Leaderboards:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(
        self, board: str, scope: str, season: str, limit: int, after: tuple[int, datetime, uuid.UUID] | None
    ) -> list[dict[str, Any]]:
        async def unit(conn: asyncpg.Connection) -> list[dict[str, Any]]:
            score, reached, user_id = after or (_TOP, datetime(1970, 1, 1, tzinfo=UTC), uuid.UUID(int=0))
            rows: list[Record] = await conn.fetch(
                f"""SELECT s.score, s.reached_at, {user_ref_columns("u", "p", "user_")}
                    FROM leaderboard_scores s JOIN users u ON u.id = s.user_id
                    LEFT JOIN profiles p ON p.user_id = s.user_id
                    WHERE {_BOARD}
                      AND (s.score < $4 OR (s.score = $4 AND (s.reached_at, s.user_id) > ($5, $6)))
                    ORDER BY s.score DESC, s.reached_at, s.user_id LIMIT $7""",
                board,
                scope,
                season,
                score,
                reached,
                user_id,
                limit + 1,
            )
            if not rows:
                return []
            counts = await conn.fetchrow(
                f"""SELECT count(*) FILTER (WHERE s.score > $4) AS above, count(*) AS at_least
                    FROM leaderboard_scores s WHERE {_BOARD} AND s.score >= $4""",
                board,
                scope,
                season,
                rows[0]["score"],
            )
            assert counts is not None
            top = rows[0]["score"]
            tied_here = sum(1 for r in rows if r["score"] == top)
            out = []
            first_at: dict[int, int] = {}
            for i, r in enumerate(rows):
                first_at.setdefault(r["score"], i)
                # rank = 1 + how many score higher (ties of the page's first score may sit on earlier pages)
                if r["score"] == top:
                    rank = 1 + counts["above"]
                else:
                    rank = 1 + counts["at_least"] + first_at[r["score"]] - tied_here
                out.append(
                    {
                        "rank": rank,
                        "user": user_ref(r, "user_"),
                        "score": r["score"],
                        "_key": (r["score"], micros(r["reached_at"]), str(r["user_id"])),
                    }
                )
            return out

        return await self._db.run(unit)

    async def standing(self, board: str, scope: str, season: str, user_id: uuid.UUID) -> dict[str, Any]:
        row = await self._db.fetchrow(
            f"""SELECT (SELECT score FROM leaderboard_scores s WHERE {_BOARD} AND s.user_id = $4) AS score,
                       (SELECT count(*) FROM leaderboard_scores s WHERE {_BOARD}) AS total""",
            board,
            scope,
            season,
            user_id,
        )
        assert row is not None
        score = row["score"]
        if score is None:
            return {"rank": None, "score": 0, "total_ranked": row["total"]}
        above: int = await self._db.fetchval(
            f"SELECT count(*) FROM leaderboard_scores s WHERE {_BOARD} AND s.score > $4",
            board,
            scope,
            season,
            score,
        )
        return {"rank": above + 1, "score": score, "total_ranked": row["total"]}
