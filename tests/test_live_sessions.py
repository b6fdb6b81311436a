"""DJ sessions over real sockets: a fan session end to end, with points arriving live."""

from __future__ import annotations

import uuid
from typing import Any

from storage.database import Database
from tests.live_client import PASSWORD, Live, is_event


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


async def _login(live: Live, username: str) -> str:
    r = await live.http.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200
    token: str = r.json()["access_token"]
    return token


async def test_artist_session_plays_the_host_queue_in_order(live: Live, db: Database) -> None:
    _, artist_id = await live.user("the_artist")
    await db.execute("UPDATE users SET role = 'artist' WHERE id = $1", uuid.UUID(artist_id))
    artist = await _login(live, "the_artist")  # a token issued after approval carries role artist
    fan, _ = await live.user("a_fan")
    room = await live.room(artist, type="artist")
    async with live.connect(room["id"], artist) as host, live.connect(room["id"], fan) as listener:
        reply, _ = await listener.request("session.start", {"mode": "artist"})
        assert reply["error"]["code"] == "forbidden"
        assert (await host.request("session.start", {"mode": "artist"}))[0]["ok"]
        reply, _ = await listener.request("queue.add", {"track": short_track(1)})
        assert reply["error"]["code"] == "forbidden"  # only the host and mods queue
        first = (await host.request("queue.add", {"track": short_track(1, 60_000)}))[0]["data"]["item_id"]
        second = (await host.request("queue.add", {"track": short_track(2, 60_000)}))[0]["data"]["item_id"]
        started, _ = await listener.until(is_event("track.started"))
        assert started["data"]["item"]["item_id"] == first and started["data"]["dj_id"] == artist_id
        reply, _ = await listener.request("dj.join")
        assert reply["error"]["code"] == "bad_request"  # no rotation outside fan mode
        assert (await host.request("mod.skip"))[0]["ok"]
        nxt, before = await listener.until(is_event("track.started"))
        assert [m["data"]["reason"] for m in before if m.get("name") == "track.ended"] == ["mod_skip"]
        assert nxt["data"]["item"]["item_id"] == second


async def test_public_session_orders_by_votes_and_coalesces_tallies(live: Live) -> None:
    owner, _ = await live.user("pub_owner")
    users = [await live.user(f"voter{n}") for n in range(3)]
    room = await live.room(owner)
    async with (
        live.connect(room["id"], owner) as host,
        live.connect(room["id"], users[0][0]) as a,
        live.connect(room["id"], users[1][0]) as b,
        live.connect(room["id"], users[2][0]) as c,
    ):
        assert (await host.request("session.start", {"mode": "public", "skip_ratio": 1.0}))[0]["ok"]
        playing = (await a.request("queue.add", {"track": short_track(1, 600_000)}))[0]["data"]["item_id"]
        late = (await a.request("queue.add", {"track": short_track(2)}))[0]["data"]["item_id"]
        early = (await b.request("queue.add", {"track": short_track(3)}))[0]["data"]["item_id"]
        favourite = (await c.request("queue.add", {"track": short_track(4)}))[0]["data"]["item_id"]
        for n in range(5, 7):
            assert (await a.request("queue.add", {"track": short_track(n)}))[0]["ok"]
        reply, _ = await a.request("queue.add", {"track": short_track(9)})
        assert reply["error"]["code"] == "queue_full"  # three upcoming each
        # votes on queued items reorder the queue: favourite (2 up) before late/early (1 up, age order)
        for voter, item in ((a, favourite), (b, favourite), (c, late), (a, early)):
            assert (await voter.request("vote", {"item_id": item, "value": "up"}))[0]["ok"]
        # a burst of votes on the playing track: tallies reach the room at most every 100 ms
        for voter, value in ((b, "up"), (c, "down"), (b, "down"), (c, "up"), (b, "none")):
            assert (await voter.request("vote", {"item_id": playing, "value": value}))[0]["ok"]
        reply, seen = await host.request("mod.skip")
        assert reply["ok"]
        ended = next(m for m in seen if m.get("name") == "track.ended")
        tallies = [m for m in seen if m.get("name") == "vote.tally"]
        # nine votes within a few ms: at most one tally per 100 ms reaches the room, and pending
        # tallies of the track that ended give way to the final counts in track.ended
        assert 1 <= len(tallies) < 9
        assert ended["data"]["votes"] == {"up": 1, "down": 0, "skip": 0}  # b: none, c: up
        track_events = [m["name"] for m in seen if m.get("name", "").startswith("track.")]
        assert track_events[-2:] == ["track.ended", "track.started"]
        nxt = [m for m in seen if m.get("name") == "track.started"][-1]
        assert nxt["data"]["item"]["item_id"] == favourite
    async with live.connect(room["id"], owner) as again:
        upcoming = [q["item_id"] for q in again.welcome["data"]["session"]["queue"]]
        assert upcoming[:2] == [late, early]


async def test_points_reach_the_dj_in_every_room_they_are_in(live: Live) -> None:
    owner, _ = await live.user("multi_owner")
    dj, _dj_id = await live.user("multi_dj")
    voter, _ = await live.user("multi_voter")
    stage = await live.room(owner)
    lobby = await live.room(owner)
    async with (
        live.connect(stage["id"], owner) as host,
        live.connect(stage["id"], dj) as dj_stage,
        live.connect(stage["id"], voter) as fan,
        live.connect(lobby["id"], dj, encoding="msgpack") as dj_lobby,
    ):
        assert (await host.request("session.start", {"mode": "fan"}))[0]["ok"]
        assert (await dj_stage.request("dj.join"))[0]["ok"]
        item = (await dj_stage.request("queue.add", {"track": short_track(1, 600_000)}))[0]["data"]["item_id"]
        assert (await fan.request("vote", {"item_id": item, "value": "down"}))[0]["ok"]
        assert (await host.request("mod.skip"))[0]["ok"]
        for sock in (dj_stage, dj_lobby):
            awarded, _ = await sock.until(is_event("points.awarded"))
            assert awarded["data"] == {"points": -1, "reason": "downvote_received", "total": -1, "level": 1}
