"""Playlists over real HTTP: CRUD and privacy, items, reorder, collaborators, pages, PLAYLIST_ADD points."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.live_client import Live, is_event


def track(n: int, duration_ms: int = 300_000) -> dict[str, Any]:
    return {
        "url": f"https://www.deezer.com/en/track/{n}",
        "title": f"T{n}",
        "artist": "A",
        "duration_ms": duration_ms,
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _create(http: httpx.AsyncClient, token: str, **body: Any) -> dict[str, Any]:
    r = await http.post("/api/v1/playlists", json={"name": "Mix", **body}, headers=bearer(token))
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def _add(http: httpx.AsyncClient, token: str, playlist_id: str, n: int) -> dict[str, Any]:
    r = await http.post(
        f"/api/v1/playlists/{playlist_id}/items", json={"track": track(n)}, headers=bearer(token)
    )
    assert r.status_code == 201, r.text
    item: dict[str, Any] = r.json()
    return item


async def _all_items(http: httpx.AsyncClient, token: str, playlist_id: str) -> list[dict[str, Any]]:
    r = await http.get(f"/api/v1/playlists/{playlist_id}/items?limit=100", headers=bearer(token))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_crud_privacy_and_lists(http: httpx.AsyncClient, live: Live) -> None:
    owner, owner_id = await live.user("owner")
    other, _ = await live.user("other")
    mix = await _create(http, owner, name="Late Night", description="slow ones")
    assert mix["owner"]["id"] == owner_id and mix["owner"]["username"] == "owner"
    assert (mix["name"], mix["is_public"], mix["items_count"], mix["my_role"]) == (
        "Late Night",
        True,
        0,
        "owner",
    )
    url = f"/api/v1/playlists/{mix['id']}"

    seen = (await http.get(url, headers=bearer(other))).json()
    assert seen["name"] == "Late Night" and seen["my_role"] is None  # public: anyone signed in reads it
    assert (await http.get(url)).status_code == 401
    r = await http.patch(url, json={"name": "Mine now"}, headers=bearer(other))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert (await http.delete(url, headers=bearer(other))).status_code == 403

    r = await http.patch(url, json={"is_public": False, "description": None}, headers=bearer(owner))
    assert r.status_code == 200, r.text
    assert (r.json()["is_public"], r.json()["description"], r.json()["name"]) == (False, None, "Late Night")
    # private: invisible to others, as if it did not exist
    for method in ("GET", "PATCH", "DELETE"):
        r = await http.request(
            method, url, json={"name": "x"} if method == "PATCH" else None, headers=bearer(other)
        )
        assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "playlist_id", method
    r = await http.post(f"{url}/items", json={"track": track(1)}, headers=bearer(other))
    assert r.status_code == 404

    for body, field in (
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": None}, "body"),
        ({"is_public": None}, "body"),
        ({"is_public": "yes please"}, "is_public"),
        ({"owner_id": str(uuid.uuid4())}, "owner_id"),
    ):
        r = await http.patch(url, json=body, headers=bearer(owner))
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == field, (body, r.text)
    r = await http.post("/api/v1/playlists", json={"description": "no name"}, headers=bearer(owner))
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "name"
    assert (await http.get(url, headers=bearer(owner))).json()["name"] == "Late Night"  # no half-writes

    public = await _create(http, owner, name="Sunny")
    mine = (await http.get("/api/v1/playlists/mine", headers=bearer(owner))).json()
    assert [p["id"] for p in mine["items"]] == [public["id"], mix["id"]]  # newest first
    theirs = (await http.get("/api/v1/profiles/owner/playlists", headers=bearer(other))).json()
    assert [p["id"] for p in theirs["items"]] == [public["id"]]  # the private one stays hidden
    assert (await http.get("/api/v1/profiles/ghost/playlists", headers=bearer(other))).status_code == 404
    assert (await http.get("/api/v1/playlists/mine", headers=bearer(other))).json()["items"] == []

    assert (await http.delete(url, headers=bearer(owner))).status_code == 204
    assert (await http.get(url, headers=bearer(owner))).status_code == 404
    assert (await http.get("/api/v1/playlists/not-an-id", headers=bearer(owner))).status_code == 404


async def test_items_and_collaborators(http: httpx.AsyncClient, live: Live) -> None:
    owner, _ = await live.user("owner")
    collab, collab_id = await live.user("collab")
    stranger, _ = await live.user("stranger")
    mix = await _create(http, owner)
    base = f"/api/v1/playlists/{mix['id']}"

    share = {
        "url": "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC?si=abc123&context=x",
        "title": "Never",
        "artist": "Rick",
        "duration_ms": 213_000,
    }
    r = await http.post(f"{base}/items", json={"track": share}, headers=bearer(owner))
    assert r.status_code == 201, r.text
    first = r.json()
    assert (
        first["track"]["provider"] == "spotify" and first["track"]["provider_id"] == "4uLU6hMCjMI75M1A2tKUQC"
    )
    assert first["position"] == 0 and first["added_by"]["username"] == "owner"
    same = {**share, "url": "https://open.spotify.com/intl-de/track/4uLU6hMCjMI75M1A2tKUQC"}
    again = (await http.post(f"{base}/items", json={"track": same}, headers=bearer(owner))).json()
    assert again["track"]["id"] == first["track"]["id"] and again["position"] == 1  # one track_ref per song

    r = await http.post(
        f"{base}/items", json={"track": {**share, "url": "https://example.com/song"}}, headers=bearer(owner)
    )
    assert r.status_code == 422 and r.json()["error"]["details"]["field"].startswith("track"), r.text
    r = await http.post(f"{base}/items", json={"track": {**share, "duration_ms": 10}}, headers=bearer(owner))
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "track.duration_ms"

    # strangers read a public playlist but change nothing
    assert (
        await http.post(f"{base}/items", json={"track": track(1)}, headers=bearer(stranger))
    ).status_code == 403
    r = await http.delete(f"{base}/items/{first['id']}", headers=bearer(stranger))
    assert r.status_code == 403
    r = await http.post(f"{base}/collaborators", json={"username": "stranger"}, headers=bearer(stranger))
    assert r.status_code == 403

    # the owner invites; the collaborator edits items but not the playlist itself
    for body, status, field in (
        ({"username": "nobody_here"}, 404, "username"),
        ({"user_id": str(uuid.uuid4())}, 404, "user_id"),
        ({"username": "owner"}, 409, "username"),
        ({}, 422, "body"),
        ({"username": "collab", "user_id": collab_id}, 422, "body"),
    ):
        r = await http.post(f"{base}/collaborators", json=body, headers=bearer(owner))
        assert r.status_code == status and r.json()["error"]["details"]["field"] == field, (body, r.text)
    r = await http.post(f"{base}/collaborators", json={"username": "collab"}, headers=bearer(owner))
    assert r.status_code == 201 and r.json()["user"]["id"] == collab_id
    r = await http.post(f"{base}/collaborators", json={"user_id": collab_id}, headers=bearer(owner))
    assert r.status_code == 200  # already one
    listed = (await http.get(f"{base}/collaborators", headers=bearer(stranger))).json()
    assert [c["user"]["username"] for c in listed["items"]] == ["collab"]
    assert (await http.get(base, headers=bearer(collab))).json()["my_role"] == "collaborator"
    shared = (await http.get("/api/v1/playlists/mine", headers=bearer(collab))).json()
    assert [p["id"] for p in shared["items"]] == [mix["id"]]

    added = await _add(http, collab, mix["id"], 7)
    assert added["position"] == 2 and added["added_by"]["id"] == collab_id
    assert (await http.delete(f"{base}/items/{first['id']}", headers=bearer(collab))).status_code == 204
    assert (await http.patch(base, json={"name": "x"}, headers=bearer(collab))).status_code == 403
    assert (await http.delete(base, headers=bearer(collab))).status_code == 403
    r = await http.post(f"{base}/collaborators", json={"username": "stranger"}, headers=bearer(collab))
    assert r.status_code == 403
    r = await http.delete(f"{base}/collaborators/{collab_id}", headers=bearer(stranger))
    assert r.status_code == 403
    assert [i["id"] for i in await _all_items(http, owner, mix["id"])] == [again["id"], added["id"]]
    assert (await http.get(base, headers=bearer(owner))).json()["items_count"] == 2
    r = await http.delete(f"{base}/items/{first['id']}", headers=bearer(owner))
    assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "item_id"

    # a collaborator may leave; then they are a stranger again
    assert (await http.delete(f"{base}/collaborators/{collab_id}", headers=bearer(collab))).status_code == 204
    assert (
        await http.post(f"{base}/items", json={"track": track(8)}, headers=bearer(collab))
    ).status_code == 403
    assert (await http.delete(f"{base}/collaborators/{collab_id}", headers=bearer(owner))).status_code == 404


async def test_reorder(http: httpx.AsyncClient, live: Live) -> None:
    owner, _ = await live.user("owner")
    mix = await _create(http, owner)
    items = [(await _add(http, owner, mix["id"], n))["id"] for n in range(5)]
    expected = list(items)

    async def move(item_id: str, position: int) -> None:
        r = await http.patch(
            f"/api/v1/playlists/{mix['id']}/items/{item_id}",
            json={"position": position},
            headers=bearer(owner),
        )
        assert r.status_code == 200, r.text
        expected.remove(item_id)
        expected.insert(min(position, len(expected)), item_id)
        assert r.json()["position"] == expected.index(item_id)

    await move(items[4], 0)
    await move(items[0], 99)  # past the end: last
    # squeeze one item between the same two neighbours until the ranks run out of room
    for _ in range(14):
        await move(expected[-1], 1)
    listed = await _all_items(http, owner, mix["id"])
    assert [i["id"] for i in listed] == expected
    assert [i["position"] for i in listed] == list(range(5))
    r = await http.patch(
        f"/api/v1/playlists/{mix['id']}/items/{items[0]}", json={"position": -1}, headers=bearer(owner)
    )
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "position"
    r = await http.patch(
        f"/api/v1/playlists/{mix['id']}/items/{uuid.uuid4()}", json={"position": 0}, headers=bearer(owner)
    )
    assert r.status_code == 404


async def test_item_pages_are_stable(http: httpx.AsyncClient, live: Live) -> None:
    owner, _ = await live.user("owner")
    mix = await _create(http, owner)
    ids = [(await _add(http, owner, mix["id"], n))["id"] for n in range(5)]
    url = f"/api/v1/playlists/{mix['id']}/items?limit=2"
    page = (await http.get(url, headers=bearer(owner))).json()
    seen = [i["id"] for i in page["items"]]
    ids += [(await _add(http, owner, mix["id"], n))["id"] for n in range(5, 8)]  # added between pages
    await http.delete(
        f"/api/v1/playlists/{mix['id']}/items/{seen[0]}", headers=bearer(owner)
    )  # one seen leaves
    while page["next_cursor"]:
        page = (await http.get(f"{url}&cursor={page['next_cursor']}", headers=bearer(owner))).json()
        seen += [i["id"] for i in page["items"]]
    assert seen == ids  # nothing skipped, nothing twice
    r = await http.get(f"{url}&cursor=garbage", headers=bearer(owner))
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "cursor"
    r = await http.get(f"/api/v1/playlists/{mix['id']}/items?limit=0", headers=bearer(owner))
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "limit"


async def test_adding_a_played_track_awards_its_dj(http: httpx.AsyncClient, live: Live) -> None:
    host, _ = await live.user("host")
    dj, dj_id = await live.user("deejay")
    fan, _ = await live.user("fan")
    fan2, _ = await live.user("fan2")
    room = await live.room(host)
    r = await http.post(f"/api/v1/rooms/{room['id']}/dj/start", json={"mode": "fan"}, headers=bearer(host))
    session_id = r.json()["session_id"]
    async with live.connect(room["id"], dj) as dj_socket:
        assert (
            await http.post(f"/api/v1/dj/sessions/{session_id}/rotation/join", headers=bearer(dj))
        ).status_code == 200
        r = await http.post(
            f"/api/v1/dj/sessions/{session_id}/queue", json={"track": track(42)}, headers=bearer(dj)
        )
        assert r.status_code == 201, r.text
        await dj_socket.until(is_event("track.started"))
        before = (await http.get("/api/v1/progression/me", headers=bearer(dj))).json()["total_points"]

        mix = await _create(http, fan)
        await _add(http, fan, mix["id"], 42)
        awarded, _ = await dj_socket.until(is_event("points.awarded"))
        assert awarded["data"]["points"] == 5 and awarded["data"]["reason"] == "playlist_add"
        assert (await http.get("/api/v1/progression/me", headers=bearer(dj))).json()[
            "total_points"
        ] == before + 5

        # once per user per track: the same fan adding it again (anywhere) earns nothing more
        await _add(http, fan, mix["id"], 42)
        await _add(http, fan, (await _create(http, fan, name="Other"))["id"], 42)
        # the DJ adding their own track earns nothing; a track nobody played earns nobody anything
        await _add(http, dj, (await _create(http, dj))["id"], 42)
        await _add(http, fan, mix["id"], 43)
        assert (await http.get("/api/v1/progression/me", headers=bearer(dj))).json()[
            "total_points"
        ] == before + 5
        # another fan is another user: +5 again
        await _add(http, fan2, (await _create(http, fan2))["id"], 42)
        awarded, _ = await dj_socket.until(is_event("points.awarded"))
        assert awarded["data"]["total"] == before + 10
    points = (await http.get("/api/v1/progression/me/points", headers=bearer(dj))).json()["items"]
    assert [p["event_type"] for p in points].count("playlist_add") == 2
    assert dj_id
