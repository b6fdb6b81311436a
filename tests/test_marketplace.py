"""The artist marketplace over real HTTP (REST.md "Marketplace")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from server.context import AppContext
from storage.database import Database


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def artist(ctx: AppContext, db: Database, name: str, *, verified: bool = True) -> tuple[str, str]:
    user = await ctx.users.create(
        email=f"{name}@example.com", username=name, password_hash="x", role="artist"
    )
    await db.execute(
        "INSERT INTO artist_profiles (user_id, artist_name, verified) VALUES ($1, $2, $3)",
        user.id,
        name,
        verified,
    )
    return ctx.tokens.issue(user.id, "artist"), str(user.id)


def concert(days: float, **extra: Any) -> dict[str, Any]:
    starts = (datetime.now(UTC) + timedelta(days=days)).isoformat()
    return {
        "type": "concert",
        "title": f"Live in {days:g} days",
        "price": "35",
        "currency": "eur",
        "metadata": {"starts_at": starts, "venue": "Paradiso", "city": "Amsterdam"},
        **extra,
    }


async def test_sell_change_and_withdraw(http: httpx.AsyncClient, ctx: AppContext, db: Database) -> None:
    seller, seller_id = await artist(ctx, db, "seller")
    other_artist, _ = await artist(ctx, db, "rival")
    hopeful, _ = await artist(ctx, db, "hopeful", verified=False)
    fan = ctx.tokens.issue(
        (await ctx.users.create(email="f@example.com", username="fan", password_hash="x")).id, "user"
    )
    admin_user = await ctx.users.create(
        email="a@example.com", username="boss", password_hash="x", role="admin"
    )
    admin = ctx.tokens.issue(admin_user.id, "admin")

    shirt = {
        "type": "merch",
        "title": "Tour shirt",
        "price": "12.5",
        "external_url": "https://shop.example.com/shirt",
        "image_url": "https://img.example.com/shirt.png",
    }
    for token in (fan, hopeful, admin):  # verified artists only
        r = await http.post("/api/v1/marketplace/items", json=shirt, headers=bearer(token))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert (await http.post("/api/v1/marketplace/items", json=shirt)).status_code == 401
    r = await http.post("/api/v1/marketplace/items", json=shirt, headers=bearer(seller))
    assert r.status_code == 201, r.text
    item = r.json()
    assert (item["artist_id"], item["price"], item["currency"], item["active"]) == (
        seller_id,
        "12.50",
        "USD",
        True,
    )
    assert item["metadata"] == {} and item["description"] is None
    url = f"/api/v1/marketplace/items/{item['id']}"

    for token in (fan, other_artist):  # the owning artist or an admin; others 403
        assert (await http.patch(url, json={"title": "Mine"}, headers=bearer(token))).status_code == 403
        assert (await http.delete(url, headers=bearer(token))).status_code == 403
    r = await http.patch(url, json={"price": "15.00", "description": "Black, cotton"}, headers=bearer(seller))
    assert r.status_code == 200 and r.json()["price"] == "15.00" and r.json()["title"] == "Tour shirt"
    r = await http.patch(url, json={"price": None}, headers=bearer(admin))
    assert r.status_code == 200 and r.json()["price"] is None
    r = await http.patch(url, json={"type": "concert"}, headers=bearer(seller))  # a concert needs its details
    assert r.status_code == 422 and r.json()["error"]["details"]["field"].startswith("metadata."), r.text
    assert (await http.get(url)).json()["type"] == "merch"  # nothing half-written

    assert (await http.delete(url, headers=bearer(seller))).status_code == 204
    assert (await http.get(url)).status_code == 404  # off sale: hidden from the public ...
    assert (await http.get(url, headers=bearer(fan))).status_code == 404
    assert (await http.get(url, headers=bearer(seller))).json()["active"] is False  # ... not from its artist
    assert (await http.get(url, headers=bearer(admin))).status_code == 200
    assert (await http.get("/api/v1/marketplace/items")).json()["items"] == []
    assert (await http.get(f"/api/v1/marketplace/items/{uuid.uuid4()}")).status_code == 404


async def test_validation_names_the_field(http: httpx.AsyncClient, ctx: AppContext, db: Database) -> None:
    seller, _ = await artist(ctx, db, "seller")
    base = {"type": "merch", "title": "Poster"}
    for extra, field in (
        ({"price": "12.345"}, "price"),  # three decimals
        ({"price": "-1.00"}, "price"),
        ({"price": 12.5}, "price"),  # money is a string, never a float
        ({"price": "100000000.00"}, "price"),
        ({"currency": "ABC"}, "currency"),
        ({"currency": "dollars"}, "currency"),
        ({"external_url": "http://shop.example.com/p"}, "external_url"),
        ({"image_url": "ftp://x/y.png"}, "image_url"),
        ({"type": "ticket"}, "type"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"description": "x" * 5001}, "description"),
        ({"artist_id": str(uuid.uuid4())}, "artist_id"),
    ):
        r = await http.post("/api/v1/marketplace/items", json={**base, **extra}, headers=bearer(seller))
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == field, (extra, r.text)
    for metadata, field in (
        ({"venue": "Paradiso", "city": "Amsterdam"}, "metadata.starts_at"),  # a concert without a date
        ({"starts_at": "2027-01-01T20:00:00Z", "city": "Amsterdam"}, "metadata.venue"),
        ({"starts_at": "soon", "venue": "V", "city": "C"}, "metadata.starts_at"),
        ({"starts_at": "2027-01-01T20:00:00", "venue": "V", "city": "C"}, "metadata"),  # no time zone
    ):
        body = {"type": "concert", "title": "Gig", "metadata": metadata}
        r = await http.post("/api/v1/marketplace/items", json=body, headers=bearer(seller))
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == field, (metadata, r.text)
    assert (await http.get("/api/v1/marketplace/items")).json()["items"] == []  # none of it was stored


async def test_browsing_by_artist_type_and_upcoming(
    http: httpx.AsyncClient, ctx: AppContext, db: Database
) -> None:
    ana, ana_id = await artist(ctx, db, "ana")
    ben, ben_id = await artist(ctx, db, "ben")

    async def sell(token: str, body: dict[str, Any]) -> str:
        r = await http.post("/api/v1/marketplace/items", json=body, headers=bearer(token))
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    late = await sell(ana, concert(30))
    soon = await sell(ben, concert(2))
    past = await sell(ana, concert(-1))
    track = await sell(ana, {"type": "track", "title": "Single", "price": "0.99", "currency": "GBP"})
    mid = await sell(ben, concert(10))

    newest = (await http.get("/api/v1/marketplace/items")).json()
    assert [i["id"] for i in newest["items"]] == [mid, track, past, soon, late]
    by_ana = (await http.get("/api/v1/marketplace/items", params={"artist_id": ana_id})).json()
    assert [i["id"] for i in by_ana["items"]] == [track, past, late]
    tracks = (await http.get("/api/v1/marketplace/items", params={"type": "track"})).json()
    assert [i["id"] for i in tracks["items"]] == [track] and tracks["items"][0]["currency"] == "GBP"
    upcoming = (await http.get("/api/v1/marketplace/items", params={"upcoming": "true", "limit": 2})).json()
    assert [i["id"] for i in upcoming["items"]] == [soon, mid]  # soonest first; the past one is not
    rest = await http.get(
        "/api/v1/marketplace/items", params={"upcoming": "true", "cursor": upcoming["next_cursor"]}
    )
    assert [i["id"] for i in rest.json()["items"]] == [late]
    by_ben = (
        await http.get("/api/v1/marketplace/items", params={"artist_id": ben_id, "upcoming": "true"})
    ).json()
    assert [i["id"] for i in by_ben["items"]] == [soon, mid]
    r = await http.get("/api/v1/marketplace/items", params={"type": "vinyl"})
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "type"
