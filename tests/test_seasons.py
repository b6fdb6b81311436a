"""Closing a season: once, even when asked twice at once; only after its quarter; medals and trophies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import trio

from server.context import AppContext
from storage.database import Database
from storage.progression import Award, apply_awards

Q2 = datetime(2026, 5, 1, tzinfo=UTC)  # a season long over (the server closes only the last one itself)


async def earn(db: Database, user_id: str, points: int, at: datetime) -> None:
    source = str(uuid.uuid4())

    async def unit(conn: asyncpg.Connection) -> None:
        await apply_awards(conn, [Award(user_id, "upvote_received", points, source, "v")], None, at)

    await db.run(unit)


async def admin_token(ctx: AppContext) -> dict[str, str]:
    admin = await ctx.users.create(email="boss@example.com", username="boss", password_hash="x", role="admin")
    return {"Authorization": f"Bearer {ctx.tokens.issue(admin.id, 'admin')}"}


async def test_close_awards_medals_once(http: httpx.AsyncClient, ctx: AppContext, db: Database) -> None:
    admin = await admin_token(ctx)
    made = [
        await ctx.users.create(email=f"{n}@example.com", username=f"user_{n}", password_hash="x")
        for n in "abcd"
    ]
    a, b, c, d = (str(u.id) for u in made)
    for user_id, points, minutes in ((a, 50, 0), (b, 40, 1), (c, 40, 2), (d, 10, 3)):
        await earn(db, user_id, points, Q2 + timedelta(minutes=minutes))

    fan = {"Authorization": f"Bearer {ctx.tokens.issue(made[0].id, 'user')}"}
    assert (await http.post("/api/v1/admin/seasons/2026-Q2/close", headers=fan)).status_code == 403
    r = await http.post("/api/v1/admin/seasons/2026-Q9/close", headers=admin)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "season"
    running = f"{datetime.now(UTC).year}-Q{(datetime.now(UTC).month - 1) // 3 + 1}"
    r = await http.post(f"/api/v1/admin/seasons/{running}/close", headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"

    answers: list[httpx.Response] = []

    async def close() -> None:
        answers.append(await http.post("/api/v1/admin/seasons/2026-Q2/close", headers=admin))

    async with trio.open_nursery() as nursery:  # two closes at once
        nursery.start_soon(close)
        nursery.start_soon(close)
    assert [r.status_code for r in answers] == [200, 200]
    expected = {
        "season": "2026-Q2",
        "awarded": {"gold": [a], "silver": [b, c], "bronze": [], "participant": 1},
    }
    assert answers[0].json() == answers[1].json() == expected  # rank 2 is shared; there is no rank 3
    again = await http.post("/api/v1/admin/seasons/2026-Q2/close", headers=admin)
    assert again.json() == expected

    medals = await db.fetch("SELECT user_id, badge_code FROM user_badges WHERE badge_code LIKE 'SEASON%'")
    assert sorted((str(m["user_id"]), m["badge_code"]) for m in medals) == sorted(
        [
            (a, "SEASON_2026_Q2_GOLD"),
            (b, "SEASON_2026_Q2_SILVER"),
            (c, "SEASON_2026_Q2_SILVER"),
            (d, "SEASON_2026_Q2_PARTICIPANT"),
        ]
    )  # once each, after three closes
    notes = await db.fetchval(
        "SELECT count(*) FROM notifications WHERE type = 'badge' AND data ->> 'badge_code' LIKE 'SEASON%'"
    )
    assert notes == 4

    trophies = (await http.get(f"/api/v1/users/{b}/trophies")).json()
    assert trophies["counts"] == {"gold": 0, "silver": 1, "bronze": 0, "participant": 0}
    assert trophies["best_ranks"] == [{"season": "2026-Q2", "rank": 2, "score": 40}]
    medal = trophies["badges"][0]["badge"]
    assert (medal["code"], medal["tier"], medal["category"], medal["season"]) == (
        "SEASON_2026_Q2_SILVER",
        "silver",
        "season",
        "2026-Q2",
    )


async def test_the_closer_closes_a_quarter_only_once_it_has_ended(ctx: AppContext, db: Database) -> None:
    user = await ctx.users.create(email="e@example.com", username="early", password_hash="x")
    await earn(db, str(user.id), 5, datetime(2030, 11, 1, tzinfo=UTC))
    # On a clock of our own: the last second of 2030-Q4, then half a minute into 2031.
    await ctx.seasons.close_due(datetime(2030, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert not await ctx.seasons.closed("2030-Q4")  # only 2030-Q3, which had ended, was closed
    assert await ctx.seasons.closed("2030-Q3")
    notes = await ctx.seasons.close_due(datetime(2031, 1, 1, 0, 0, 30, tzinfo=UTC))
    assert await ctx.seasons.closed("2030-Q4")
    assert [n["data"] for _, n in notes] == [{"badge_code": "SEASON_2030_Q4_GOLD"}]
    assert await ctx.seasons.close_due(datetime(2031, 1, 1, 0, 1, tzinfo=UTC)) == []  # nothing twice
