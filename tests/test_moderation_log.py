"""The moderation log over REST: a room's own for its owner and moderators, everything for admins."""

from __future__ import annotations

import uuid

import httpx

from server.context import AppContext
from storage.database import Database
from tests.live_client import Live


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_room_and_admin_logs(
    http: httpx.AsyncClient, live: Live, ctx: AppContext, db: Database
) -> None:
    owner, owner_id = await live.user("owner")
    mod_token, mod_id = await live.user("moddy")
    noisy_token, noisy_id = await live.user("noisy")
    room = await live.room(owner)
    other = await live.room(owner)
    await db.execute(
        "INSERT INTO room_memberships (room_id, user_id, role) VALUES ($1, $2, 'moderator')",
        room["id"],
        mod_id,
    )
    async with live.connect(room["id"], owner) as boss, live.connect(room["id"], noisy_token):
        for op, data in (
            ("mod.mute", {"user_id": noisy_id, "seconds": 60}),
            ("mod.unmute", {"user_id": noisy_id}),
        ):
            reply, _ = await boss.request(op, data)
            assert reply["ok"], reply
    async with live.connect(other["id"], owner) as boss:
        reply, _ = await boss.request("mod.kick", {"user_id": noisy_id})
        assert reply["ok"] or reply["error"]["code"] == "not_found", reply  # not there: maybe nothing to log

    url = f"/api/v1/rooms/{room['id']}/moderation/log"
    for token in (owner, mod_token):
        log = (await http.get(url, headers=bearer(token))).json()
        assert [e["action"] for e in log["items"]] == ["unmute", "mute"], log  # newest first
        mute = log["items"][1]
        assert (mute["actor_id"], mute["target_user_id"], mute["room_id"]) == (owner_id, noisy_id, room["id"])
        assert mute["metadata"] == {"seconds": 60} and mute["reason"] is None
    r = await http.get(url, headers=bearer(noisy_token))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert (await http.get(url)).status_code == 401
    first = (await http.get(url, params={"limit": 1}, headers=bearer(owner))).json()
    rest = (await http.get(url, params={"cursor": first["next_cursor"]}, headers=bearer(owner))).json()
    assert [e["action"] for e in first["items"] + rest["items"]] == ["unmute", "mute"]

    admin = await ctx.users.create(
        email="a@example.com", username="site_admin", password_hash="x", role="admin"
    )
    admin_auth = bearer(ctx.tokens.issue(admin.id, "admin"))
    everything = (await http.get("/api/v1/admin/moderation/log", headers=admin_auth)).json()
    assert {e["action"] for e in everything["items"]} >= {"mute", "unmute"}
    mutes = (
        await http.get("/api/v1/admin/moderation/log", params={"action": "mute"}, headers=admin_auth)
    ).json()
    assert [e["action"] for e in mutes["items"]] == ["mute"]
    by_room = await http.get(
        "/api/v1/admin/moderation/log", params={"room_id": other["id"]}, headers=admin_auth
    )
    assert all(e["room_id"] == other["id"] for e in by_room.json()["items"])
    by_actor = await http.get("/api/v1/admin/moderation/log", params={"actor_id": mod_id}, headers=admin_auth)
    assert by_actor.json()["items"] == []
    r = await http.get("/api/v1/admin/moderation/log", headers=bearer(owner))
    assert r.status_code == 403
    r = await http.get("/api/v1/admin/moderation/log", params={"room_id": "x"}, headers=admin_auth)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "room_id"
    r = await http.get(f"/api/v1/rooms/{uuid.uuid4()}/moderation/log", headers=bearer(owner))
    assert r.status_code == 404


async def test_rest_room_acts_are_logged(http: httpx.AsyncClient, live: Live) -> None:
    """Appointing a moderator and deciding join requests are moderation acts too, in the room's log."""
    owner, owner_id = await live.user("owner")
    member, member_id = await live.user("member")
    asker, asker_id = await live.user("asker")
    stranger, stranger_id = await live.user("stranger")
    room = await live.room(owner, visibility="private")
    rid = room["id"]
    r = await http.post(f"/api/v1/rooms/{rid}/invite", json={"user_id": member_id}, headers=bearer(owner))
    assert r.status_code == 201, r.text
    r = await http.patch(
        f"/api/v1/rooms/{rid}/members/{member_id}", json={"role": "moderator"}, headers=bearer(owner)
    )
    assert r.status_code == 200, r.text
    for who in (asker, stranger):
        assert (
            await http.post(f"/api/v1/rooms/{rid}/requests", json={}, headers=bearer(who))
        ).status_code == 201
    pending = (await http.get(f"/api/v1/rooms/{rid}/requests", headers=bearer(owner))).json()["items"]
    ids = {p["user_id"]: p["id"] for p in pending}
    await http.post(f"/api/v1/rooms/{rid}/requests/{ids[asker_id]}/approve", headers=bearer(owner))
    await http.post(
        f"/api/v1/rooms/{rid}/requests/{ids[stranger_id]}/deny",
        json={"reason": "full"},
        headers=bearer(member),
    )
    log = (await http.get(f"/api/v1/rooms/{rid}/moderation/log", headers=bearer(member))).json()["items"]
    assert [(e["action"], e["actor_id"], e["target_user_id"]) for e in log] == [
        ("deny_join", member_id, stranger_id),
        ("approve_join", owner_id, asker_id),
        ("set_role", owner_id, member_id),
    ]
    assert log[0]["reason"] == "full" and log[2]["metadata"] == {"role": "moderator"}
