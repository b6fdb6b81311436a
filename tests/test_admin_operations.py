"""Operations over REST (REST.md "Operations (admins)"): the nodes alive, the rooms live on
them and each room's owner, read over real HTTP from a server whose rooms run behind leases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import trio

from server.config import Settings
from server.context import AppContext
from server.http.pagination import encode_cursor
from storage.leases import Leases, RoomSeen
from tests.live_client import Live, is_event
from tests.test_dj_rest import track
from tests.test_reports import admin_auth, bearer

TTL_S = 1.5  # renewals (which write the live rooms' stats) every TTL/3
WAIT_S = 15.0  # how long a test waits for what the next renewals should show

NODES = "/api/v1/admin/nodes"
LIVE = "/api/v1/admin/rooms/live"


def owner_path(room_id: str) -> str:
    return f"/api/v1/admin/rooms/{room_id}/owner"


@pytest.fixture(name="settings")
def _short_leases(settings: Settings) -> Settings:
    return replace(settings, lease_ttl_s=TTL_S)


async def eventually(
    fetch: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool], *, within: float = WAIT_S
) -> Any:
    """``fetch()`` again and again until ``ok`` holds of what it gives; a failure after ``within`` s
    shows the last thing fetched."""
    last: Any = None
    with trio.move_on_after(within):
        while True:
            last = await fetch()
            if ok(last):
                return last
            await trio.sleep(0.05)
    raise AssertionError(f"not so after {within} s; last seen: {last!r}")


async def get_json(http: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any) -> Any:
    r = await http.get(path, params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def walk(http: httpx.AsyncClient, admin: dict[str, str], limit: int) -> list[dict[str, Any]]:
    """Every live room, page by page, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        body = await get_json(http, LIVE, admin, **params)
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the pages never ended")


