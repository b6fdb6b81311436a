"""DJ sessions over real sockets: a fan session end to end, with points arriving live."""

from __future__ import annotations

from typing import Any

from storage.database import Database
from tests.live_client import Live, is_event


def short_track(n: int, duration_ms: int = 1000) -> dict[str, Any]:
    return {
        "url": f"https://open.spotify.com/track/{n:022d}?si=x",
        "title": f"T{n}",
        "artist": "A",
        "duration_ms": duration_ms,
    }


async def test_fan_session_end_to_end_with_points(live: Live, db: Database) -> None:
    owner, _ = await live.user("host")
    ana_token, ana_id = await live.user("ana")
    ben_token, ben_id = await live.user("ben")
    room = await live.room(owner)
    async with (
        live.connect(room["id"], owner) as host,
        live.connect(room["id"], ana_token) as ana,
        live.connect(room["id"], ben_token, encoding="msgpack") as ben,
    ):
        reply, events = await host.request("session.start", {"mode": "fan"})
        assert reply["ok"], reply
        session_id = reply["data"]["session_id"]
        started = next(e for e in events if e.get("name") == "session.started")
        assert started["data"]["session_id"] == session_id and started["data"]["mode"] == "fan"
        assert (await ana.request("dj.join"))[0]["ok"]
        reply, _ = await ben.request("queue.add", {"track": short_track(1)})
        assert reply["error"]["code"] == "not_dj"
        reply, events = await ana.request("queue.add", {"track": short_track(1)})
        assert reply["ok"], reply
        item_id = reply["data"]["item_id"]
        names = [e.get("name") for e in events if e.get("type") == "event"]
        assert names[-2:] == ["queue.updated", "track.started"]
        playing, _ = await ben.until(is_event("track.started"))
        assert playing["data"]["dj_id"] == ana_id and playing["data"]["item"]["item_id"] == item_id
        assert playing["data"]["ends_at"] - playing["data"]["started_at"] == 1000
        reply, _ = await ana.request("vote", {"item_id": item_id, "value": "up"})
        assert reply["error"]["code"] == "forbidden"  # not on your own track
        assert (await ben.request("vote", {"item_id": item_id, "value": "up"}))[0]["ok"]
        tally, _ = await host.until(is_event("vote.tally"))
        assert tally["data"] == {"item_id": item_id, "up": 1, "down": 0, "skip": 0} and "seq" not in tally
        ended, _ = await host.until(is_event("track.ended"))
        assert ended["data"] == {
            "item_id": item_id,
            "reason": "completed",
            "votes": {"up": 1, "down": 0, "skip": 0},
        }
        awarded, _ = await ana.until(is_event("points.awarded"))
        assert (
            awarded["data"]["points"] == 12
            and awarded["data"]["total"] == 12
            and awarded["data"]["level"] == 1
        )
        assert "seq" not in awarded
        # a newcomer sees the session in the welcome
        async with live.connect(room["id"]) as guest:
            session = guest.welcome["data"]["session"]
            assert session["session_id"] == session_id and session["rotation"]["djs"] == [ana_id]
            assert session["now_playing"] is None
    ledger = await db.fetch(
        "SELECT event_type, points, voter_id FROM point_transactions WHERE user_id = $1 ORDER BY event_type",
        ana_id,
    )
    assert [(r["event_type"], r["points"], r["voter_id"]) for r in ledger] == [
        ("track_played", 10, ""),
        ("upvote_received", 2, ben_id),
    ]
    assert await db.fetchval("SELECT total_points FROM user_progressions WHERE user_id = $1", ana_id) == 12
    assert await db.fetchval("SELECT mode FROM dj_sessions WHERE id = $1", session_id) == "fan"
