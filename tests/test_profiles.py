"""Profiles: my own to change, anyone's to read by username."""

from __future__ import annotations

import uuid

import httpx

from storage.database import Database
from tests.live_client import Live


async def test_profiles(http: httpx.AsyncClient, live: Live, db: Database) -> None:
    token, user_id = await live.user("profiled")
    other, _ = await live.user("someone")
    auth = {"Authorization": f"Bearer {token}"}
    me = (await http.get("/api/v1/profiles/me", headers=auth)).json()
    assert me == {
        "user_id": user_id,
        "username": "profiled",
        "display_name": None,
        "bio": None,
        "avatar_url": None,
        "favorite_genres": [],
        "onboarding_genres": [],
        "role": "user",
        "artist": None,
    }
    r = await http.patch(
        "/api/v1/profiles/me",
        json={
            "display_name": "Pro Filed",
            "favorite_genres": ["Jazz", "jazz", "Soul"],
            "avatar_url": "https://x.io/a.png",
        },
        headers=auth,
    )
    assert r.status_code == 200
    assert (r.json()["display_name"], r.json()["favorite_genres"]) == ("Pro Filed", ["jazz", "soul"])
    r = await http.patch("/api/v1/profiles/me", json={"bio": "hi"}, headers=auth)
    assert r.json()["display_name"] == "Pro Filed" and r.json()["bio"] == "hi"  # untouched fields stay
    for body, field in (
        ({"avatar_url": "http://x.io/a.png"}, "avatar_url"),
        ({"user_id": str(uuid.uuid4())}, "user_id"),
        ({"favorite_genres": ["x" * 41]}, "favorite_genres"),
    ):
        r = await http.patch("/api/v1/profiles/me", json=body, headers=auth)
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == field, (body, r.text)
    public = (await http.get("/api/v1/profiles/PROFILED")).json()  # public read, usernames case-insensitive
    assert public["display_name"] == "Pro Filed" and public["bio"] == "hi"
    assert (await http.get("/api/v1/profiles/nobody_at_all")).status_code == 404
    assert (await http.get("/api/v1/profiles/me")).status_code == 401
    theirs = (await http.get("/api/v1/profiles/someone", headers={"Authorization": f"Bearer {other}"})).json()
    assert theirs["display_name"] is None  # nobody else's PATCH touched it
    await db.execute(
        "INSERT INTO artist_profiles (user_id, artist_name, links, verified) VALUES ($1, 'P', $2, true)",
        uuid.UUID(user_id),
        ["https://bandcamp.com/p"],
    )
    assert (await http.get("/api/v1/profiles/profiled")).json()["artist"] == {
        "links": ["https://bandcamp.com/p"],
        "verified": True,
    }
