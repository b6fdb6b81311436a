"""Milestone badges: each at its exact threshold, once, with a badge notification; read over REST."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from server.context import AppContext
from storage.database import Database
from storage.progression import Award, Progress, apply_awards, threshold

AT = datetime(2026, 11, 2, tzinfo=UTC)


async def give(db: Database, awards: list[Award], at: datetime = AT) -> list[Progress]:
    async def unit(conn: asyncpg.Connection) -> list[Progress]:
        return await apply_awards(conn, awards, None, at)

    return await db.run(unit)


async def held(db: Database, user_id: str) -> list[str]:
    rows = await db.fetch(
        "SELECT badge_code FROM user_badges WHERE user_id = $1 ORDER BY badge_code", uuid.UUID(user_id)
    )
    return [r["badge_code"] for r in rows]


async def badge_notes(db: Database, user_id: str) -> list[str]:
    rows = await db.fetch(
        "SELECT data ->> 'badge_code' AS code FROM notifications WHERE user_id = $1 AND type = 'badge'",
        uuid.UUID(user_id),
    )
    return sorted(r["code"] for r in rows)


async def test_each_milestone_at_its_threshold_and_never_twice(ctx: AppContext, db: Database) -> None:
    dj = str((await ctx.users.create(email="dj@example.com", username="deejay", password_hash="x")).id)

    await give(db, [Award(dj, "upvote_received", 2, "item-0", "voter-0")])  # votes on a skipped track
    assert await held(db, dj) == []
    progress = await give(db, [Award(dj, "track_played", 10, "item-1")])
    assert await held(db, dj) == ["FIRST_PLAY"]
    notes = [n for p in progress for n in p.notifications if n["type"] == "badge"]
    assert [n["data"] for n in notes] == [{"badge_code": "FIRST_PLAY"}]
    await give(db, [Award(dj, "track_played", 10, "item-2")])
    assert await held(db, dj) == ["FIRST_PLAY"]

    # up votes: nine distinct voters on one play are not enough, the tenth is
    await give(db, [Award(dj, "upvote_received", 2, "item-3", f"fan{n}") for n in range(9)])
    assert "CROWD_FAVOURITE" not in await held(db, dj)
    await give(db, [Award(dj, "upvote_received", 2, "item-3", "fan9")])
    assert "CROWD_FAVOURITE" in await held(db, dj)
    await give(db, [Award(dj, "upvote_received", 2, "item-4", f"fan{n}") for n in range(10)])

    # playlist adds by 49 different people, then the 50th
    await give(db, [Award(dj, "playlist_add", 5, f"track-{n}", f"adder{n}") for n in range(49)])
    await give(db, [Award(dj, "playlist_add", 5, "track-x", "adder0")])  # the same person again
    assert "TASTEMAKER" not in await held(db, dj)
    await give(db, [Award(dj, "playlist_add", 5, "track-49", "adder49")])
    assert await held(db, dj) == ["CROWD_FAVOURITE", "FIRST_PLAY", "TASTEMAKER"]
    assert await badge_notes(db, dj) == ["CROWD_FAVOURITE", "FIRST_PLAY", "TASTEMAKER"]  # one each


async def test_level_badges_at_the_exact_level(ctx: AppContext, db: Database) -> None:
    climber = str((await ctx.users.create(email="c@example.com", username="climber", password_hash="x")).id)
    bonuses = sum(5 * level for level in (2, 3, 4))  # passing levels 2-4 pays these on the way
    (progress,) = await give(db, [Award(climber, "track_played", threshold(5) - 1 - bonuses, "a")])
    assert (progress.level, progress.total) == (4, threshold(5) - 1)
    assert await held(db, climber) == ["FIRST_PLAY"]
    (progress,) = await give(db, [Award(climber, "track_played", 1, "b")])
    assert progress.level_ups == [5] and await held(db, climber) == ["FIRST_PLAY", "LEVEL_5"]
    await give(db, [Award(climber, "track_played", threshold(25), "c")])  # straight past 10 to 25
    assert await held(db, climber) == ["FIRST_PLAY", "LEVEL_10", "LEVEL_25", "LEVEL_5"]


async def test_badges_over_rest(http: httpx.AsyncClient, ctx: AppContext, db: Database) -> None:
    dj = str((await ctx.users.create(email="dj@example.com", username="deejay", password_hash="x")).id)
    catalogue = (await http.get("/api/v1/badges")).json()["items"]
    assert {b["code"] for b in catalogue} == {
        "FIRST_PLAY",
        "LEVEL_5",
        "LEVEL_10",
        "LEVEL_25",
        "CROWD_FAVOURITE",
        "TASTEMAKER",
    }
    tastemaker = next(b for b in catalogue if b["code"] == "TASTEMAKER")
    assert (tastemaker["tier"], tastemaker["category"], tastemaker["season"]) == (None, "community", None)
    await give(db, [Award(dj, "track_played", 10, "item-1")])
    later = AT + timedelta(minutes=5)
    await give(db, [Award(dj, "upvote_received", 2, "item-2", f"fan{n}") for n in range(10)], later)
    page = (await http.get(f"/api/v1/users/{dj}/badges", params={"limit": 1})).json()
    rest = (await http.get(f"/api/v1/users/{dj}/badges", params={"cursor": page["next_cursor"]})).json()
    assert [b["badge"]["code"] for b in page["items"] + rest["items"]] == ["CROWD_FAVOURITE", "FIRST_PLAY"]
    assert page["items"][0]["metadata"] == {"item_id": "item-2", "up_votes": 10}
    trophies = (await http.get(f"/api/v1/users/{dj}/trophies")).json()
    assert trophies["counts"] == {"gold": 0, "silver": 0, "bronze": 0, "participant": 0}
    assert [b["badge"]["code"] for b in trophies["badges"]] == ["CROWD_FAVOURITE", "FIRST_PLAY"]
    assert trophies["user_id"] == dj and trophies["best_ranks"] == []
    for path in (f"/api/v1/users/{uuid.uuid4()}/badges", f"/api/v1/users/{uuid.uuid4()}/trophies"):
        r = await http.get(path)
        assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "user_id"
