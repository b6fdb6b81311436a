"""Linked accounts: tokens sealed at rest, never returned, only the caller's own."""

from __future__ import annotations

import uuid

import httpx
import pytest
from cryptography.exceptions import InvalidTag

from server.context import AppContext
from storage.database import Database
from storage.sealing import Sealer, key_bytes, new_key_text
from tests.live_client import Live

ACCESS = "BQD-very-secret-access-token"


async def test_link_read_relink_unlink(
    http: httpx.AsyncClient, live: Live, ctx: AppContext, db: Database
) -> None:
    token, user_id = await live.user("linker")
    other, _ = await live.user("other")
    auth = {"Authorization": f"Bearer {token}"}
    body = {
        "provider_user_id": "spotify-user-1",
        "access_token": ACCESS,
        "refresh_token": "refresh-me",
        "expires_at": "2027-01-01T00:00:00Z",
    }
    r = await http.put("/api/v1/me/linked-accounts/spotify", json=body, headers=auth)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"provider", "provider_user_id", "expires_at", "last_sync_at", "created_at"}
    listed = (await http.get("/api/v1/me/linked-accounts", headers=auth)).json()
    assert [a["provider"] for a in listed] == ["spotify"] and ACCESS not in str(listed)
    assert (
        await http.get("/api/v1/me/linked-accounts", headers={"Authorization": f"Bearer {other}"})
    ).json() == []

    row = await db.fetchrow(
        "SELECT access_token, refresh_token FROM linked_accounts WHERE user_id = $1", uuid.UUID(user_id)
    )
    assert row is not None and ACCESS.encode() not in row["access_token"]  # sealed at rest
    assert b"refresh-me" not in row["refresh_token"]
    assert await ctx.linked_accounts.tokens(uuid.UUID(user_id), "spotify") == (ACCESS, "refresh-me")
    with pytest.raises(InvalidTag):  # another key, or the same bytes in another row, does not open it
        Sealer(key_bytes(new_key_text())).open(row["access_token"], f"{user_id}:spotify:access")
    with pytest.raises(InvalidTag):
        Sealer(
            key_bytes(ctx.settings.encryption_key or (ctx.settings.data_dir / "encryption_key").read_text())
        ).open(row["access_token"], f"{user_id}:deezer:access")

    r = await http.put(
        "/api/v1/me/linked-accounts/spotify",
        json={"provider_user_id": "u2", "access_token": "new"},
        headers=auth,
    )
    assert r.status_code == 200 and r.json()["provider_user_id"] == "u2" and r.json()["expires_at"] is None
    assert await ctx.linked_accounts.tokens(uuid.UUID(user_id), "spotify") == ("new", None)

    for path, payload, status, field in (
        (
            "/api/v1/me/linked-accounts/myspace",
            {"provider_user_id": "x", "access_token": "t"},
            404,
            "provider",
        ),
        ("/api/v1/me/linked-accounts/deezer", {"provider_user_id": "x"}, 422, "access_token"),
        (
            "/api/v1/me/linked-accounts/deezer",
            {"provider_user_id": "x", "access_token": "t", "expires_at": "2027-01-01T00:00:00"},
            422,
            "expires_at",
        ),
        (
            "/api/v1/me/linked-accounts/deezer",
            {"provider_user_id": "", "access_token": "t"},
            422,
            "provider_user_id",
        ),
    ):
        r = await http.put(path, json=payload, headers=auth)
        assert r.status_code == status and r.json()["error"]["details"]["field"] == field, (
            path,
            payload,
            r.text,
        )
    assert (await http.put("/api/v1/me/linked-accounts/deezer", json=body)).status_code == 401
    assert (await http.delete("/api/v1/me/linked-accounts/spotify", headers=auth)).status_code == 204
    r = await http.delete("/api/v1/me/linked-accounts/spotify", headers=auth)
    assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "provider"
    assert (await http.get("/api/v1/me/linked-accounts", headers=auth)).json() == []


def test_a_configured_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        key_bytes("dG9vLXNob3J0")
    assert len(key_bytes(new_key_text())) == 32