def error_of(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code, error
    return error


async def test_admins_only(http: httpx.AsyncClient, live: Live, ctx: AppContext) -> None:
    fan, _ = await live.user("fan")
    room = await live.room(fan)
    for path in (NODES, LIVE, owner_path(room["id"])):
        error_of(await http.get(path), 401, "unauthorized")
        error_of(await http.get(path, headers={"Authorization": "Basic abc"}), 401, "unauthorized")
        error_of(await http.get(path, headers=bearer("not.a.token")), 401, "unauthorized")
        error_of(await http.get(path, headers=bearer(fan)), 403, "forbidden")
    admin, _ = await admin_auth(ctx)
    assert (await http.get(NODES, headers=admin)).status_code == 200


async def test_nodes_live_rooms_and_owners(http: httpx.AsyncClient, live: Live, ctx: AppContext) -> None:
    admin, _ = await admin_auth(ctx)
    host, _ = await live.user("host")
    friend, _ = await live.user("friend")
    quiet, pair, solo, idle = [await live.room(host) for _ in range(4)]

    async with (
        live.connect(quiet["id"]),  # a guest: a socket, but no listener
        live.connect(pair["id"], host),
        live.connect(pair["id"], friend),
        live.connect(solo["id"], friend),
    ):
        expected = {quiet["id"]: (1, 0), pair["id"]: (2, 2), solo["id"]: (1, 1)}  # sockets, listeners

        def settled(body: dict[str, Any]) -> bool:
            seen = {r["room_id"]: (r["sockets"], r["listeners"]) for r in body["items"]}
            return seen == expected

        body = await eventually(lambda: get_json(http, LIVE, admin, limit=100), settled)
        assert body["next_cursor"] is None
        rooms = body["items"]
        assert [r["room_id"] for r in rooms] == [pair["id"], solo["id"], quiet["id"]]  # most listeners first
        names = {quiet["id"]: quiet["name"], pair["id"]: pair["name"], solo["id"]: solo["name"]}
        for r in rooms:
            assert set(r) == {
                "room_id", "name", "node_id", "epoch", "seq", "sockets", "listeners", "session"
            }  # fmt: skip
            assert r["name"] == names[r["room_id"]]
            assert r["epoch"] >= 1 and r["seq"] >= 0
            assert r["session"] is None
        node_ids = {r["node_id"] for r in rooms}
        assert len(node_ids) == 1  # one process: one node owns them all
        (node_id,) = node_ids
        uuid.UUID(node_id)

        # the one node of this single-process server: this process, owning the three rooms
        def counted(body: dict[str, Any]) -> bool:
            return (
                len(body["items"]) == 1
                and body["items"][0]["rooms_owned"] == 3
                and body["items"][0]["sockets"] >= 4
            )

        nodes = await eventually(lambda: get_json(http, NODES, admin), counted)
        assert set(nodes) == {"items"}
        (node,) = nodes["items"]
        assert set(node) == {"node_id", "host", "pid", "started_at", "heartbeat_at", "rooms_owned", "sockets"}
        assert node["node_id"] == node_id
        assert node["pid"] == os.getpid()  # the server runs in the test's own process
        assert node["host"]
        started = datetime.fromisoformat(node["started_at"])
        beat = datetime.fromisoformat(node["heartbeat_at"])
        assert started.tzinfo is not None and started <= beat

        for r in rooms:
            owner = await get_json(http, owner_path(r["room_id"]), admin)
            assert set(owner) == {"room_id", "node_id", "epoch", "expires_at"}
            assert (owner["room_id"], owner["node_id"], owner["epoch"]) == (r["room_id"], node_id, r["epoch"])
            assert datetime.fromisoformat(owner["expires_at"]) > datetime.now(UTC) - timedelta(seconds=TTL_S)

        # paging one at a time walks every room once, in the same order
        assert [r["room_id"] for r in await walk(http, admin, 1)] == [r["room_id"] for r in rooms]
        assert [r["room_id"] for r in await walk(http, admin, 2)] == [r["room_id"] for r in rooms]

        # nobody ever opened this one: no owner, and not live
        error = error_of(await http.get(owner_path(idle["id"]), headers=admin), 404, "not_found")
        assert error["details"]["field"] == "room_id"
        error = error_of(await http.get(owner_path(str(uuid.uuid4())), headers=admin), 404, "not_found")
        assert error["details"]["field"] == "room_id"
        error = error_of(await http.get(owner_path("not-a-room"), headers=admin), 404, "not_found")
        assert error["details"]["field"] == "room_id"


async def test_a_live_session_shows_its_mode_and_track(
    http: httpx.AsyncClient, live: Live, ctx: AppContext
) -> None:
    admin, _ = await admin_auth(ctx)
    host, host_id = await live.user("host")
    room = await live.room(host)
    auth = bearer(host)
    async with live.connect(room["id"], host) as sock:
        r = await http.post(f"/api/v1/rooms/{room['id']}/dj/start", json={"mode": "fan"}, headers=auth)
        assert r.status_code == 201, r.text
        session_id = r.json()["session_id"]
        assert (
            await http.post(f"/api/v1/dj/sessions/{session_id}/rotation/join", headers=auth)
        ).status_code == 200
        r = await http.post(f"/api/v1/dj/sessions/{session_id}/queue", json={"track": track(1)}, headers=auth)
        assert r.status_code == 201, r.text
        item_id = r.json()["item_id"]
        await sock.until(is_event("track.started"))

        def playing(body: dict[str, Any]) -> bool:
            return any(
                r["room_id"] == room["id"]
                and r["session"] is not None
                and r["session"]["now_playing"] is not None
                for r in body["items"]
            )

        body = await eventually(lambda: get_json(http, LIVE, admin), playing)
        (seen,) = [r for r in body["items"] if r["room_id"] == room["id"]]
        assert seen["session"]["mode"] == "fan"
        now = seen["session"]["now_playing"]
        assert now["item"]["item_id"] == item_id and now["dj_id"] == host_id
        assert seen["seq"] > 0


_SOME_ROOM = "5b0e2a4e-0d8f-4c1b-9a53-1c2f3e4d5a6b"  # fixed: xdist workers must collect the same ids


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "%%%",
        encode_cursor([1]),  # the wrong arity
        encode_cursor([1, _SOME_ROOM, 3]),
        encode_cursor(["1", _SOME_ROOM]),  # a count as text
        encode_cursor([True, _SOME_ROOM]),
        encode_cursor([-1, _SOME_ROOM]),
        encode_cursor([2**31, _SOME_ROOM]),  # beyond a Postgres integer
        encode_cursor([1.5, _SOME_ROOM]),
        encode_cursor([1, "not-a-uuid"]),
        encode_cursor([1, 7]),
        encode_cursor([1, "\u0000"]),
    ],
)
async def test_a_cursor_not_ours_is_400(http: httpx.AsyncClient, ctx: AppContext, cursor: str) -> None:
    admin, _ = await admin_auth(ctx)
    error = error_of(await http.get(LIVE, params={"cursor": cursor}, headers=admin), 400, "bad_request")
    assert error["details"]["field"] == "cursor"


