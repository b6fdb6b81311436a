"""Pure tests of DJ sessions: the rules of PROTOCOL.md "DJ modes", no I/O, time passed in."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from actors.commands import Join, Leave, Op, Tick
from actors.room_rules import decide
from actors.room_state import RoomInfo, RoomState
from actors.session import AWAY_GRACE_MS, SKIP_ELIGIBLE_MS, skip_threshold
from protocol.errors import Forbidden, NoSession, NotDJ, NotFound, QueueFull, SessionActive
from protocol.events import Event
from protocol.ops import parse_op_data

OWNER, ANA, BEN, CAL, DEE = "owner", "ana", "ben", "cal", "dee"


def track(n: int, duration_ms: int = 180_000) -> dict[str, Any]:
    return {
        "id": f"t{n}",
        "provider": "youtube",
        "provider_id": f"p{n}",
        "title": f"T{n}",
        "artist": "A",
        "duration_ms": duration_ms,
        "artwork_url": None,
    }


class Room:
    """Drives the core the way the actor does: decide, apply, then settle what is due."""

    def __init__(self) -> None:
        self.state = RoomState(RoomInfo("room", "room", "Room", "public", "public", OWNER))
        self.now = 1_000_000
        self.events: list[Event] = []
        self.conns: dict[str, int] = {}
        self._ids = 0

    def _run(self, command: Any) -> dict[str, Any] | None:
        d = decide(self.state, command, self.now)
        for e in d.events:
            self.state.apply(e)
        self.events.extend(d.events)
        self.settle()
        return d.reply

    def settle(self) -> None:
        for _ in range(64):
            step = decide(self.state, Tick(), self.now).events
            if not step:
                return
            for e in step:
                self.state.apply(e)
            self.events.extend(step)
        raise AssertionError("settle did not converge")

    def join(self, user: str, role: str = "member", *, artist: bool = False) -> None:
        self.conns[user] = len(self.conns) + 1 + 100 * len(self.events)
        self._run(Join(self.conns[user], user, user, role, False, artist))

    def leave(self, user: str) -> None:
        self._run(Leave(self.conns.pop(user)))

    def op(
        self, user: str, op: str, data: dict[str, Any] | None = None, **context: Any
    ) -> dict[str, Any] | None:
        self._ids += 1
        new_id = str(uuid.UUID(int=self._ids))
        return self._run(Op(self.conns[user], op, parse_op_data(op, data or {}), new_id, context))

    def add(self, user: str, n: int, duration_ms: int = 180_000) -> str:
        t = track(n, duration_ms)
        body = {
            "provider": "youtube",
            "provider_id": t["provider_id"],
            "title": t["title"],
            "artist": "A",
            "duration_ms": duration_ms,
        }
        reply = self.op(user, "queue.add", {"track": body}, track=t)
        assert reply is not None
        return str(reply["item_id"])

    def advance(self, ms: int) -> None:
        self.now += ms
        self.settle()

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]

    def playing(self) -> tuple[str, str] | None:
        np = self.state.session.now_playing if self.state.session else None
        return (np.item.track["id"], np.dj_id) if np else None


def fan_room(*djs: str) -> Room:
    r = Room()
    r.join(OWNER, "owner")
    for u in djs:
        r.join(u)
    r.op(OWNER, "session.start", {"mode": "fan"})
    for u in djs:
        r.op(u, "dj.join")
    return r


def test_only_mods_start_one_session_and_artist_mode_needs_an_artist() -> None:
    r = Room()
    r.join(OWNER, "owner")
    r.join(ANA)
    with pytest.raises(Forbidden):
        r.op(ANA, "session.start", {"mode": "fan"})
    with pytest.raises(Forbidden):
        r.op(OWNER, "session.start", {"mode": "artist"})
    reply = r.op(OWNER, "session.start", {"mode": "fan", "skip_ratio": 0.5})
    assert reply is not None and reply["session_id"]
    started = r.named("session.started")[0]
    assert (
        started.seq is not None
        and started.data["mode"] == "fan"
        and started.data["rotation"] == {"djs": [], "active": None}
    )
    with pytest.raises(SessionActive):
        r.op(OWNER, "session.start", {"mode": "public"})
    with pytest.raises(Forbidden):
        r.op(ANA, "session.stop")
    r.op(OWNER, "session.stop")
    assert r.state.session is None
    with pytest.raises(NoSession):
        r.op(OWNER, "dj.join")


def test_fan_rotation_plays_in_join_order_round_robin() -> None:
    r = fan_room(ANA, BEN, CAL)
    r.add(BEN, 1)
    assert r.playing() == ("t1", BEN)  # nothing was playing: the first track starts at once
    r.add(ANA, 2)
    r.add(CAL, 3)
    r.add(ANA, 4)
    order = []
    for _ in range(4):
        order.append(r.playing())
        r.advance(180_000)
    assert order == [("t1", BEN), ("t3", CAL), ("t2", ANA), ("t4", ANA)]
    ended = r.named("track.ended")
    assert [e.data["reason"] for e in ended] == ["completed"] * 4
    started = r.named("track.started")
    assert all(s.data["ends_at"] - s.data["started_at"] == 180_000 for s in started)
    assert r.playing() is None


def test_only_djs_queue_in_fan_mode() -> None:
    r = fan_room(ANA)
    r.join(BEN)
    with pytest.raises(NotDJ):
        r.add(BEN, 1)
    with pytest.raises(NotDJ):
        r.op(BEN, "dj.leave")


def test_passed_over_three_turns_in_a_row_leaves_the_rotation() -> None:
    r = fan_room(ANA, BEN)
    for n in range(1, 4):
        r.add(ANA, n, 1000)
    # BEN has nothing: each of ANA's turns passes over him once
    r.advance(1000)
    r.advance(1000)
    assert BEN in r.state.session.djs  # type: ignore[union-attr]
    r.add(ANA, 9, 1000)
    r.advance(1000)
    assert r.state.session is not None and BEN not in r.state.session.djs
    rotation = r.named("dj.rotation")[-1]
    assert rotation.data["djs"] == [ANA]


def test_a_dj_who_drops_off_keeps_their_place_for_60s() -> None:
    r = fan_room(ANA, BEN)
    r.add(ANA, 1)
    r.leave(BEN)
    r.advance(AWAY_GRACE_MS - 1)
    assert BEN in r.state.session.djs  # type: ignore[union-attr]
    r.join(BEN)
    r.advance(10)
    assert BEN in r.state.session.djs  # type: ignore[union-attr]
    r.leave(BEN)
    r.advance(AWAY_GRACE_MS)
    assert BEN not in r.state.session.djs  # type: ignore[union-attr]


def test_active_dj_stepping_down_plays_their_track_to_the_end() -> None:
    r = fan_room(ANA, BEN)
    r.add(ANA, 1)
    r.add(BEN, 2)
    r.op(ANA, "dj.leave")
    assert r.playing() == ("t1", ANA)
    r.advance(180_000)
    assert r.named("track.ended")[-1].data["reason"] == "completed"
    assert r.playing() == ("t2", BEN)


def test_public_mode_orders_by_votes_then_age_and_caps_three_each() -> None:
    r = Room()
    r.join(OWNER, "owner")
    for u in (ANA, BEN, CAL):
        r.join(u)
    r.op(OWNER, "session.start", {"mode": "public"})
    first = r.add(ANA, 1)
    assert r.playing() == ("t1", ANA)
    a2 = r.add(ANA, 2)
    b3 = r.add(BEN, 3)
    c4 = r.add(CAL, 4)
    r.add(ANA, 5)
    r.add(ANA, 6)
    with pytest.raises(QueueFull):
        r.add(ANA, 7)
    r.op(BEN, "vote", {"item_id": c4, "value": "up"})
    r.op(ANA, "vote", {"item_id": c4, "value": "up"})
    r.op(CAL, "vote", {"item_id": b3, "value": "up"})
    r.op(CAL, "vote", {"item_id": a2, "value": "up"})
    with pytest.raises(Forbidden):
        r.op(CAL, "vote", {"item_id": c4, "value": "up"})  # own item
    queue = r.state.session.wire()["queue"]  # type: ignore[union-attr]
    assert [q["item_id"] for q in queue][:3] == [c4, a2, b3]  # 2 ups; then a tie at 1 broken by age
    assert first != c4
    r.advance(180_000)
    assert r.playing() == ("t4", CAL)


def test_skip_threshold_follows_listeners() -> None:
    assert skip_threshold(0.5, 0) == 2 and skip_threshold(0.5, 3) == 2 and skip_threshold(0.5, 5) == 3
    assert skip_threshold(0.5, 4) == 2 and skip_threshold(1.0, 4) == 4
    r = fan_room(ANA)
    for u in (BEN, CAL, DEE):
        r.join(u)
    r.advance(SKIP_ELIGIBLE_MS)  # only listeners present this long count
    item = r.add(ANA, 1)
    # listeners: owner, ben, cal, dee (ana plays) -> ceil(0.5*4)=2
    r.op(BEN, "vote.skip", {"item_id": item})
    assert r.playing() is not None
    r.join("eve")
    r.join("fay")
    r.advance(SKIP_ELIGIBLE_MS)  # 6 listeners -> 3 needed
    r.op(CAL, "vote.skip", {"item_id": item})
    assert r.playing() is not None
    r.leave("fay")
    r.leave("eve")  # back to 4 listeners: the 2 skips now suffice
    assert r.playing() is None
    ended = r.named("track.ended")[-1]
    assert ended.data["reason"] == "skipped" and ended.data["votes"]["skip"] == 2


def test_votes_flip_and_track_ended_has_final_counts() -> None:
    r = fan_room(ANA)
    r.join(BEN)
    item = r.add(ANA, 1)
    r.op(BEN, "vote", {"item_id": item, "value": "up"})
    r.op(BEN, "vote", {"item_id": item, "value": "down"})
    tallies = r.named("vote.tally")
    assert [(t.data["up"], t.data["down"]) for t in tallies] == [(1, 0), (0, 1)]
    assert all(t.seq is None for t in tallies)
    r.op(OWNER, "mod.skip")
    ended = r.named("track.ended")[-1]
    assert ended.data == {"item_id": item, "reason": "mod_skip", "votes": {"up": 0, "down": 1, "skip": 0}}


def test_replaying_durable_events_rebuilds_the_session() -> None:
    r = fan_room(ANA, BEN)
    r.join(CAL)
    for n in range(4):
        r.add(ANA if n % 2 else BEN, n, 1000 + n)
    r.op(CAL, "vote", {"item_id": r.state.session.now_playing.item.item_id, "value": "up"})  # type: ignore[union-attr]
    r.advance(1500)
    r.op(BEN, "dj.leave")
    r.advance(5000)
    replayed = RoomState(RoomInfo("room", "room", "Room", "public", "public", OWNER))
    for e in r.events:
        if e.seq is not None:
            replayed.apply(e)
    assert replayed.snapshot() == r.state.snapshot()
    assert RoomState.restore(r.state.snapshot()).snapshot() == r.state.snapshot()
    played = [e.data["item"]["item_id"] for e in r.named("track.started")]
    assert len(played) == len(set(played))


def test_points_come_from_final_votes_and_completion() -> None:
    r = fan_room(ANA)
    for u in (BEN, CAL, DEE):
        r.join(u)
    item = r.add(ANA, 1)
    r.op(BEN, "vote", {"item_id": item, "value": "up"})
    r.op(BEN, "vote", {"item_id": item, "value": "down"})  # the flip: -1, never +2 then -1
    r.op(CAL, "vote", {"item_id": item, "value": "up"})
    r.op(DEE, "vote", {"item_id": item, "value": "up"})
    r.op(DEE, "vote", {"item_id": item, "value": "none"})
    r.advance(180_000)
    ended = r.named("track.ended")[-1]
    assert ended.meta["awards"] == [
        [ANA, "track_played", 10, item, ""],
        [ANA, "downvote_received", -1, item, BEN],
        [ANA, "upvote_received", 2, item, CAL],
    ]
    skipped_item = r.add(ANA, 2)
    r.op(OWNER, "mod.skip")
    skipped = r.named("track.ended")[-1]
    assert skipped.data["item_id"] == skipped_item and skipped.meta["awards"] == []  # no completion points


def test_queue_move_reorders_one_queue_and_replays() -> None:
    """The REST-only ``queue.move``: the DJ whose queue it is, or a mod; a durable queue.updated."""
    from protocol.dj import QueueMoveData

    r = fan_room(ANA, BEN)
    r.join(CAL)
    first, a, b, c = (r.add(ANA, n) for n in range(4))  # the first plays at once
    other = r.add(BEN, 9)

    def move(user: str, item: str, position: int) -> None:
        r._run(Op(r.conns[user], "queue.move", QueueMoveData(item_id=item, position=position)))

    def mine(user: str) -> list[str]:
        assert r.state.session is not None
        return [i.item_id for i in r.state.session.queues[user]]

    move(ANA, c, 1)
    assert mine(ANA) == [c, a, b] and r.named("queue.updated")[-1].seq is not None
    assert [i["item_id"] for i in r.named("queue.updated")[-1].data["queue"]][:2] == [other, c]
    updates = len(r.named("queue.updated"))
    move(ANA, c, 1)  # where it is: nothing happens
    assert len(r.named("queue.updated")) == updates
    move(ANA, c, 50)
    assert mine(ANA) == [a, b, c]
    with pytest.raises(Forbidden):
        move(CAL, a, 2)
    with pytest.raises(Forbidden):
        move(BEN, a, 2)  # another DJ's queue
    move(OWNER, a, 2)
    assert mine(ANA) == [b, a, c] and mine(BEN) == [other]
    with pytest.raises(NotFound):
        move(ANA, first, 1)  # playing, not queued
    replayed = RoomState(RoomInfo("room", "room", "Room", "public", "public", OWNER))
    for e in r.events:
        if e.seq is not None:
            replayed.apply(e)
    assert replayed.snapshot() == r.state.snapshot()
