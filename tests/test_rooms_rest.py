"""Room membership, roles, mine and discover over REST."""

from __future__ import annotations

import uuid

import httpx
import pytest
from trio_websocket import ConnectionRejected, open_websocket_url

from storage.database import Database
from tests.conftest import BOTH
from tests.live_client import Live


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("server_mode", BOTH, indirect=True)
async def test_join_leave_members_and_roles_reach_live_sockets(http: httpx.AsyncClient, live: Live) -> None:
    owner, owner_id = await live.user("roomowner")
    member, member_id = await live.user("joiner")
    room = await live.room(owner)
    private = await live.room(owner, type="private")
    r = await http.post(f"/api/v1/rooms/{room['id']}/join", headers=bearer(member))
    assert r.json() == {"room_id": room["id"], "role": "member"}
    assert (await http.post(f"/api/v1/rooms/{private['id']}/join", headers=bearer(member))).status_code == 404
    assert (await http.post(f"/api/v1/rooms/{room['id']}/leave", headers=bearer(owner))).status_code == 409
    listed = (await http.get(f"/api/v1/rooms/{room['id']}/members")).json()
    assert [(m["user"]["id"], m["role"]) for m in listed["items"]] == [
        (owner_id, "owner"),
        (member_id, "member"),
    ]

    async with live.connect(room["id"], member) as sock:
        message = (await sock.chat("pin me"))["data"]["message_id"]
        reply, _ = await sock.request("chat.pin", {"message_id": message})
        assert reply["error"]["code"] == "forbidden"
        r = await http.patch(
            f"/api/v1/rooms/{room['id']}/members/{member_id}",
            json={"role": "moderator"},
            headers=bearer(member),
        )
        assert r.status_code == 403
        r = await http.patch(
            f"/api/v1/rooms/{room['id']}/members/{owner_id}", json={"role": "member"}, headers=bearer(owner)
        )
        assert r.status_code == 409
        r = await http.patch(
            f"/api/v1/rooms/{room['id']}/members/{member_id}", json={"role": "admin"}, headers=bearer(owner)
        )
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "role"
        r = await http.patch(
            f"/api/v1/rooms/{room['id']}/members/{member_id}",
            json={"role": "moderator"},
            headers=bearer(owner),
        )
        assert r.json() == {"user_id": member_id, "role": "moderator"}
        reply, _ = await sock.request(
            "chat.pin", {"message_id": message}
        )  # the open socket acts with it at once
        assert reply["ok"], reply
    assert (await http.post(f"/api/v1/rooms/{room['id']}/leave", headers=bearer(member))).status_code == 204
    assert (await http.post(f"/api/v1/rooms/{room['id']}/leave", headers=bearer(member))).status_code == 404


async def test_mine_and_discover(http: httpx.AsyncClient, live: Live) -> None:
    owner, _ = await live.user("curator")
    other, _ = await live.user("browser")
    jazz = await live.room(owner, name="Late Night Jazz", genres=["jazz"], tags=["chill"])
    await live.room(owner, name="Jazz Secret", genres=["jazz"], visibility="unlisted")
    await live.room(owner, name="Jazz Club", type="private", genres=["jazz"])
    rock = await live.room(owner, name="Rock On", genres=["rock"], type="genre")
    found = (await http.get("/api/v1/rooms/discover", params={"q": "jazz"})).json()
    assert [r["id"] for r in found["items"]] == [jazz["id"]]  # unlisted and private rooms are never listed
    assert [
        r["id"] for r in (await http.get("/api/v1/rooms/discover", params={"type": "genre"})).json()["items"]
    ] == [rock["id"]]
    assert [
        r["id"] for r in (await http.get("/api/v1/rooms/discover", params={"tag": "CHILL"})).json()["items"]
    ] == [jazz["id"]]
    for wildcard in ("%", "_", "Jazz%Night"):  # q is matched literally, never as a LIKE pattern
        assert (await http.get("/api/v1/rooms/discover", params={"q": wildcard})).json()["items"] == []
    hundred = await live.room(owner, name="100% Vinyl_Only")
    found = (await http.get("/api/v1/rooms/discover", params={"q": "0% vinyl_"})).json()
    assert [r["id"] for r in found["items"]] == [hundred["id"]]
    # unlisted rooms are never listed, but whoever has the link reaches them by id or by slug
    secret = (await http.get("/api/v1/rooms/jazz-secret")).json()
    assert secret["name"] == "Jazz Secret" and secret["visibility"] == "unlisted"
    assert (await http.get(f"/api/v1/rooms/{secret['id']}")).json()["slug"] == "jazz-secret"
    assert (await http.get("/api/v1/rooms/jazz-club")).status_code == 404  # private: not for strangers
    assert (await http.get("/api/v1/rooms/jazz-club", headers=bearer(owner))).status_code == 200
    assert (await http.get("/api/v1/rooms/no-such-room")).status_code == 404
    bad = await http.get("/api/v1/rooms/discover", params={"type": "secret"})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "type"
    mine = (await http.get("/api/v1/rooms/mine", headers=bearer(owner), params={"limit": 2})).json()
    assert len(mine["items"]) == 2 and mine["next_cursor"]
    await live.room(owner, name="Arrives While Paging")  # newer: must not shift the next page
    rest = (
        await http.get(
            "/api/v1/rooms/mine", headers=bearer(owner), params={"limit": 10, "cursor": mine["next_cursor"]}
        )
    ).json()
    names = [r["name"] for r in mine["items"] + rest["items"]]
    assert names == ["100% Vinyl_Only", "Rock On", "Jazz Club", "Jazz Secret", "Late Night Jazz"]
    assert (await http.get("/api/v1/rooms/mine", headers=bearer(other))).json()["items"] == []
    assert (await http.get("/api/v1/rooms/mine")).status_code == 401


