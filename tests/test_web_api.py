"""What the browser pages needed of the API, tested as API: where the live gateway is, a token
offered as a subprotocol, the journal's figures for admins, the queue reorder, and how the pages
themselves are served (CSP, nothing outside the package, not in the OpenAPI)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from trio_websocket import open_websocket_url

from server.context import AppContext
from server.metrics import JournalStats
from server.runtime import Bound
from tests.conftest import BOTH
from tests.live_client import Live, is_event
from tests.test_dj_rest import track


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_live_url_and_a_token_offered_as_subprotocol(
    http: httpx.AsyncClient, live: Live, server: Bound
) -> None:
    r = await http.get("/api/v1/live")
    assert r.status_code == 200
    info = r.json()
    assert info["url"] == f"ws://127.0.0.1:{server.live_port}"
    assert info["path"] == "/ws/rooms/{room_id}" and info["subprotocols"][0] == "seda.v1.json"
    # the Host the caller used is the host it is sent to
    r = await http.get("/api/v1/live", headers={"Host": f"localhost:{server.http_port}"})
    assert r.json()["url"] == f"ws://localhost:{server.live_port}"

    token, user_id = await live.user("ana")
    room = await live.room(token)
    url = info["url"] + info["path"].format(room_id=room["id"])
    offered = ["seda.v1.json", info["token_subprotocol_prefix"] + token]
    async with open_websocket_url(url, subprotocols=offered) as ws:
        assert ws.subprotocol == "seda.v1.json"  # the token is never chosen
        welcome = await ws.get_message()
        assert f'"user_id":"{user_id}"' in str(welcome).replace(" ", "")
    # a bad token offered that way is refused like any other
    with pytest.raises(Exception, match="401"):
        async with open_websocket_url(url, subprotocols=["seda.v1.json", "seda.token.nonsense"]):
            pass


async def test_the_journal_figures_are_for_admins(
    http: httpx.AsyncClient, live: Live, ctx: AppContext
) -> None:
    token, _ = await live.user("ana")
    room = await live.room(token)
    async with live.connect(room["id"], token) as sock:
        for n in range(3):
            await sock.chat(f"hello {n}")
    r = await http.get("/api/v1/admin/journal")
    assert r.status_code == 401
    r = await http.get("/api/v1/admin/journal", headers=bearer(token))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    admin = await ctx.users.create(email="a@example.com", username="boss", password_hash="x", role="admin")
    r = await http.get("/api/v1/admin/journal", headers=bearer(ctx.tokens.issue(admin.id, "admin")))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["batches"] >= 1 and body["events"] >= 3 and body["recent_batches"] >= 1
    assert 0 < body["commit_ms"]["p50"] <= body["commit_ms"]["p99"] <= body["commit_ms"]["max"]
    assert 1 <= body["batch_events"]["p50"] <= body["batch_events"]["max"]
    assert body["node_id"]
    metrics = (await http.get("/metrics")).text
    assert "seda_journal_commit_seconds_bucket" in metrics and "seda_journal_batch_events_bucket" in metrics


def test_journal_stats_summarise_the_recent_window() -> None:
    stats = JournalStats(window=4)
    assert stats.summary() == {
        "batches": 0, "events": 0, "recent_batches": 0, "commit_ms": None, "batch_events": None,
    }  # fmt: skip
    for events, seconds in [(100, 1.0), (1, 0.001), (2, 0.002), (3, 0.003), (4, 0.004)]:
        stats.record(events, seconds)
    summary = stats.summary()
    assert summary["batches"] == 5 and summary["events"] == 110 and summary["recent_batches"] == 4
    assert summary["commit_ms"]["max"] == 4.0 and summary["commit_ms"]["p50"] == 2.0  # the 1 s fell out
    assert summary["batch_events"] == {"mean": 2.5, "p50": 2.0, "p90": 4.0, "p99": 4.0, "max": 4.0}


async def _fan_session(http: httpx.AsyncClient, live: Live) -> dict[str, Any]:
    host, _ = await live.user("host")
    dj, dj_id = await live.user("deejay")
    other, _ = await live.user("other")
    room = await live.room(host)
    r = await http.post(f"/api/v1/rooms/{room['id']}/dj/start", json={"mode": "fan"}, headers=bearer(host))
    session_id = r.json()["session_id"]
    r = await http.post(f"/api/v1/dj/sessions/{session_id}/rotation/join", headers=bearer(dj))
    assert r.status_code == 200
    items = []
    for n in range(4):
        r = await http.post(
            f"/api/v1/dj/sessions/{session_id}/queue", json={"track": track(n)}, headers=bearer(dj)
        )
        assert r.status_code == 201, r.text
        items.append(r.json()["item_id"])
    return {"room": room, "host": host, "dj": dj, "dj_id": dj_id, "other": other, "items": items}


@pytest.mark.parametrize("server_mode", BOTH, indirect=True)
async def test_a_dj_reorders_their_queue(http: httpx.AsyncClient, live: Live) -> None:
    s = await _fan_session(http, live)
    _, a, b, c = s["items"]  # the first plays; a, b, c wait in that order
    async with live.connect(s["room"]["id"], s["other"]) as watcher:
        r = await http.patch(f"/api/v1/dj/queue/{c}", json={"position": 1}, headers=bearer(s["dj"]))
        assert r.status_code == 200, r.text
        assert [i["item_id"] for i in r.json()["queue"]] == [c, a, b]
        updated, _ = await watcher.until(is_event("queue.updated"))
        assert [i["item_id"] for i in updated["data"]["queue"]] == [c, a, b]
        assert updated["seq"] == watcher.welcome["data"]["seq"] + 1  # durable, in seq

        # past the end: last; the same place again: nothing changes, nothing is emitted
        r = await http.patch(f"/api/v1/dj/queue/{c}", json={"position": 99}, headers=bearer(s["dj"]))
        assert [i["item_id"] for i in r.json()["queue"]] == [a, b, c]
        r = await http.patch(f"/api/v1/dj/queue/{c}", json={"position": 3}, headers=bearer(s["dj"]))
        assert [i["item_id"] for i in r.json()["queue"]] == [a, b, c]

        # someone else may not; the host (a mod) may
        r = await http.patch(f"/api/v1/dj/queue/{a}", json={"position": 2}, headers=bearer(s["other"]))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        r = await http.patch(f"/api/v1/dj/queue/{a}", json={"position": 2}, headers=bearer(s["host"]))
        assert [i["item_id"] for i in r.json()["queue"]] == [b, a, c]
        moved, _ = await watcher.until(
            lambda m: is_event("queue.updated")(m) and m["data"]["queue"][0]["item_id"] == b
        )
        # what a socket sees is what REST reads afterwards
        session = (await http.get(f"/api/v1/rooms/{s['room']['id']}/dj", headers=bearer(s["host"]))).json()
        assert [i["item_id"] for i in session["queue"]] == [i["item_id"] for i in moved["data"]["queue"]]

    # the playing item is not in a queue; bad bodies name their field
    playing = s["items"][0]
    r = await http.patch(f"/api/v1/dj/queue/{playing}", json={"position": 1}, headers=bearer(s["dj"]))
    assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "item_id"
    r = await http.patch(f"/api/v1/dj/queue/{uuid.uuid4()}", json={"position": 1}, headers=bearer(s["dj"]))
    assert r.status_code == 404
    for body in ({"position": 0}, {"position": "1"}, {}, {"position": 1, "x": 1}):
        r = await http.patch(f"/api/v1/dj/queue/{a}", json=body, headers=bearer(s["dj"]))
        assert r.status_code in (400, 422), (body, r.text)
    r = await http.patch(f"/api/v1/dj/queue/{a}", json={"position": 1})
    assert r.status_code == 401


async def test_a_public_session_is_ordered_by_votes_not_by_hand(http: httpx.AsyncClient, live: Live) -> None:
    host, _ = await live.user("host")
    room = await live.room(host)
    r = await http.post(f"/api/v1/rooms/{room['id']}/dj/start", json={"mode": "public"}, headers=bearer(host))
    session_id = r.json()["session_id"]
    ids = []
    for n in range(2):
        r = await http.post(
            f"/api/v1/dj/sessions/{session_id}/queue", json={"track": track(n)}, headers=bearer(host)
        )
        ids.append(r.json()["item_id"])
    r = await http.patch(f"/api/v1/dj/queue/{ids[1]}", json={"position": 1}, headers=bearer(host))
    assert r.status_code == 409 and r.json()["error"]["details"]["field"] == "position"


async def test_the_pages_are_served_with_a_strict_policy(http: httpx.AsyncClient, server: Bound) -> None:
    for path in ("/", "/r/some-room", "/admin", "/docs"):
        r = await http.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
        assert f"ws://127.0.0.1:{server.live_port}" in csp  # the live socket, and nothing else
        assert "frame-ancestors 'none'" in csp and r.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in r.text and not re.search(r"\son[a-z]+\s*=", r.text), path  # no inline code
        assert "http://" not in r.text and "https://" not in r.text.replace("https://open.spotify.com", "")
    r = await http.get("/ui/js/room.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    for path in ("/ui/../pages.py", "/ui/%2e%2e/pages.py", "/ui/js/nope.js", "/ui/js"):
        assert (await http.get(path)).status_code == 404, path
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert (
        "/api/v1/live" in paths and "/api/v1/admin/journal" in paths and "/api/v1/dj/queue/{item_id}" in paths
    )
    assert not {"/", "/admin", "/docs", "/r/{room}"} & set(paths)
