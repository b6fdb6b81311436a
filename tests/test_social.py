"""Follows and likes over real HTTP, behind FEATURE_SOCIAL (REST.md "Social")."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import httpx
import pytest
import trio

from server.config import Settings
from server.context import AppContext
from tests.live_client import Live


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, feature_social=True)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def quick_user(ctx: AppContext, name: str, role: str = "user") -> tuple[str, str]:
    """A user without the Argon2 cost of registering (many are needed); (token, id)."""
    user = await ctx.users.create(email=f"{name}@example.com", username=name, password_hash="x", role=role)
    return ctx.tokens.issue(user.id, role), str(user.id)


async def test_every_social_path_is_404_while_the_flag_is_off(
    http: httpx.AsyncClient, live: Live, ctx: AppContext
) -> None:
    ctx.settings = replace(ctx.settings, feature_social=False)
    token, user_id = await live.user("flagless")
    for method, path, body in (
        ("POST", "/api/v1/social/follow", {"target_id": user_id, "target_type": "user"}),
        ("DELETE", f"/api/v1/social/follow/{user_id}", None),
        ("GET", f"/api/v1/social/followers/{user_id}", None),
        ("GET", f"/api/v1/social/following/{user_id}", None),
        ("POST", "/api/v1/social/like", {"entity_type": "playlist", "entity_id": str(uuid.uuid4())}),
        ("DELETE", f"/api/v1/social/like/playlist/{uuid.uuid4()}", None),
        ("GET", f"/api/v1/social/likes/playlist/{uuid.uuid4()}", None),
        ("GET", "/api/v1/social/me/likes", None),
        ("GET", f"/api/v1/social/stats/user/{user_id}", None),
    ):
        r = await http.request(method, path, json=body, headers=bearer(token))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (method, path)


async def test_follows(http: httpx.AsyncClient, ctx: AppContext) -> None:
    ana, ana_id = await quick_user(ctx, "ana")
    ben, ben_id = await quick_user(ctx, "ben")
    star, star_id = await quick_user(ctx, "star", role="artist")

    r = await http.post(
        "/api/v1/social/follow", json={"target_id": ben_id, "target_type": "user"}, headers=bearer(ana)
    )
    assert r.status_code == 201, r.text
    first = r.json()
    assert (first["follower_id"], first["followee_id"], first["followee_type"]) == (ana_id, ben_id, "user")
    r = await http.post(
        "/api/v1/social/follow", json={"target_id": ben_id, "target_type": "user"}, headers=bearer(ana)
    )
    assert r.status_code == 200 and r.json() == first  # again: same body, no count change
    stats = (await http.get(f"/api/v1/social/stats/user/{ben_id}", headers=bearer(ana))).json()
    assert stats == {"entity_type": "user", "entity_id": ben_id, "likes_count": 0, "follows_count": 1}

    for body, status, field in (
        ({"target_id": ana_id, "target_type": "user"}, 422, "target_id"),  # yourself
        ({"target_id": str(uuid.uuid4()), "target_type": "user"}, 404, "target_id"),
        ({"target_id": ben_id, "target_type": "artist"}, 422, "target_type"),  # ben is no artist
        ({"target_id": ben_id, "target_type": "band"}, 422, "target_type"),
        ({"target_id": "not-an-id", "target_type": "user"}, 422, "target_id"),
    ):
        r = await http.post("/api/v1/social/follow", json=body, headers=bearer(ana))
        assert r.status_code == status and r.json()["error"]["details"]["field"] == field, (body, r.text)
    assert (
        await http.post("/api/v1/social/follow", json={"target_id": ben_id, "target_type": "user"})
    ).status_code == 401

    r = await http.post(
        "/api/v1/social/follow", json={"target_id": star_id, "target_type": "artist"}, headers=bearer(ana)
    )
    assert r.status_code == 201 and r.json()["followee_type"] == "artist"
    await http.post(
        "/api/v1/social/follow", json={"target_id": star_id, "target_type": "user"}, headers=bearer(ben)
    )
    assert (await http.get(f"/api/v1/social/stats/artist/{star_id}", headers=bearer(ben))).json()[
        "follows_count"
    ] == 2

    following = (await http.get(f"/api/v1/social/following/{ana_id}", headers=bearer(ben))).json()
    assert [f["user"]["username"] for f in following["items"]] == ["star", "ben"]  # newest first
    assert following["items"][0]["user"] == {
        "id": star_id,
        "username": "star",
        "display_name": None,
        "avatar_url": None,
    }
    followers = (await http.get(f"/api/v1/social/followers/{star_id}", headers=bearer(ana))).json()
    assert [f["user"]["username"] for f in followers["items"]] == ["ben", "ana"]
    assert (
        await http.get(f"/api/v1/social/followers/{uuid.uuid4()}", headers=bearer(ana))
    ).status_code == 404
    assert (await http.get(f"/api/v1/social/followers/{star_id}")).status_code == 401

    assert (await http.delete(f"/api/v1/social/follow/{ben_id}", headers=bearer(ana))).status_code == 204
    r = await http.delete(f"/api/v1/social/follow/{ben_id}", headers=bearer(ana))
    assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "target_id"
    assert (await http.get(f"/api/v1/social/stats/user/{ben_id}", headers=bearer(ana))).json()[
        "follows_count"
    ] == 0
    assert star  # the artist token is unused: following needs nothing of the followee


async def test_follower_pages_are_stable_under_inserts(http: httpx.AsyncClient, ctx: AppContext) -> None:
    _, idol_id = await quick_user(ctx, "idol")
    fans = [await quick_user(ctx, f"fan{n}") for n in range(7)]

    async def follow(token: str) -> None:
        r = await http.post(
            "/api/v1/social/follow", json={"target_id": idol_id, "target_type": "user"}, headers=bearer(token)
        )
        assert r.status_code == 201

    for token, _ in fans[:4]:
        await follow(token)
    url = f"/api/v1/social/followers/{idol_id}?limit=2"
    page = (await http.get(url, headers=bearer(fans[0][0]))).json()
    seen = [f["user"]["id"] for f in page["items"]]
    for token, _ in fans[4:]:
        await follow(token)  # newer than every page still to come: they must not shift it
    while page["next_cursor"]:
        page = (await http.get(f"{url}&cursor={page['next_cursor']}", headers=bearer(fans[0][0]))).json()
        seen += [f["user"]["id"] for f in page["items"]]
    assert seen == [uid for _, uid in reversed(fans[:4])]


async def test_likes_respect_what_the_caller_can_see(
    http: httpx.AsyncClient, live: Live, ctx: AppContext
) -> None:
    owner, _ = await live.user("owner")
    member, member_id = await live.user("member")
    stranger, _ = await live.user("stranger")
    private_mix = (
        await http.post(
            "/api/v1/playlists", json={"name": "Secret", "is_public": False}, headers=bearer(owner)
        )
    ).json()
    public_mix = (await http.post("/api/v1/playlists", json={"name": "Open"}, headers=bearer(owner))).json()
    track = {"url": "https://www.deezer.com/track/77", "title": "T", "artist": "A", "duration_ms": 60_000}
    item = (
        await http.post(
            f"/api/v1/playlists/{public_mix['id']}/items", json={"track": track}, headers=bearer(owner)
        )
    ).json()
    secret_item = (
        await http.post(
            f"/api/v1/playlists/{private_mix['id']}/items", json={"track": track}, headers=bearer(owner)
        )
    ).json()
    club = await live.room(owner, type="private")
    r = await http.post(
        f"/api/v1/rooms/{club['id']}/invite", json={"user_id": member_id}, headers=bearer(owner)
    )
    assert r.status_code in (200, 201), r.text
    async with live.connect(club["id"], owner) as sock:
        message_id = (await sock.chat("members only"))["data"]["message_id"]

    async def like(token: str, entity_type: str, entity_id: str) -> httpx.Response:
        return await http.post(
            "/api/v1/social/like",
            json={"entity_type": entity_type, "entity_id": entity_id},
            headers=bearer(token),
        )

    # what the stranger cannot see answers 404, as if it did not exist
    for entity_type, entity_id in (
        ("playlist", private_mix["id"]),
        ("playlist_item", secret_item["id"]),
        ("message", message_id),
        ("playlist", str(uuid.uuid4())),
        ("track_ref", str(uuid.uuid4())),
        ("feed_event", str(uuid.uuid4())),
    ):
        r = await like(stranger, entity_type, entity_id)
        assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "entity_id", (
            entity_type,
            r.text,
        )
        r = await http.get(f"/api/v1/social/likes/{entity_type}/{entity_id}", headers=bearer(stranger))
        assert r.status_code == 404, entity_type
    r = await like(stranger, "room", str(uuid.uuid4()))
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "entity_type"

    # what they can see, they like: once
    for token, entity_type, entity_id in (
        (stranger, "playlist", public_mix["id"]),
        (stranger, "playlist_item", item["id"]),
        (stranger, "track_ref", item["track"]["id"]),
        (member, "message", message_id),
        (owner, "playlist", private_mix["id"]),
    ):
        r = await like(token, entity_type, entity_id)
        assert r.status_code == 201 and r.json()["likes_count"] == 1, (entity_type, r.text)
        again = await like(token, entity_type, entity_id)
        assert again.status_code == 200 and again.json()["likes_count"] == 1
        assert again.json()["liked_at"] == r.json()["liked_at"]
    likers = (await http.get(f"/api/v1/social/likes/message/{message_id}", headers=bearer(owner))).json()
    assert likers["likes_count"] == 1 and [u["user"]["username"] for u in likers["items"]] == ["member"]
    mine = (await http.get("/api/v1/social/me/likes", headers=bearer(stranger))).json()
    assert [m["entity_type"] for m in mine["items"]] == [
        "track_ref",
        "playlist_item",
        "playlist",
    ]  # newest first
    only = (await http.get("/api/v1/social/me/likes?entity_type=playlist", headers=bearer(stranger))).json()
    assert [m["entity_id"] for m in only["items"]] == [public_mix["id"]]
    r = await http.get("/api/v1/social/me/likes?entity_type=room", headers=bearer(stranger))
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "entity_type"

    # like, unlike, like: one
    url = f"/api/v1/social/like/playlist/{public_mix['id']}"
    assert (await http.delete(url, headers=bearer(stranger))).status_code == 204
    r = await http.delete(url, headers=bearer(stranger))
    assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "entity_id"
    assert (await like(stranger, "playlist", public_mix["id"])).json()["likes_count"] == 1
    stats = (
        await http.get(f"/api/v1/social/stats/playlist/{public_mix['id']}", headers=bearer(member))
    ).json()
    assert stats == {
        "entity_type": "playlist",
        "entity_id": public_mix["id"],
        "likes_count": 1,
        "follows_count": 0,
    }
    assert (
        await http.get(f"/api/v1/social/stats/playlist/{private_mix['id']}", headers=bearer(member))
    ).status_code == 404


async def test_fifty_concurrent_likes_count_fifty(
    http: httpx.AsyncClient, live: Live, ctx: AppContext
) -> None:
    owner, _ = await live.user("popular")
    mix = (await http.post("/api/v1/playlists", json={"name": "Hits"}, headers=bearer(owner))).json()
    fans = [(await quick_user(ctx, f"liker{n}"))[0] for n in range(50)]
    statuses: list[int] = []

    async def like(token: str) -> None:
        r = await http.post(
            "/api/v1/social/like",
            json={"entity_type": "playlist", "entity_id": mix["id"]},
            headers=bearer(token),
        )
        statuses.append(r.status_code)

    async with trio.open_nursery() as nursery:
        for token in fans:
            nursery.start_soon(like, token)
    assert statuses == [201] * 50
    stats = (await http.get(f"/api/v1/social/stats/playlist/{mix['id']}", headers=bearer(owner))).json()
    assert stats["likes_count"] == 50
    page: dict[str, Any] = (
        await http.get(f"/api/v1/social/likes/playlist/{mix['id']}?limit=100", headers=bearer(owner))
    ).json()
    assert page["likes_count"] == 50 and len(page["items"]) == 50
