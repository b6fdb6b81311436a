"""The newsfeed over real HTTP: sources, visibility, collapsing, stable pages, reactions, activity."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from server.config import Settings
from storage.database import Database
from tests.live_client import Live, is_event


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, feature_social=True)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def follow(http: httpx.AsyncClient, token: str, target: str) -> None:
    r = await http.post(
        "/api/v1/social/follow", json={"target_id": target, "target_type": "user"}, headers=bearer(token)
    )
    assert r.status_code == 201, r.text


async def feed(http: httpx.AsyncClient, token: str, **params: Any) -> dict[str, Any]:
    r = await http.get("/api/v1/feed", params=params, headers=bearer(token))
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    return page


def kinds(page: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i["type"], i["actor"]["username"]) for i in page["items"]]


async def test_sources_and_visibility(http: httpx.AsyncClient, live: Live) -> None:
    ana, ana_id = await live.user("ana")
    ben, ben_id = await live.user("ben")
    cat, _ = await live.user("cat")
    await follow(http, ana, ben_id)  # ana follows ben
    await follow(http, cat, ana_id)  # cat follows ana
    public = await live.room(ben, name="Open Air")
    await live.room(ben, name="Back Room", type="private")
    mix = (await http.post("/api/v1/playlists", json={"name": "Warm"}, headers=bearer(ben))).json()
    await http.post("/api/v1/playlists", json={"name": "Secret", "is_public": False}, headers=bearer(ben))
    track = {"url": "https://www.deezer.com/track/5", "title": "Five", "artist": "A", "duration_ms": 90_000}
    await http.post(f"/api/v1/playlists/{mix['id']}/items", json={"track": track}, headers=bearer(ben))

    page = await feed(http, ana)
    assert kinds(page) == [
        ("track_added", "ben"),
        ("playlist_created", "ben"),
        ("room_created", "ben"),
        ("user_followed", "ana"),  # her own
    ]  # the private room and the private playlist are not there
    added, _, created, followed = page["items"]
    assert added["playlist"] == {"id": mix["id"], "name": "Warm"} and added["track"]["title"] == "Five"
    assert created["room"] == {"id": public["id"], "slug": public["slug"], "name": "Open Air"}
    assert followed["target_user"]["id"] == ben_id and followed["collapsed_count"] == 1
    assert (
        followed["actors"] == [followed["actor"]]
        and followed["reactions"] == {}
        and followed["my_reactions"] == []
    )
    # cat follows ana: she sees ana's follow of ben, but nothing of ben's (cat does not follow him)
    assert kinds(await feed(http, cat)) == [("user_followed", "cat"), ("user_followed", "ana")]
    # activity: ben's events that the caller may see
    activity = (await http.get(f"/api/v1/users/{ben_id}/activity", headers=bearer(cat))).json()
    assert [i["type"] for i in activity["items"]] == ["track_added", "playlist_created", "room_created"]
    assert (await http.get(f"/api/v1/users/{uuid.uuid4()}/activity", headers=bearer(cat))).status_code == 404
    assert (await http.get("/api/v1/feed")).status_code == 401


async def test_joins_collapse_within_the_hour(http: httpx.AsyncClient, live: Live, db: Database) -> None:
    host, host_id = await live.user("host")
    room = await live.room(host, name="Late Night Jazz")
    joiners = [await live.user(f"joiner{n}") for n in range(5)]
    for token, _ in joiners:
        assert (await http.post(f"/api/v1/rooms/{room['id']}/join", headers=bearer(token))).status_code == 200
    page = await feed(http, host)  # the host is a member: every join in the room is in the feed
    first = page["items"][0]
    assert first["type"] == "user_joined_room" and first["collapsed_count"] == 5
    assert [a["username"] for a in first["actors"]] == ["joiner4", "joiner3", "joiner2"]  # most recent first
    assert kinds(page)[1:] == [("room_created", "host")]

    # Across the hour boundary, on a clock of our own: the same trigger function, given times.
    other = await live.room(host, name="Quiet")
    base = datetime.now(UTC) - timedelta(hours=5)
    for minutes, (_, user_id) in zip((0, 30, 120, 150), joiners, strict=False):
        await db.execute(
            "SELECT feed_add('user_joined_room', $1, $2, NULL, NULL, NULL, NULL, $3, $4)",
            uuid.UUID(user_id),
            uuid.UUID(other["id"]),
            other["id"],
            base + timedelta(minutes=minutes),
        )
    # a steady trickle (every 40 minutes): no group spans more than the hour before its newest
    trickle = await live.room(host, name="Trickle")
    for minutes, (_, user_id) in zip((0, 40, 80), joiners, strict=False):
        await db.execute(
            "SELECT feed_add('user_joined_room', $1, $2, NULL, NULL, NULL, NULL, $3, $4)",
            uuid.UUID(user_id),
            uuid.UUID(trickle["id"]),
            trickle["id"],
            base + timedelta(minutes=minutes),
        )
    items = (await feed(http, host))["items"]
    quiet = [i for i in items if i["room"] and i["room"]["id"] == other["id"]]
    assert [(i["type"], i["collapsed_count"]) for i in quiet] == [
        ("room_created", 1),
        ("user_joined_room", 2),  # at 120 and 150 minutes
        ("user_joined_room", 2),  # at 0 and 30: 90 minutes before the next, a group of their own
    ]
    steady = [i["collapsed_count"] for i in items if i["room"] and i["room"]["id"] == trickle["id"]]
    assert steady == [1, 1, 2]  # room_created; 80 alone (0 is 80 minutes before it); 40 with 0
    assert host_id


async def test_pages_are_stable_while_events_arrive(http: httpx.AsyncClient, live: Live) -> None:
    reader, _ = await live.user("reader")
    makers = [await live.user(f"maker{n}") for n in range(3)]
    for _, maker_id in makers:
        await follow(http, reader, maker_id)
    for n in range(7):
        await live.room(makers[n % 3][0], name=f"Room {n}")
    seen: list[dict[str, Any]] = []
    page = await feed(http, reader, limit=3)
    seen += page["items"]
    for n in range(3):
        await live.room(makers[n][0], name=f"Late {n}")  # arrives while paging
    while page["next_cursor"]:
        page = await feed(http, reader, limit=3, cursor=page["next_cursor"])
        seen += page["items"]
    assert len({i["id"] for i in seen}) == len(seen) == 10  # 7 rooms and 3 follows, each once
    rooms = [i["room"]["name"] for i in seen if i["type"] == "room_created"]
    assert rooms == [f"Room {n}" for n in reversed(range(7))]  # none skipped; the late ones wait
    fresh = await feed(http, reader, limit=100)
    assert [i["room"]["name"] for i in fresh["items"][:3]] == ["Late 2", "Late 1", "Late 0"]
    r = await http.get("/api/v1/feed", params={"cursor": "bogus"}, headers=bearer(reader))
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "cursor"


async def test_reactions_and_likes_of_feed_events(http: httpx.AsyncClient, live: Live) -> None:
    ana, _ = await live.user("ana")
    ben, ben_id = await live.user("ben")
    stranger, _ = await live.user("stranger")
    await follow(http, ana, ben_id)
    await live.room(ben, name="Open")
    secret = await live.room(ben, name="Closed", type="private")
    event_id = (await feed(http, ana))["items"][0]["id"]
    hidden = next(
        i["id"] for i in (await feed(http, ben))["items"] if i["room"] and i["room"]["id"] == secret["id"]
    )

    url = f"/api/v1/feed/{event_id}/reactions"
    assert (await http.post(url, json={"type": "fire"}, headers=bearer(ana))).status_code == 201
    assert (await http.post(url, json={"type": "fire"}, headers=bearer(ana))).status_code == 200
    assert (await http.post(url, json={"type": "wave"}, headers=bearer(stranger))).status_code == 201
    r = await http.post(url, json={"type": "poop"}, headers=bearer(ana))
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "type"
    item = (await feed(http, ana))["items"][0]
    assert item["reactions"] == {"fire": 1, "wave": 1} and item["my_reactions"] == ["fire"]
    r = await http.post(f"/api/v1/feed/{hidden}/reactions", json={"type": "fire"}, headers=bearer(stranger))
    assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "event_id"
    assert (await http.delete(f"{url}/fire", headers=bearer(ana))).status_code == 204
    assert (await http.delete(f"{url}/fire", headers=bearer(ana))).status_code == 404
    assert (await feed(http, ana))["items"][0]["reactions"] == {"wave": 1}

    like = {"entity_type": "feed_event", "entity_id": event_id}
    assert (await http.post("/api/v1/social/like", json=like, headers=bearer(ana))).status_code == 201
    hidden_like = {"entity_type": "feed_event", "entity_id": hidden}
    assert (
        await http.post("/api/v1/social/like", json=hidden_like, headers=bearer(stranger))
    ).status_code == 404


async def test_a_session_going_live_and_a_first_turn_are_in_the_feed(
    http: httpx.AsyncClient, live: Live
) -> None:
    host, _ = await live.user("host")
    dj, _ = await live.user("deejay")
    room = await live.room(host)
    session_id = (
        await http.post(f"/api/v1/rooms/{room['id']}/dj/start", json={"mode": "fan"}, headers=bearer(host))
    ).json()["session_id"]
    async with live.connect(room["id"], host) as sock:
        await http.post(f"/api/v1/dj/sessions/{session_id}/rotation/join", headers=bearer(dj))
        for n in (1, 2):
            track = {
                "url": f"https://www.deezer.com/track/{n}",
                "title": f"T{n}",
                "artist": "A",
                "duration_ms": 1000,
            }
            r = await http.post(
                f"/api/v1/dj/sessions/{session_id}/queue", json={"track": track}, headers=bearer(dj)
            )
            assert r.status_code == 201, r.text
        for _ in range(2):
            await sock.until(is_event("track.started"))
    types = kinds(await feed(http, host))
    assert types.count(("dj_set_started", "deejay")) == 1  # two tracks, one first turn
    assert ("room_live_started", "host") in types and ("user_joined_room", "deejay") in types
