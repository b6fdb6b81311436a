"""Room membership, roles, mine and discover over REST."""

from __future__ import annotations

import httpx

from tests.live_client import Live


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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
    assert names == ["Rock On", "Jazz Club", "Jazz Secret", "Late Night Jazz"]
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
