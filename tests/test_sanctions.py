"""Site-wide bans, mutes and warnings: in force everywhere before the admin call returns, over by clock."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from server.context import AppContext
from storage.database import Database
from storage.sanctions import Sanctions
from tests.live_client import PASSWORD, Live
from tests.test_reports import admin_auth, bearer


class Clock:
    """The sanctions' clock, moved by hand."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))  # whole seconds: times compare exactly in ms

    def __call__(self) -> float:
        return self.now


async def login(http: httpx.AsyncClient, username: str) -> httpx.Response:
    return await http.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})


async def test_ban_closes_sockets_refuses_everything_and_expires(
    http: httpx.AsyncClient, live: Live, ctx: AppContext, db: Database
) -> None:
    clock = Clock()
    ctx.sanctions.clock = clock
    admin, admin_id = await admin_auth(ctx)
    owner, _ = await live.user("owner")
    rowdy, rowdy_id = await live.user("rowdy")
    first, second = await live.room(owner), await live.room(owner)

    async with live.connect(first["id"], rowdy) as one, live.connect(second["id"], rowdy) as two:
        r = await http.post(
            f"/api/v1/admin/users/{rowdy_id}/ban", json={"seconds": 3600, "reason": "spam"}, headers=admin
        )
        assert r.status_code == 200, r.text
        status = r.json()
        assert status["is_banned"] and status["banned_until"] is not None
        for sock in (one, two):  # both rooms, closed by the time the call returned
            with pytest.raises(ConnectionClosed) as closed:
                await sock.until(lambda m: False)
            assert closed.value.reason is not None and closed.value.reason.code == 4010

    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(live.url(first["id"], rowdy)):
            pass
    assert rejected.value.status_code == 403
    me = await http.get("/api/v1/me", headers=bearer(rowdy))
    assert me.status_code == 403 and me.json()["error"]["code"] == "forbidden"
    assert me.json()["error"]["details"]["banned_until"] == status["banned_until"]
    refused = await login(http, "rowdy")
    assert (
        refused.status_code == 403
        and refused.json()["error"]["details"]["banned_until"] == status["banned_until"]
    )
    wrong = await http.post("/api/v1/auth/login", json={"username": "rowdy", "password": "not it at all"})
    assert wrong.status_code == 401  # a ban is not told to whoever guesses the name

    restarted = Sanctions(db, clock)  # a restarted server mirrors what was committed
    await restarted.load()
    assert restarted.ban_of(rowdy_id) == ctx.sanctions.ban_of(rowdy_id) is not None

    clock.now += 3601  # the ban is over by itself, with no job
    assert (await http.get("/api/v1/me", headers=bearer(rowdy))).status_code == 200
    assert (await login(http, "rowdy")).status_code == 200
    async with live.connect(first["id"], rowdy) as back:
        assert back.welcome["data"]["you"]["user_id"] == rowdy_id
    over = (await http.get(f"/api/v1/admin/users/{rowdy_id}/moderation", headers=admin)).json()
    assert over == {
        "user_id": rowdy_id,
        "is_banned": False,
        "banned_until": None,
        "muted_until": None,
        "warn_count": 0,
    }

    # for good, until an admin lifts it
    forever = await http.post(f"/api/v1/admin/users/{rowdy_id}/ban", json={"reason": "again"}, headers=admin)
    assert forever.json()["is_banned"] and forever.json()["banned_until"] is None
    clock.now += 10 * 366 * 86_400
    me = await http.get("/api/v1/me", headers=bearer(rowdy))
    assert me.status_code == 403 and me.json()["error"]["details"] == {"banned_until": None}
    lifted = await http.post(f"/api/v1/admin/users/{rowdy_id}/unban", headers=admin)
    assert lifted.status_code == 200 and not lifted.json()["is_banned"]
    assert (await http.get("/api/v1/me", headers=bearer(rowdy))).status_code == 200

    log = await db.fetch(
        "SELECT action, actor_id::text AS actor, target_user_id::text AS target, room_id FROM moderation_log"
        " ORDER BY id"
    )
    assert [(r["action"], r["actor"], r["target"], r["room_id"]) for r in log] == [
        ("ban", admin_id, rowdy_id, None),
        ("ban", admin_id, rowdy_id, None),
        ("unban", admin_id, rowdy_id, None),
    ]


