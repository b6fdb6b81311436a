"""DJ sessions driven over REST, seen live on a socket in the same room."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import BOTH
from tests.live_client import Live, is_event


def track(n: int, duration_ms: int = 300_000) -> dict[str, object]:
    return {
        "url": f"https://www.deezer.com/en/track/{n}",
        "title": f"T{n}",
        "artist": "A",
        "duration_ms": duration_ms,
    }


@pytest.mark.parametrize("server_mode", BOTH, indirect=True)
async def test_a_rest_driven_session_is_seen_live(http: httpx.AsyncClient, live: Live) -> None:
    host, _ = await live.user("host")
    dj, dj_id = await live.user("deejay")
    fan, _ = await live.user("fan")
    room = await live.room(host)
    auth = {"Authorization": f"Bearer {host}"}
    dj_auth = {"Authorization": f"Bearer {dj}"}
    async with live.connect(room["id"], fan) as watcher:
        r = await http.post(f"/api/v1/rooms/{room['id']}/dj/start", json={"mode": "fan"}, headers=dj_auth)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        r = await http.post(f"/api/v1/rooms/{room['id']}/dj/start", json={"mode": "radio"}, headers=auth)
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "mode"
        r = await http.post(f"/api/v1/rooms/{room['id']}/dj/start", json={"mode": "fan"}, headers=auth)
        assert r.status_code == 201, r.text
        session_id = r.json()["session_id"]
        assert r.json()["session"]["mode"] == "fan"
        started, _ = await watcher.until(is_event("session.started"))
        assert started["data"]["session_id"] == session_id
        r = await http.post(f"/api/v1/rooms/{room['id']}/dj/start", json={"mode": "fan"}, headers=auth)
        assert r.status_code == 409 and r.json()["error"]["code"] == "session_active"

        r = await http.post(
            f"/api/v1/dj/sessions/{session_id}/queue", json={"track": track(1)}, headers=dj_auth
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "not_dj"
        r = await http.post(f"/api/v1/dj/sessions/{session_id}/rotation/join", headers=dj_auth)
        assert r.status_code == 200 and r.json() == {"djs": [dj_id], "active": None}
        rotation, _ = await watcher.until(is_event("dj.rotation"))
        assert rotation["data"]["djs"] == [dj_id]

        r = await http.post(
            f"/api/v1/dj/sessions/{session_id}/queue", json={"track": track(1)}, headers=dj_auth
        )
        assert r.status_code == 201, r.text
        item_id = r.json()["item_id"]
        playing, before = await watcher.until(is_event("track.started"))
        assert any(m.get("name") == "queue.updated" for m in before)
        assert playing["data"]["item"]["item_id"] == item_id and playing["data"]["dj_id"] == dj_id
        r = await http.post(
            f"/api/v1/dj/sessions/{session_id}/queue", json={"track": track(2)}, headers=dj_auth
        )
        second = r.json()["item_id"]
        queue = (await http.get(f"/api/v1/dj/sessions/{session_id}/queue", headers=auth)).json()["queue"]
        assert [q["item_id"] for q in queue] == [second]

        current = (await http.get(f"/api/v1/rooms/{room['id']}/dj", headers=auth)).json()
        assert current["now_playing"]["item"]["item_id"] == item_id
        details = (await http.get(f"/api/v1/dj/sessions/{session_id}", headers=auth)).json()
        assert (
            details["live"] is True
            and details["mode"] == "fan"
            and details["state"]["session_id"] == session_id
        )

        r = await http.post(f"/api/v1/dj/queue/{item_id}/vote", json={"value": "up"}, headers=auth)
        assert r.status_code == 200 and r.json()["up"] == 1
        tally, _ = await watcher.until(is_event("vote.tally"))
        assert tally["data"]["up"] == 1
        r = await http.post(f"/api/v1/dj/queue/{item_id}/vote", json={"value": "up"}, headers=dj_auth)
        assert r.status_code == 403  # not on your own track

        r = await http.post(f"/api/v1/dj/sessions/{session_id}/rotation/advance", headers=auth)
        assert r.status_code == 200
        ended, _ = await watcher.until(is_event("track.ended"))
        assert ended["data"]["reason"] == "mod_skip" and ended["data"]["votes"]["up"] == 1
        nxt, _ = await watcher.until(is_event("track.started"))
        assert nxt["data"]["item"]["item_id"] == second

        r = await http.delete(f"/api/v1/dj/sessions/{session_id}/rotation/leave", headers=dj_auth)
        assert r.status_code == 200 and r.json()["djs"] == []
        r = await http.post(f"/api/v1/rooms/{room['id']}/dj/stop", headers=auth)
        assert r.status_code == 200
        ended_session, _ = await watcher.until(is_event("session.ended"))
        assert ended_session["data"] == {"session_id": session_id, "reason": "stopped"}
    r = await http.get(f"/api/v1/rooms/{room['id']}/dj", headers=auth)
    assert r.status_code == 404
    details = (await http.get(f"/api/v1/dj/sessions/{session_id}", headers=auth)).json()
    assert details["live"] is False and details["end_reason"] == "stopped"
    r = await http.get(f"/api/v1/dj/sessions/{uuid.uuid4()}", headers=auth)
    assert r.status_code == 404
    r = await http.post(f"/api/v1/dj/queue/{uuid.uuid4()}/vote", json={"value": "up"}, headers=auth)
    assert r.status_code == 404
