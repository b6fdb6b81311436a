"""The seed's REST paths, exactly: every ``METHOD /api/...`` line of the seed is served and documented."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import httpx

from tests.live_client import Live
from tests.test_reports import bearer

# CI runs in a fresh clone with shared/ as a sibling of the repository.
SEED = Path(__file__).resolve().parents[1] / ".." / "shared" / "seed" / "000_fdf58ea0624d2c6c.txt"
_ENDPOINT = re.compile(r"^\s*(GET|POST|PUT|PATCH|DELETE)\s+(/api/\S+)", re.MULTILINE)


def _shape(path: str) -> str:
    """A path with every parameter alike: ``:id`` (seed) and ``{room_id}`` (OpenAPI) both ``{}``."""
    return re.sub(r"\{[^}/]+\}|:[A-Za-z_][A-Za-z0-9_]*", "{}", path)


def seed_endpoints() -> list[tuple[str, str]]:
    assert SEED.is_file(), f"the seed is missing at {SEED} (shared/ must be a sibling of the repository)"
    return [(m[1], m[2]) for m in _ENDPOINT.finditer(SEED.read_text())]


def test_the_seed_lists_endpoints() -> None:
    found = seed_endpoints()
    assert len(found) >= 40 and ("GET", "/api/v1/rooms/me") in found


async def test_every_seed_endpoint_is_in_the_openapi(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/openapi.json")).json()
    served = {(method.upper(), _shape(path)) for path, ops in doc["paths"].items() for method in ops}
    missing = [
        f"{method} {path}" for method, path in seed_endpoints() if (method, _shape(path)) not in served
    ]
    assert missing == []
    ids = Counter(op["operationId"] for ops in doc["paths"].values() for op in ops.values())
    assert [i for i, n in ids.items() if n > 1] == []  # aliases have their own operation ids


async def test_join_requests_at_the_seeds_paths(http: httpx.AsyncClient, live: Live) -> None:
    owner, _ = await live.user("gatekeeper")
    ana, ana_id = await live.user("ana")
    bo, bo_id = await live.user("bob")
    room = await live.room(owner, type="private")
    base = f"/api/v1/rooms/{room['id']}"
    for token in (ana, bo):
        r = await http.post(f"{base}/join-request", json={"message": "let me in"}, headers=bearer(token))
        assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    again = await http.post(f"{base}/join-request", json={}, headers=bearer(ana))
    assert again.status_code == 409
    bad = await http.post(f"{base}/join-request", json={"message": "x" * 501}, headers=bearer(ana))
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "message"

    # Only the owner and moderators decide, by the asker's user id.
    assert (await http.post(f"{base}/approve-join/{ana_id}", headers=bearer(bo))).status_code == 404
    r = await http.post(f"{base}/approve-join/{ana_id}", headers=bearer(owner))
    assert r.status_code == 200 and r.json()["status"] == "approved" and r.json()["user_id"] == ana_id
    assert (await http.post(f"{base}/approve-join/{ana_id}", headers=bearer(owner))).status_code == 404
    r = await http.post(f"{base}/deny-join/{bo_id}", json={"reason": "full"}, headers=bearer(owner))
    assert r.status_code == 200 and r.json()["status"] == "denied" and r.json()["reason"] == "full"
    assert (
        await http.post(f"{base}/deny-join/not-a-user", json={}, headers=bearer(owner))
    ).status_code == 404

    mine = (await http.get("/api/v1/rooms/me", headers=bearer(ana))).json()
    assert [r["id"] for r in mine["items"]] == [room["id"]]
    assert (await http.get("/api/v1/rooms/mine", headers=bearer(ana))).json() == mine  # the old path too
    assert (await http.get("/api/v1/rooms/me", headers=bearer(bo))).json()["items"] == []
    assert (await http.get("/api/v1/rooms/me")).status_code == 401


async def test_the_seeds_join_request_and_deny_need_no_body(http: httpx.AsyncClient, live: Live) -> None:
    """The seed lists them without a body, so a client written from it may send none."""
    owner, _ = await live.user("doorkeeper")
    cy, cy_id = await live.user("cyd")
    dee, _ = await live.user("dee")
    room = await live.room(owner, type="private")
    base = f"/api/v1/rooms/{room['id']}"
    r = await http.post(f"{base}/join-request", headers=bearer(cy))
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    r = await http.post(f"{base}/deny-join/{cy_id}", headers=bearer(owner))
    assert r.status_code == 200 and r.json()["status"] == "denied" and r.json()["reason"] is None, r.text
    # A body that is there is still checked, naming what is wrong with it.
    r = await http.post(f"{base}/join-request", content=b"hello", headers=bearer(dee))
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "body", r.text
    r = await http.post(f"{base}/join-request", json=[1], headers=bearer(dee))
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "body", r.text
    r = await http.post(f"{base}/join-request", json={"nope": 1}, headers=bearer(dee))
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "nope", r.text
    assert (await http.get(f"{base}/requests", headers=bearer(owner))).json()["items"] == []
    # The optional body is still documented.
    paths = (await http.get("/openapi.json")).json()["paths"]
    for path in ("/api/v1/rooms/{room_id}/join-request", "/api/v1/rooms/{room_id}/deny-join/{user_id}"):
        assert "requestBody" in paths[path]["post"], path


async def test_no_room_takes_a_slug_that_names_another_path(http: httpx.AsyncClient, live: Live) -> None:
    owner, _ = await live.user("namer")
    taken = await http.post("/api/v1/rooms", json={"name": "x", "slug": "me"}, headers=bearer(owner))
    assert taken.status_code == 409 and taken.json()["error"]["details"]["field"] == "slug"
    room = await live.room(owner, name="Trending")
    assert room["slug"] != "trending"
    assert (await http.get(f"/api/v1/rooms/{room['slug']}")).json()["id"] == room["id"]
