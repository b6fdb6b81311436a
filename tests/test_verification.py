"""Artist verification over real HTTP: request, the admin queue, approve and deny."""

from __future__ import annotations

import uuid

import httpx

from server.context import AppContext
from tests.live_client import PASSWORD, Live

LINKS = ["https://bandcamp.com/ana", "https://open.spotify.com/artist/4Z8W4fKeB5YxbusRsdQVPb"]


async def _admin(ctx: AppContext, username: str = "boss") -> dict[str, str]:
    admin = await ctx.users.create(
        email=f"{username}@example.com", username=username, password_hash="x", role="admin"
    )
    return {"Authorization": f"Bearer {ctx.tokens.issue(admin.id, 'admin')}"}


async def test_request_review_and_approve(http: httpx.AsyncClient, live: Live, ctx: AppContext) -> None:
    token, user_id = await live.user("ana")
    auth = {"Authorization": f"Bearer {token}"}
    admin = await _admin(ctx)
    body = {"artist_name": "Ana B", "links": LINKS, "message": "my label page too"}

    r = await http.post("/api/v1/artist/verification/request", json=body, headers=auth)
    assert r.status_code == 201, r.text
    request = r.json()
    assert request["status"] == "pending" and request["links"] == LINKS
    assert request["user"]["id"] == user_id and request["user"]["username"] == "ana"
    # a second pending request is refused
    r = await http.post("/api/v1/artist/verification/request", json=body, headers=auth)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"

    # only admins see the queue and decide
    for method, path in (
        ("GET", "/api/v1/admin/verification"),
        ("POST", f"/api/v1/admin/verification/{request['id']}/approve"),
        ("GET", f"/api/v1/admin/verification/{request['id']}"),
    ):
        r = await http.request(method, path, headers=auth)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (method, path)
        assert (await http.request(method, path)).status_code == 401
    queue = (await http.get("/api/v1/admin/verification", headers=admin)).json()
    assert [q["id"] for q in queue["items"]] == [request["id"]]

    r = await http.post(f"/api/v1/admin/verification/{request['id']}/approve", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and r.json()["reviewed_at"] is not None
    # decided once: approving or denying again is a conflict, and the queue is empty
    r = await http.post(
        f"/api/v1/admin/verification/{request['id']}/deny", json={"reason": "changed my mind"}, headers=admin
    )
    assert r.status_code == 409
    assert (await http.get("/api/v1/admin/verification", headers=admin)).json()["items"] == []
    approved = (await http.get("/api/v1/admin/verification?status=approved", headers=admin)).json()
    assert [q["id"] for q in approved["items"]] == [request["id"]]

    # the user is now a verified artist; a token issued from now on carries role artist
    profile = (await http.get("/api/v1/profiles/ana")).json()
    assert profile["role"] == "artist" and profile["artist"] == {"links": LINKS, "verified": True}
    login = await http.post("/api/v1/auth/login", json={"username": "ana", "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert ctx.tokens.verify(login.json()["access_token"]).role == "artist"
    mine = (await http.get("/api/v1/artist/verification/requests", headers=auth)).json()
    assert [m["status"] for m in mine["items"]] == ["approved"]


async def test_deny_with_reason_then_ask_again(http: httpx.AsyncClient, live: Live, ctx: AppContext) -> None:
    token, _ = await live.user("bob")
    auth = {"Authorization": f"Bearer {token}"}
    admin = await _admin(ctx)
    first = (
        await http.post(
            "/api/v1/artist/verification/request",
            json={"artist_name": "Bo", "links": LINKS[:1]},
            headers=auth,
        )
    ).json()
    r = await http.post(f"/api/v1/admin/verification/{first['id']}/deny", json={}, headers=admin)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "reason"
    r = await http.post(
        f"/api/v1/admin/verification/{first['id']}/deny", json={"reason": "links not yours"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["status"] == "denied" and r.json()["reason"] == "links not yours"
    profile = (await http.get("/api/v1/profiles/bob")).json()
    assert profile["role"] == "user" and profile["artist"] is None
    # denied is decided: a new request may be made
    r = await http.post(
        "/api/v1/artist/verification/request", json={"artist_name": "Bo", "links": LINKS}, headers=auth
    )
    assert r.status_code == 201
    mine = (await http.get("/api/v1/artist/verification/requests", headers=auth)).json()["items"]
    assert [m["status"] for m in mine] == ["pending", "denied"]  # newest first
    assert mine[1]["reason"] == "links not yours"


async def test_an_admin_keeps_their_role_when_verified(http: httpx.AsyncClient, ctx: AppContext) -> None:
    admin = await _admin(ctx, "adminartist")
    r = await http.post(
        "/api/v1/artist/verification/request", json={"artist_name": "AA", "links": LINKS}, headers=admin
    )
    assert r.status_code == 201
    await http.post(f"/api/v1/admin/verification/{r.json()['id']}/approve", headers=admin)
    profile = (await http.get("/api/v1/profiles/adminartist")).json()
    assert profile["role"] == "admin" and profile["artist"]["verified"] is True


async def test_bad_requests_name_the_field(http: httpx.AsyncClient, live: Live, ctx: AppContext) -> None:
    token, _ = await live.user("cyd")
    auth = {"Authorization": f"Bearer {token}"}
    admin = await _admin(ctx)
    for body, field in (
        ({"links": LINKS}, "artist_name"),
        ({"artist_name": "  ", "links": LINKS}, "artist_name"),
        ({"artist_name": "Cy", "links": []}, "links"),
        ({"artist_name": "Cy", "links": [f"https://x.io/{n}" for n in range(11)]}, "links"),
        ({"artist_name": "Cy", "links": ["http://x.io/insecure"]}, "links.0"),
        ({"artist_name": "Cy", "links": LINKS, "role": "admin"}, "role"),
    ):
        r = await http.post("/api/v1/artist/verification/request", json=body, headers=auth)
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == field, (body, r.text)
    r = await http.get("/api/v1/admin/verification?status=maybe", headers=admin)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "status"
    for path in (
        f"/api/v1/admin/verification/{uuid.uuid4()}/approve",
        "/api/v1/admin/verification/nope/approve",
    ):
        r = await http.post(path, headers=admin)
        assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "id"
    # nothing was written by any of the refused requests
    assert (await http.get("/api/v1/artist/verification/requests", headers=auth)).json()["items"] == []


async def test_queue_pages_are_stable_under_inserts(
    http: httpx.AsyncClient, live: Live, ctx: AppContext
) -> None:
    admin = await _admin(ctx)
    tokens = [(await live.user(f"artist{n}"))[0] for n in range(5)]

    async def ask(token: str) -> str:
        r = await http.post(
            "/api/v1/artist/verification/request",
            json={"artist_name": "X", "links": LINKS[:1]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201
        return str(r.json()["id"])

    asked = [await ask(t) for t in tokens[:3]]
    first = (await http.get("/api/v1/admin/verification?limit=2", headers=admin)).json()
    asked += [await ask(t) for t in tokens[3:]]  # arrive between the pages
    seen = [q["id"] for q in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = (await http.get(f"/api/v1/admin/verification?limit=2&cursor={cursor}", headers=admin)).json()
        seen += [q["id"] for q in page["items"]]
        cursor = page["next_cursor"]
    assert seen == asked  # oldest first, none skipped or repeated
