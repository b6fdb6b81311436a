"""A room's history of played tracks over REST (REST.md "Room history"), from a real fan session
over live sockets: what ended is in it, newest first, with its DJ, times, reason and final votes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx

from tests.live_client import Client, Live, Message, is_event
from tests.test_live_sessions import short_track


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ok(sock: Client, op: str, data: dict[str, Any] | None = None) -> Message:
    reply, _ = await sock.request(op, data)
    assert reply["ok"], (op, reply)
    return reply


async def add(sock: Client, n: int, duration_ms: int) -> str:
    reply = await ok(sock, "queue.add", {"track": short_track(n, duration_ms)})
    item_id: str = reply["data"]["item_id"]
    return item_id


async def next_event(watch: Client, name: str, item_id: str) -> Message:
    """The next ``name`` event of ``item_id`` the watching socket sees (events come in order)."""
    event, before = await watch.until(is_event(name))
    got = event["data"]["item"]["item_id"] if name == "track.started" else event["data"]["item_id"]
    assert got == item_id, (name, event, before)
    return event


async def whole_history(http: httpx.AsyncClient, room_id: str, limit: int, **params: str) -> list[Message]:
    """Every item, page by page, checking that each page but the last is full."""
    items: list[Message] = []
    cursor: str | None = None
    for _ in range(100):
        query: dict[str, str | int] = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        r = await http.get(f"/api/v1/rooms/{room_id}/history", params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert len(body["items"]) == limit
    raise AssertionError("the cursor never ended")


async def test_the_history_of_a_fan_session(http: httpx.AsyncClient, live: Live) -> None:
    host, _ = await live.user("host")
    ana, ana_id = await live.user("ana")
    ben, ben_id = await live.user("ben")
    cara, _ = await live.user("cara")
    room = await live.room(host)
    path = f"/api/v1/rooms/{room['id']}/history"
    async with (
        live.connect(room["id"]) as watch,  # only listens: sees every event in order
        live.connect(room["id"], host) as h,
        live.connect(room["id"], ana) as a,
        live.connect(room["id"], ben) as b,
        live.connect(room["id"], cara) as c,
    ):
        await ok(h, "session.start", {"mode": "fan"})
        await ok(a, "dj.join")
        await ok(b, "dj.join")
        first = await add(a, 1, 60_000)
        started = {first: await next_event(watch, "track.started", first)}
        second = await add(b, 2, 1000)  # ben's turn is next, then ana's
        third = await add(a, 3, 1000)
        await ok(c, "vote", {"item_id": first, "value": "down"})
        await ok(c, "vote.skip", {"item_id": first})
        assert (await http.get(path)).json() == {"items": [], "next_cursor": None}  # still playing
        await ok(h, "mod.skip")
        ended = {first: await next_event(watch, "track.ended", first)}
        for item_id in (second, third):
            started[item_id] = await next_event(watch, "track.started", item_id)
            ended[item_id] = await next_event(watch, "track.ended", item_id)
        fourth = await add(a, 4, 60_000)
        started[fourth] = await next_event(watch, "track.started", fourth)

        items = (await http.get(path)).json()["items"]
        assert [i["item_id"] for i in items] == [third, second, first]  # the playing one is not in it
        await ok(h, "session.stop")
        await watch.until(is_event("session.ended"))

    r = await http.get(path, headers=bearer(cara))
    assert r.status_code == 200 and r.json()["next_cursor"] is None
    items = r.json()["items"]
    assert [i["item_id"] for i in items] == [fourth, third, second, first]
    by_id = {i["item_id"]: i for i in items}
    assert [by_id[i]["dj_id"] for i in (first, second, third, fourth)] == [ana_id, ben_id, ana_id, ana_id]
    assert [by_id[i]["reason"] for i in (first, second, third, fourth)] == [
        "mod_skip",
        "completed",
        "completed",
        "stopped",  # the session ended while it played
    ]
    assert by_id[first]["votes"] == {"up": 0, "down": 1, "skip": 1}
    for item_id, event in ended.items():
        assert by_id[item_id]["votes"] == event["data"]["votes"]
        assert by_id[item_id]["reason"] == event["data"]["reason"]
    assert by_id[fourth]["votes"] == {"up": 0, "down": 0, "skip": 0}
    for item_id, event in started.items():
        entry = by_id[item_id]
        assert set(entry) == {"item_id", "track", "dj_id", "started_at", "ended_at", "reason", "votes"}
        assert entry["track"] == event["data"]["item"]["track"]
        began = datetime.fromisoformat(entry["started_at"])
        finished = datetime.fromisoformat(entry["ended_at"])
        offset = began.utcoffset()
        assert offset is not None and offset.total_seconds() == 0  # UTC, as every REST time
        assert int(began.timestamp() * 1000) == event["data"]["started_at"]
        assert finished >= began
    for item_id in (second, third):  # 1000 ms tracks that played to their end
        entry = by_id[item_id]
        played = datetime.fromisoformat(entry["ended_at"]) - datetime.fromisoformat(entry["started_at"])
        assert played.total_seconds() >= 1

    # Paging: newest first, one item at a time through the cursor, with and without a DJ.
    assert [i["item_id"] for i in await whole_history(http, room["id"], 1)] == [fourth, third, second, first]
    assert [i["item_id"] for i in await whole_history(http, room["id"], 2)] == [fourth, third, second, first]
    assert [i["item_id"] for i in await whole_history(http, room["id"], 1, dj_id=ana_id)] == [
        fourth,
        third,
        first,
    ]
    assert [i["item_id"] for i in await whole_history(http, room["id"], 1, dj_id=ben_id)] == [second]
    assert await whole_history(http, room["id"], 5, dj_id=str(uuid.uuid4())) == []


async def test_bad_queries_name_their_field(http: httpx.AsyncClient, live: Live) -> None:
    host, _ = await live.user("host")
    room = await live.room(host)
    path = f"/api/v1/rooms/{room['id']}/history"
    for params, status, field in (
        ({"dj_id": "ana"}, 422, "dj_id"),
        ({"limit": 0}, 422, "limit"),
        ({"limit": 101}, 422, "limit"),
        ({"limit": "many"}, 422, "limit"),
        ({"cursor": "not-ours"}, 400, "cursor"),
        ({"cursor": "WzEsMl0"}, 400, "cursor"),  # [1,2]: ours in shape, but no item id in it
        ({"order": "oldest"}, 422, "order"),
    ):
        r = await http.get(path, params=params)
        assert r.status_code == status and r.json()["error"]["details"]["field"] == field, (params, r.text)
    for where in (str(uuid.uuid4()), "not-a-room"):
        r = await http.get(f"/api/v1/rooms/{where}/history")
        assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "room_id", r.text
    r = await http.get(path, headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401, r.text


async def test_a_private_rooms_history_is_for_its_members(http: httpx.AsyncClient, live: Live) -> None:
    owner, owner_id = await live.user("owner")
    member, member_id = await live.user("member")
    outsider, _ = await live.user("outsider")
    club = await live.room(owner, type="private")
    r = await http.post(
        f"/api/v1/rooms/{club['id']}/invite", json={"user_id": member_id}, headers=bearer(owner)
    )
    assert r.status_code in (200, 201), r.text
    async with live.connect(club["id"], owner) as sock:
        await ok(sock, "session.start", {"mode": "fan"})
        await ok(sock, "dj.join")
        item_id = await add(sock, 7, 1000)
        await sock.until(lambda m: is_event("track.ended")(m) and m["data"]["item_id"] == item_id)
    path = f"/api/v1/rooms/{club['id']}/history"
    for token in (owner, member):
        r = await http.get(path, headers=bearer(token))
        assert r.status_code == 200, r.text
        assert [(i["item_id"], i["dj_id"]) for i in r.json()["items"]] == [(item_id, owner_id)]
    for headers in (bearer(outsider), {}):  # as its chat history: no such room to them
        r = await http.get(path, headers=headers)
        assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "room_id", r.text
        r = await http.get(path, params={"cursor": "not-ours"}, headers=headers)
        assert r.status_code == 404, r.text  # not even a bad cursor tells them the room is there
        chat = await http.get(f"/api/v1/rooms/{club['id']}/messages", headers=headers)
        assert chat.status_code == 404
