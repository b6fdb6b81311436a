"""Points, levels and credits against a real database, and their REST endpoints."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
import trio

from storage.database import Database
from storage.progression import Award, apply_awards, level_for, threshold
from tests.live_client import Live


@pytest.mark.parametrize(
    ("total", "level"), [(0, 1), (99, 1), (100, 2), (281, 2), (282, 3), (518, 3), (519, 4), (-5, 1)]
)
def test_level_boundaries_are_inclusive(total: int, level: int) -> None:
    assert level_for(total) == level


def test_thresholds_follow_the_formula() -> None:
    assert [threshold(n) for n in range(1, 6)] == [0, 100, 282, 519, 800]


async def _user(db: Database, name: str) -> str:
    user_id = await db.fetchval(
        "INSERT INTO users (email, username, password_hash) VALUES ($1, $2, 'x') RETURNING id",
        f"{name}@e.co",
        name,
    )
    return str(user_id)


async def test_awards_count_once_and_level_ups_pay_bonus_and_credits(db: Database) -> None:
    dj = await _user(db, "deejay")
    at = datetime.now(UTC)
    awards = [Award(dj, "track_played", 10, f"item{n}") for n in range(10)]
    results = await db.run(apply_awards, awards, None, at)
    assert len(results) == 1
    got = results[0]
    # 100 points reach level 2 exactly: +5x2 bonus, 2 credits
    assert got.level_ups == [2] and got.credits_awarded == 2 and got.total == 110 and got.level == 2
    again = await db.run(apply_awards, awards, None, at)  # a replay or retry
    assert again == []
    row = await db.fetchrow(
        "SELECT total_points, current_level, credits_balance FROM user_progressions WHERE user_id = $1",
        uuid.UUID(dj),
    )
    assert row is not None and (row["total_points"], row["current_level"], row["credits_balance"]) == (
        110,
        2,
        2,
    )
    kinds = await db.fetch(
        "SELECT event_type, count(*) AS n FROM point_transactions WHERE user_id = $1 GROUP BY 1 ORDER BY 1",
        uuid.UUID(dj),
    )
    assert [(k["event_type"], k["n"]) for k in kinds] == [("level_up_bonus", 1), ("track_played", 10)]


async def test_a_vote_flip_counts_the_final_vote_only(db: Database) -> None:
    dj = await _user(db, "flipdj")
    at = datetime.now(UTC)
    # the actor awards from final votes at track end: a flip up->down gives -1 only
    results = await db.run(apply_awards, [Award(dj, "downvote_received", -1, "itemX", "voter1")], None, at)
    assert results[0].total == -1 and results[0].level == 1


async def test_progression_rest(http: httpx.AsyncClient, live: Live, db: Database) -> None:
    token, user_id = await live.user("pro")
    auth = {"Authorization": f"Bearer {token}"}
    me = (await http.get("/api/v1/progression/me", headers=auth)).json()
    assert me == {
        "user_id": user_id,
        "total_points": 0,
        "seasonal_points": 0,
        "current_level": 1,
        "credits_balance": 0,
        "next_level_at": 100,
        "last_level_up_at": None,
    }
    await db.run(
        apply_awards, [Award(user_id, "track_played", 10, f"i{n}") for n in range(3)], None, datetime.now(UTC)
    )
    me = (await http.get("/api/v1/progression/me", headers=auth)).json()
    assert me["total_points"] == 30 and me["seasonal_points"] == 30
    other = (await http.get(f"/api/v1/progression/{user_id}", headers=auth)).json()
    assert other == me
    assert (await http.get(f"/api/v1/progression/{uuid.uuid4()}", headers=auth)).status_code == 404
    assert (await http.get("/api/v1/progression/me")).status_code == 401
    first = (await http.get("/api/v1/progression/me/points", headers=auth, params={"limit": 2})).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = (
        await http.get(
            "/api/v1/progression/me/points", headers=auth, params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    ids = [p["id"] for p in first["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 3


async def test_concurrent_redemptions_never_go_negative(
    http: httpx.AsyncClient, live: Live, db: Database
) -> None:
    token, user_id = await live.user("rich")
    await db.execute(
        "INSERT INTO user_progressions (user_id, credits_balance) VALUES ($1, 500)", uuid.UUID(user_id)
    )
    auth = {"Authorization": f"Bearer {token}"}
    statuses: list[int] = []

    async def redeem() -> None:
        r = await http.post("/api/v1/progression/credits/redeem", json={"months": 1}, headers=auth)
        statuses.append(r.status_code)

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(redeem)
    assert sorted(statuses) == [200] * 5 + [409] * 15
    credits = (await http.get("/api/v1/progression/me/credits", headers=auth)).json()
    assert credits["credits_balance"] == 0 and credits["premium_until"] is not None
    assert [h["credits"] for h in credits["history"]] == [-100] * 5
    r = await http.post("/api/v1/progression/credits/redeem", json={"months": 0}, headers=auth)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "months"