async def test_pin_track_and_trending(http: httpx.AsyncClient, live: Live) -> None:
    owner, _ = await live.user("dj_owner")
    fan, _ = await live.user("dj_fan")
    quiet = await live.room(owner, name="Quiet")
    busy = await live.room(owner, name="Busy")
    hidden = await live.room(owner, name="Hidden", visibility="unlisted")
    track = {
        "url": "https://soundcloud.com/flume/never-be-like-you?utm_source=x",
        "title": "Never Be Like You",
        "artist": "Flume",
        "duration_ms": 234000,
    }
    r = await http.post(f"/api/v1/rooms/{busy['id']}/pin-track", json={"track": track}, headers=bearer(fan))
    assert r.status_code == 403
    r = await http.post(
        f"/api/v1/rooms/{busy['id']}/pin-track",
        json={"track": {**track, "url": "https://example.com"}},
        headers=bearer(owner),
    )
    assert r.status_code == 422 and r.json()["error"]["details"]["field"].startswith("track")
    async with live.connect(busy["id"], fan) as listener, live.connect(hidden["id"], fan) as elsewhere:
        r = await http.post(
            f"/api/v1/rooms/{busy['id']}/pin-track", json={"track": track}, headers=bearer(owner)
        )
        assert r.status_code == 200 and r.json()["pinned_track"]["provider_id"] == "flume/never-be-like-you"
        updated, _ = await listener.until(lambda m: m.get("name") == "room.updated")
        assert updated["data"]["room"]["pinned_track"]["title"] == "Never Be Like You"
        await listener.chat("hello")
        await elsewhere.chat("unlisted rooms never trend")
        ranked = (await http.get("/api/v1/rooms/trending")).json()
        assert [r["id"] for r in ranked["items"]] == [busy["id"]]  # a listener now and a message today
        assert ranked["items"][0]["listeners"] == 1 and ranked["items"][0]["score"] == 11
        assert ranked["next_cursor"] is None
    assert quiet["id"] not in [r["id"] for r in (await http.get("/api/v1/rooms/trending")).json()["items"]]


