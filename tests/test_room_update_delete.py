"""Changing and deleting a room over REST, as its live sockets see it."""

from __future__ import annotations

import uuid

import httpx
import pytest
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from storage.database import Database
from tests.live_client import Live, is_event


async def test_owner_updates_a_room_and_sockets_see_it(
    http: httpx.AsyncClient, live: Live, db: Database
) -> None:
    owner, _ = await live.user("keeper")
    other, _ = await live.user("visitor")
    room = await live.room(owner, genres=["jazz"])
    async with live.connect(room["id"], other) as watcher:
        r = await http.patch(
            f"/api/v1/rooms/{room['id']}", json={"name": "Nope"}, headers={"Authorization": f"Bearer {other}"}
        )
        assert r.status_code == 403
        r = await http.patch(
            f"/api/v1/rooms/{room['id']}", json={"name": ""}, headers={"Authorization": f"Bearer {owner}"}
        )
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "name"
        r = await http.patch(
            f"/api/v1/rooms/{room['id']}",
            json={"name": "Late Night Jazz", "tags": ["Chill", "chill", "late"]},
            headers={"Authorization": f"Bearer {owner}"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "Late Night Jazz" and r.json()["tags"] == ["chill", "late"]
        assert r.json()["genres"] == ["jazz"]  # untouched
        updated, _ = await watcher.until(is_event("room.updated"))
        assert updated["data"]["room"]["name"] == "Late Night Jazz" and "seq" in updated
    row = await db.fetchrow("SELECT name, tags, genres FROM rooms WHERE id = $1", uuid.UUID(room["id"]))
    assert row is not None and (row["name"], list(row["tags"]), list(row["genres"])) == (
        "Late Night Jazz",
        ["chill", "late"],
        ["jazz"],
    )
    assert (await http.get(f"/api/v1/rooms/{room['id']}")).json()["name"] == "Late Night Jazz"


async def test_deleting_a_room_ends_its_session_and_closes_sockets_4004(
    http: httpx.AsyncClient, live: Live, db: Database
) -> None:
    owner, _ = await live.user("founder")
    other, _ = await live.user("guest1")
    room = await live.room(owner)
    async with live.connect(room["id"], owner) as host, live.connect(room["id"], other) as watcher:
        assert (await host.request("session.start", {"mode": "public"}))[0]["ok"]
        r = await http.delete(f"/api/v1/rooms/{room['id']}", headers={"Authorization": f"Bearer {other}"})
        assert r.status_code == 403
        r = await http.delete(f"/api/v1/rooms/{room['id']}", headers={"Authorization": f"Bearer {owner}"})
        assert r.status_code == 204
        seen: list[dict[str, object]] = []
        with pytest.raises(ConnectionClosed) as info:
            while True:
                seen.append(await watcher.recv())
        assert info.value.reason is not None and info.value.reason.code == 4004
        names = [m.get("name") for m in seen if m.get("type") == "event"]
        assert names[-2:] == ["session.ended", "room.deleted"]
        ended = next(m for m in seen if m.get("name") == "session.ended")
        assert ended["data"]["reason"] == "room_deleted"  # type: ignore[index]
    assert (await http.get(f"/api/v1/rooms/{room['id']}")).status_code == 404
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(live.url(room["id"], owner)):
            pass
    assert rejected.value.status_code == 404
    assert (
        await db.fetchval("SELECT end_reason FROM dj_sessions WHERE room_id = $1", uuid.UUID(room["id"]))
        == "room_deleted"
    )