async def test_limit_bounds(http: httpx.AsyncClient, ctx: AppContext) -> None:
    admin, _ = await admin_auth(ctx)
    for limit in ("0", "101", "ten"):
        r = await http.get(LIVE, params={"limit": limit}, headers=admin)
        assert r.status_code in (400, 422), r.text
        assert r.json()["error"]["details"]["field"] == "limit"
    r = await http.get(LIVE, params={"limit": "100"}, headers=admin)
    assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}
    r = await http.get(LIVE, params={"colour": "red"}, headers=admin)  # a misspelt parameter
    assert r.status_code in (400, 422), r.text


async def test_documented_in_openapi(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    for path in ("/api/v1/admin/nodes", "/api/v1/admin/rooms/live", "/api/v1/admin/rooms/{room_id}/owner"):
        operation = paths[path]["get"]
        assert "200" in operation["responses"] and "4XX" in operation["responses"], path
        assert operation["security"] == [{"bearer": []}], path


async def test_a_second_node_and_its_rooms(http: httpx.AsyncClient, live: Live, ctx: AppContext) -> None:
    """Another node on the same database (as a second process would be): its rooms are listed
    with what its renewals wrote, ties by room id, paged without a room twice; gone when it stops."""
    admin, _ = await admin_auth(ctx)
    host, _ = await live.user("host")
    rooms = [await live.room(host) for _ in range(5)]
    other = Leases(ctx.db, str(uuid.uuid4()), ttl_s=60)
    await other.register()
    listeners = [3, 3, 3, 1, 0]
    seen: list[RoomSeen] = []
    for room, count in zip(rooms, listeners, strict=True):
        epoch = await other.claim(room["id"])
        assert epoch == 1
        session: dict[str, Any] | None = (
            {"mode": "public", "now_playing": None, "session_id": "s", "queue": []} if count == 1 else None
        )
        seen.append(
            RoomSeen(room["id"], epoch, seq=10 + count, sockets=count + 1, listeners=count, session=session)
        )
    assert await other.renew(seen, sockets=42) == {room["id"] for room in rooms}

    body = await get_json(http, LIVE, admin, limit=100)
    ids = [r["room_id"] for r in body["items"]]
    tied = sorted((room["id"] for room in rooms[:3]), reverse=True)  # ties: by room id, descending
    assert ids == [*tied, rooms[3]["id"], rooms[4]["id"]]
    by_id = {r["room_id"]: r for r in body["items"]}
    for room, count in zip(rooms, listeners, strict=True):
        assert by_id[room["id"]] == {
            "room_id": room["id"],
            "name": room["name"],
            "node_id": other.node_id,
            "epoch": 1,
            "seq": 10 + count,
            "sockets": count + 1,
            "listeners": count,
            "session": {"mode": "public", "now_playing": None} if count == 1 else None,
        }
    for limit in (1, 2, 3):
        assert [r["room_id"] for r in await walk(http, admin, limit)] == ids

    owner = await get_json(http, owner_path(rooms[0]["id"]), admin)
    assert (owner["node_id"], owner["epoch"]) == (other.node_id, 1)

    nodes = {n["node_id"]: n for n in (await get_json(http, NODES, admin))["items"]}
    assert nodes[other.node_id]["rooms_owned"] == 5 and nodes[other.node_id]["sockets"] == 42
    assert nodes[other.node_id]["pid"] == os.getpid()

    await other.stop()  # every lease handed back, the node gone
    assert (await get_json(http, LIVE, admin))["items"] == []
    error_of(await http.get(owner_path(rooms[0]["id"]), headers=admin), 404, "not_found")
    assert other.node_id not in {n["node_id"] for n in (await get_json(http, NODES, admin))["items"]}