async def test_a_site_mute_holds_in_every_room_and_expires(
    http: httpx.AsyncClient, live: Live, ctx: AppContext
) -> None:
    clock = Clock()
    ctx.sanctions.clock = clock
    admin, _ = await admin_auth(ctx)
    owner, _ = await live.user("owner")
    loud, loud_id = await live.user("loud")
    rooms = [await live.room(owner), await live.room(owner)]
    async with live.connect(rooms[0]["id"], loud) as here, live.connect(rooms[1]["id"], loud) as there:
        r = await http.post(
            f"/api/v1/admin/users/{loud_id}/mute", json={"seconds": 60, "reason": "caps"}, headers=admin
        )
        assert r.status_code == 200 and r.json()["muted_until"] is not None
        for sock in (here, there):
            reply, _ = await sock.request("chat.send", {"text": "HELLO"})
            assert reply["error"]["code"] == "muted", reply
        assert (await http.get("/api/v1/me", headers=bearer(loud))).status_code == 200  # muted, not banned
        async with live.connect(rooms[1]["id"], loud) as late:  # told on joining, too
            assert late.welcome["data"]["you"]["muted_until"] == int(clock.now * 1000) + 60_000
        clock.now += 61
        assert (await here.request("chat.send", {"text": "hello"}))[0]["ok"]

        await http.post(
            f"/api/v1/admin/users/{loud_id}/mute", json={"seconds": 600, "reason": "x"}, headers=admin
        )
        assert (await there.request("chat.send", {"text": "HI"}))[0]["error"]["code"] == "muted"
        assert (await http.post(f"/api/v1/admin/users/{loud_id}/unmute", headers=admin)).status_code == 200
        assert (await there.request("chat.send", {"text": "hi"}))[0]["ok"]

    for n in (1, 2):
        warned = await http.post(
            f"/api/v1/admin/users/{loud_id}/warn", json={"reason": "be nice"}, headers=admin
        )
        assert warned.status_code == 200 and warned.json()["warn_count"] == n
    mutes = await http.get("/api/v1/admin/moderation/log", params={"action": "mute"}, headers=admin)
    assert [e["metadata"] for e in mutes.json()["items"]] == [
        {"scope": "site", "seconds": 600},
        {"scope": "site", "seconds": 60},
    ]


async def test_admin_calls_refuse_bad_input_and_non_admins(
    http: httpx.AsyncClient, live: Live, ctx: AppContext, db: Database
) -> None:
    admin, admin_id = await admin_auth(ctx)
    user, user_id = await live.user("plain")
    base = f"/api/v1/admin/users/{user_id}"
    assert (await http.post(f"{base}/ban", json={"reason": "x"}, headers=bearer(user))).status_code == 403
    assert (await http.get(f"{base}/moderation", headers=bearer(user))).status_code == 403
    assert (await http.get(f"{base}/moderation")).status_code == 401
    for path, body, field in (
        ("ban", {}, "reason"),
        ("ban", {"reason": "x", "seconds": 0}, "seconds"),
        ("ban", {"reason": "x", "seconds": "60"}, "seconds"),
        ("mute", {"reason": "x"}, "seconds"),
        ("warn", {"reason": ""}, "reason"),
    ):
        r = await http.post(f"{base}/{path}", json=body, headers=admin)
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == field, (path, body, r.text)
    r = await http.post(f"/api/v1/admin/users/{uuid.uuid4()}/ban", json={"reason": "x"}, headers=admin)
    assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "user_id"
    r = await http.post(f"/api/v1/admin/users/{admin_id}/ban", json={"reason": "x"}, headers=admin)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "user_id"
    assert await db.fetchval("SELECT count(*) FROM user_sanctions") == 0
    assert await db.fetchval("SELECT count(*) FROM moderation_log") == 0