async def test_private_rooms_grow_by_invite_and_approved_requests(
    http: httpx.AsyncClient, live: Live
) -> None:
    owner, _ = await live.user("gatekeeper")
    asker, asker_id = await live.user("asker")
    friend, friend_id = await live.user("friend")
    stranger, _ = await live.user("stranger")
    room = await live.room(owner, type="private")
    rid = room["id"]
    r = await http.post(f"/api/v1/rooms/{rid}/invite", json={"user_id": friend_id}, headers=bearer(stranger))
    assert r.status_code == 404  # a private room is invisible to non-members
    r = await http.post(f"/api/v1/rooms/{rid}/invite", json={"user_id": friend_id}, headers=bearer(owner))
    assert r.status_code == 201
    r = await http.post(f"/api/v1/rooms/{rid}/invite", json={"user_id": friend_id}, headers=bearer(owner))
    assert r.status_code == 409 and r.json()["error"]["details"]["field"] == "user_id"
    async with live.connect(rid, friend) as sock:
        assert sock.welcome["data"]["you"]["role"] == "member"

    r = await http.post(f"/api/v1/rooms/{rid}/requests", json={"message": "let me in"}, headers=bearer(asker))
    assert r.status_code == 201 and r.json()["status"] == "pending"
    request_id = r.json()["id"]
    assert (
        await http.post(f"/api/v1/rooms/{rid}/requests", json={}, headers=bearer(asker))
    ).status_code == 409
    assert (await http.get(f"/api/v1/rooms/{rid}/requests", headers=bearer(friend))).status_code == 403
    pending = (await http.get(f"/api/v1/rooms/{rid}/requests", headers=bearer(owner))).json()
    assert [p["user_id"] for p in pending["items"]] == [asker_id]
    with pytest.raises(ConnectionRejected) as refused:
        async with open_websocket_url(live.url(rid, asker)):
            pass
    assert refused.value.status_code == 403
    r = await http.post(f"/api/v1/rooms/{rid}/requests/{request_id}/approve", headers=bearer(friend))
    assert r.status_code == 403
    r = await http.post(f"/api/v1/rooms/{rid}/requests/{request_id}/approve", headers=bearer(owner))
    assert r.status_code == 200 and r.json()["status"] == "approved"
    async with live.connect(rid, asker) as sock:  # approving lets the user connect
        assert sock.welcome["data"]["you"]["role"] == "member"
    r = await http.post(f"/api/v1/rooms/{rid}/requests/{request_id}/deny", json={}, headers=bearer(owner))
    assert r.status_code == 404  # no longer pending
    r = await http.post(f"/api/v1/rooms/{rid}/requests", json={}, headers=bearer(stranger))
    request_id = r.json()["id"]
    r = await http.post(
        f"/api/v1/rooms/{rid}/requests/{request_id}/deny", json={"reason": "full"}, headers=bearer(owner)
    )
    assert r.json()["status"] == "denied" and r.json()["reason"] == "full"
    public = await live.room(owner)
    r = await http.post(f"/api/v1/rooms/{public['id']}/requests", json={}, headers=bearer(stranger))
    assert r.status_code == 404  # public rooms are joined, not requested


async def test_owner_transfers_the_room_live(http: httpx.AsyncClient, live: Live) -> None:
    owner, owner_id = await live.user("old_owner")
    heir, heir_id = await live.user("heir")
    _, outsider_id = await live.user("outsider")
    room = await live.room(owner)
    rid = room["id"]
    async with live.connect(rid, heir) as heir_sock, live.connect(rid, owner) as owner_sock:
        r = await http.post(f"/api/v1/rooms/{rid}/transfer", json={"user_id": owner_id}, headers=bearer(heir))
        assert r.status_code == 403
        r = await http.post(
            f"/api/v1/rooms/{rid}/transfer", json={"user_id": outsider_id}, headers=bearer(owner)
        )
        assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "user_id"
        r = await http.post(f"/api/v1/rooms/{rid}/transfer", json={"user_id": heir_id}, headers=bearer(owner))
        assert r.status_code == 200 and r.json()["owner_id"] == heir_id
        updated, _ = await heir_sock.until(lambda m: m.get("name") == "room.updated")
        assert updated["data"]["room"]["owner_id"] == heir_id
        # at once, live: the new owner may act on the old one (now a moderator), not the reverse
        reply, _ = await owner_sock.request("mod.mute", {"user_id": heir_id, "seconds": 60})
        assert reply["error"]["code"] == "forbidden"
        reply, _ = await heir_sock.request("mod.mute", {"user_id": owner_id, "seconds": 60})
        assert reply["ok"], reply
    members = (await http.get(f"/api/v1/rooms/{rid}/members")).json()["items"]
    assert {m["user"]["id"]: m["role"] for m in members} == {owner_id: "moderator", heir_id: "owner"}
    assert (await http.delete(f"/api/v1/rooms/{rid}", headers=bearer(owner))).status_code == 403
    async with live.connect(rid, heir) as again:
        assert (
            again.welcome["data"]["you"]["role"] == "owner"
            and again.welcome["data"]["room"]["owner_id"] == heir_id
        )


async def test_a_banned_user_is_refused_before_any_membership_is_written(
    http: httpx.AsyncClient, live: Live, db: Database
) -> None:
    owner, _ = await live.user("bouncer")
    banned, banned_id = await live.user("troublemaker")
    room = await live.room(owner)
    await db.execute(
        "INSERT INTO room_bans (room_id, user_id) VALUES ($1, $2)",
        uuid.UUID(room["id"]),
        uuid.UUID(banned_id),
    )
    r = await http.post(f"/api/v1/rooms/{room['id']}/dj/start", json={"mode": "fan"}, headers=bearer(banned))
    assert r.status_code == 403
    with pytest.raises(ConnectionRejected) as refused:
        async with open_websocket_url(live.url(room["id"], banned)):
            pass
    assert refused.value.status_code == 403
    members = await db.fetchval(
        "SELECT count(*) FROM room_memberships WHERE room_id = $1 AND user_id = $2",
        uuid.UUID(room["id"]),
        uuid.UUID(banned_id),
    )
    assert members == 0
