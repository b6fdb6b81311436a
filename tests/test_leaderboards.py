"""Leaderboards over real HTTP, their scores moved by awards in the awards' own transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from server.context import AppContext
from storage.database import Database
from storage.progression import Award, apply_awards
from tests.live_client import Live, is_event

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


async def award(db: Database, user_id: str, points: int, at: datetime, room_id: str | None = None) -> None:
    source = str(uuid.uuid4())

    async def unit(conn: asyncpg.Connection) -> None:
        await apply_awards(conn, [Award(user_id, "track_played", points, source)], room_id, at)

    await db.run(unit)


async def users(ctx: AppContext, *names: str) -> list[str]:
    made = [await ctx.users.create(email=f"{n}@example.com", username=n, password_hash="x") for n in names]
    return [str(u.id) for u in made]


def ranks(page: dict[str, Any]) -> list[tuple[int, str, int]]:
    return [(i["rank"], i["user"]["username"], i["score"]) for i in page["items"]]


async def test_competition_ranking_ties_and_pages(
    http: httpx.AsyncClient, ctx: AppContext, db: Database
) -> None:
    ana, ben, cat, dan, eve = await users(ctx, "ana", "ben", "cat", "dan", "eve")
    await award(db, ana, 30, T0)
    await award(db, cat, 15, T0 + timedelta(minutes=1))
    await award(db, ben, 20, T0 + timedelta(minutes=2))  # ben reaches 20 first ...
    await award(db, cat, 5, T0 + timedelta(minutes=3))  # ... cat after him
    await award(db, dan, 10, T0 + timedelta(minutes=4))
    await award(db, eve, 5, T0 + timedelta(minutes=5))
    await award(db, eve, -5, T0 + timedelta(minutes=6))  # back to 0: not ranked

    board = (await http.get("/api/v1/leaderboards/global")).json()  # public: no token
    assert ranks(board) == [(1, "ana", 30), (2, "ben", 20), (2, "cat", 20), (4, "dan", 10)]
    assert (board["type"], board["scope"], board["season"]) == ("global", None, None)
    first = (await http.get("/api/v1/leaderboards/global", params={"limit": 2})).json()
    rest = (
        await http.get("/api/v1/leaderboards/global", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert ranks(first) + ranks(rest) == ranks(board) and rest["next_cursor"] is None
    one_by_one: list[tuple[int, str, int]] = []
    cursor: str | None = None
    while True:  # a tie split across pages keeps its rank
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/api/v1/leaderboards/global", params=params)).json()
        one_by_one += ranks(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert one_by_one == ranks(board)

    assert (await http.get(f"/api/v1/leaderboards/global/users/{cat}")).json() == {
        "rank": 2,
        "score": 20,
        "total_ranked": 4,
    }
    assert (await http.get(f"/api/v1/leaderboards/global/users/{eve}")).json() == {
        "rank": None,
        "score": 0,
        "total_ranked": 4,
    }
    await award(db, dan, 25, T0 + timedelta(minutes=7))  # an award moves the board at once
    assert ranks((await http.get("/api/v1/leaderboards/global")).json())[0] == (1, "dan", 35)


async def test_seasonal_genre_and_room_boards(http: httpx.AsyncClient, ctx: AppContext, db: Database) -> None:
    ana, ben = await users(ctx, "ana", "ben")
    room = await ctx.rooms.create(
        uuid.UUID(ana),
        name="Jazz Cellar",
        type="genre",
        visibility="public",
        slug=None,
        description=None,
        genres=["jazz", "soul"],
        tags=[],
    )
    other = await ctx.rooms.create(
        uuid.UUID(ben),
        name="Rock Hall",
        type="genre",
        visibility="public",
        slug=None,
        description=None,
        genres=["rock"],
        tags=[],
    )
    await award(db, ana, 40, datetime(2026, 8, 1, tzinfo=UTC), room["id"])  # 2026-Q3, in the jazz room
    await award(db, ben, 10, datetime(2026, 11, 2, tzinfo=UTC), room["id"])  # 2026-Q4, jazz room
    await award(db, ben, 50, datetime(2026, 11, 3, tzinfo=UTC), other["id"])  # 2026-Q4, rock room

    async def board(kind: str, **params: str) -> list[tuple[int, str, int]]:
        r = await http.get(f"/api/v1/leaderboards/{kind}", params=params)
        assert r.status_code == 200, r.text
        return ranks(r.json())

    assert await board("global") == [(1, "ben", 60), (2, "ana", 40)]
    assert await board("seasonal", season="2026-Q3") == [(1, "ana", 40)]
    assert await board("seasonal", season="2026-Q4") == [(1, "ben", 60)]
    assert await board("genre", scope="Jazz") == [(1, "ana", 40), (2, "ben", 10)]
    assert await board("genre", scope="rock") == [(1, "ben", 50)]
    assert await board("room", scope=room["id"]) == [(1, "ana", 40), (2, "ben", 10)]
    assert await board("genre", scope="polka") == []
    season = (await http.get("/api/v1/leaderboards/seasonal")).json()["season"]
    assert (
        season == f"{datetime.now(UTC).year}-Q{(datetime.now(UTC).month - 1) // 3 + 1}"
    )  # the current quarter

    for path, params, status, field in (
        ("/api/v1/leaderboards/weekly", {}, 404, "type"),
        ("/api/v1/leaderboards/genre", {}, 422, "scope"),
        ("/api/v1/leaderboards/room", {}, 422, "scope"),
        ("/api/v1/leaderboards/room", {"scope": "not-a-room"}, 422, "scope"),
        ("/api/v1/leaderboards/seasonal", {"season": "2026-Q5"}, 422, "season"),
        ("/api/v1/leaderboards/seasonal", {"season": "Q4-2026"}, 422, "season"),
        (f"/api/v1/leaderboards/global/users/{uuid.uuid4()}", {}, 404, "user_id"),
    ):
        r = await http.get(path, params=params)
        assert r.status_code == status and r.json()["error"]["details"]["field"] == field, (
            path,
            params,
            r.text,
        )


async def test_a_track_played_live_reaches_the_room_board(http: httpx.AsyncClient, live: Live) -> None:
    host, _ = await live.user("host")
    dj, _ = await live.user("deejay")
    room = await live.room(host, genres=["house"])
    auth = {"Authorization": f"Bearer {host}"}
    session_id = (
        await http.post(f"/api/v1/rooms/{room['id']}/dj/start", json={"mode": "fan"}, headers=auth)
    ).json()["session_id"]
    dj_auth = {"Authorization": f"Bearer {dj}"}
    async with live.connect(room["id"], dj) as sock:
        await http.post(f"/api/v1/dj/sessions/{session_id}/rotation/join", headers=dj_auth)
        track = {"url": "https://www.deezer.com/track/1", "title": "T", "artist": "A", "duration_ms": 1000}
        r = await http.post(f"/api/v1/dj/sessions/{session_id}/queue", json={"track": track}, headers=dj_auth)
        assert r.status_code == 201, r.text
        await sock.until(is_event("points.awarded"))  # the track ended: its points are committed
    for kind, scope in (("room", room["id"]), ("genre", "house"), ("global", None)):
        params = {"scope": scope} if scope else {}
        board = (await http.get(f"/api/v1/leaderboards/{kind}", params=params)).json()
        assert ranks(board) == [(1, "deejay", 10)], (kind, board)


async def test_a_vote_flip_moves_the_board(http: httpx.AsyncClient, live: Live) -> None:
    host, _ = await live.user("host")
    dj, _ = await live.user("deejay")
    fan, _ = await live.user("fan")
    room = await live.room(host)
    auth = {"Authorization": f"Bearer {host}"}
    session_id = (
        await http.post(f"/api/v1/rooms/{room['id']}/dj/start", json={"mode": "fan"}, headers=auth)
    ).json()["session_id"]
    dj_auth = {"Authorization": f"Bearer {dj}"}
    async with live.connect(room["id"], dj) as dj_sock, live.connect(room["id"], fan) as fan_sock:
        await http.post(f"/api/v1/dj/sessions/{session_id}/rotation/join", headers=dj_auth)
        track = {"url": "https://www.deezer.com/track/2", "title": "T", "artist": "A", "duration_ms": 3000}
        await http.post(f"/api/v1/dj/sessions/{session_id}/queue", json={"track": track}, headers=dj_auth)
        started, _ = await fan_sock.until(is_event("track.started"))
        item_id = started["data"]["item"]["item_id"]
        for value in ("up", "down"):  # up, then flipped to down before the track ends
            reply, _ = await fan_sock.request("vote", {"item_id": item_id, "value": value})
            assert reply["ok"], reply
        await dj_sock.until(is_event("points.awarded"))
    board = (await http.get("/api/v1/leaderboards/room", params={"scope": room["id"]})).json()
    assert ranks(board) == [(1, "deejay", 9)]  # 10 for the play, -1 for the vote as it finally stood
