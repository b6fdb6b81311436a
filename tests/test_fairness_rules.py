"""The fairness rules as pure functions (PROTOCOL.md "Fairness, history and personal blocks"):
session settings, the repeat guard, track length and queue size, away-from-ops DJs, moving DJs,
the skip threshold over settled listeners, skip reasons, queues kept across leaving, and a
replay of the journal rebuilding all of it. No I/O: decide, apply, settle."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.blocks import BlockIndex, hide_for
from actors.commands import Join, Leave, Op, Tick
from actors.room_rules import decide, welcome_data
from actors.room_state import RoomInfo, RoomState
from protocol.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    ProtocolError,
    QueueFull,
    RecentlyPlayed,
    TrackTooLong,
)
from protocol.events import EVENTS, Event
from protocol.ops import parse_op_data
from tests.test_session_core import track

OWNER, MOD, ANA, BEN, CAT, DAN = (str(uuid.UUID(int=0xACE0000 + n)) for n in range(1, 7))
ROLES = {OWNER: "owner", MOD: "moderator", ANA: "member", BEN: "member", CAT: "member", DAN: "member"}
T0 = 1_000_000_000


class Room:
    """Drives the core as the actor does: decide, apply, settle what is due."""

    def __init__(self) -> None:
        self.state = RoomState(RoomInfo("room", "room", "Room", "public", "public", OWNER))
        self.now = T0
        self.events: list[Event] = []
        self.conns: dict[str, int] = {}
        self._n = 0

    def _apply(self, events: list[Event]) -> None:
        for event in events:
            assert event.name in EVENTS
            self.state.apply(event)
            self.events.append(event)

    def settle(self) -> None:
        for _ in range(64):
            step = decide(self.state, Tick(), self.now).events
            if not step:
                return
            self._apply(step)
        raise AssertionError("settle did not converge")

    def join(self, *users: str) -> None:
        for user in users:
            self._n += 1
            self.conns[user] = self._n
            self._apply(decide(self.state, Join(self._n, user, user[-4:], ROLES[user]), self.now).events)
            self.settle()

    def leave(self, user: str) -> None:
        self._apply(decide(self.state, Leave(self.conns.pop(user)), self.now).events)
        self.settle()

    def op(self, user: str, op: str, data: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
        self._n += 1
        command = Op(
            self.conns[user], op, parse_op_data(op, data or {}), str(uuid.UUID(int=self._n)), context
        )
        decision = decide(self.state, command, self.now)
        self._apply(decision.events)
        self.settle()
        return decision.reply or {}

    def add(self, user: str, n: int, duration_ms: int = 60_000, **data: Any) -> dict[str, Any]:
        t = track(n, duration_ms)
        body = {"provider": "youtube", "provider_id": t["provider_id"], "title": t["title"], "artist": "A"}
        return self.op(user, "queue.add", {"track": {**body, "duration_ms": duration_ms}, **data}, track=t)

    def advance(self, ms: int) -> None:
        self.now += ms
        self.settle()

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]

    def durable(self) -> list[Event]:
        return [e for e in self.events if e.seq is not None]


def fan(room: Room, **settings_: Any) -> None:
    room.join(OWNER, MOD, ANA, BEN, CAT)
    room.op(OWNER, "session.start", {"mode": "fan", **settings_})


def replayed(room: Room) -> RoomState:
    state = RoomState(RoomInfo("room", "room", "Room", "public", "public", OWNER))
    for e in room.durable():
        payload = json.loads(json.dumps(e.to_journal()))
        assert e.seq is not None
        state.apply(Event.from_journal(e.name, e.seq, e.at, payload))
    return state


# ---- settings --------------------------------------------------------------------------------


def test_settings_start_with_the_session_and_show_in_the_welcome() -> None:
    room = Room()
    fan(room, repeat_window_s=60, afk_limit_s=0, max_track_s=300, max_queue=2, skip_ratio=0.3)
    expected = {
        "skip_ratio": 0.3,
        "repeat_window_s": 60,
        "afk_limit_s": 0,
        "max_track_s": 300,
        "max_queue": 2,
    }
    assert room.named("session.started")[0].data["settings"] == expected
    welcome = welcome_data(room.state, room.conns[ANA], room.now, resumed=False, replayed=0)
    assert welcome["session"]["settings"] == expected


def test_defaults_are_the_protocols() -> None:
    room = Room()
    fan(room)
    settings_ = room.named("session.started")[0].data["settings"]
    assert settings_ == {
        "skip_ratio": 0.5,
        "repeat_window_s": 7200,
        "afk_limit_s": 1800,
        "max_track_s": 900,
        "max_queue": 50,
    }


def test_a_mod_changes_settings_live_and_others_may_not() -> None:
    room = Room()
    fan(room)
    room.op(MOD, "session.update", {"max_queue": 3, "skip_ratio": 0.8})
    updated = room.named("session.updated")[-1]
    assert updated.seq is not None and updated.data["settings"]["max_queue"] == 3
    assert updated.data["settings"]["skip_ratio"] == 0.8 and updated.data["settings"]["afk_limit_s"] == 1800
    session = room.state.session
    assert session is not None and session.max_queue == 3 and session.skip_ratio == 0.8
    with pytest.raises(Forbidden):
        room.op(ANA, "session.update", {"max_queue": 9})
    with pytest.raises(BadRequest) as empty:
        room.op(MOD, "session.update", {})
    assert empty.value.field == "data"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("repeat_window_s", -1),
        ("repeat_window_s", 604_801),
        ("afk_limit_s", 86_401),
        ("max_track_s", 7_201),
        ("max_queue", 0),
        ("max_queue", 501),
        ("skip_ratio", 0.05),
        ("max_queue", "5"),
        ("afk_limit_s", True),
    ],
)
def test_a_setting_out_of_bounds_is_refused_naming_it(field: str, value: Any) -> None:
    for op, base in (("session.start", {"mode": "fan"}), ("session.update", {})):
        with pytest.raises(BadRequest) as refused:
            parse_op_data(op, {**base, field: value})
        assert refused.value.field == field


# ---- repeat guard, length, queue size ---------------------------------------------------------


def test_a_track_played_within_the_window_is_refused_and_a_mod_may_force_it() -> None:
    room = Room()
    fan(room, repeat_window_s=3600, afk_limit_s=0)
    room.op(ANA, "dj.join")
    first = room.add(ANA, 1, duration_ms=60_000)
    assert first["last_played_at"] is None
    started_at = room.named("track.started")[-1].data["started_at"]
    room.advance(60_000)  # it played
    with pytest.raises(RecentlyPlayed) as refused:
        room.add(ANA, 1)
    assert refused.value.last_played_at == started_at
    assert refused.value.to_body()["last_played_at"] == started_at
    with pytest.raises(Forbidden) as not_mod:
        room.add(ANA, 1, force=True)
    assert not_mod.value.field == "force"
    room.op(MOD, "dj.join")
    forced = room.add(MOD, 1, force=True)
    assert forced["last_played_at"] == started_at
    room.advance(3600_000)  # the window passed: anyone may queue it, and is told when it last played
    again = room.add(ANA, 1)
    assert again["last_played_at"] is not None and again["last_played_at"] >= started_at


def test_a_window_of_zero_never_refuses() -> None:
    room = Room()
    fan(room, repeat_window_s=0, afk_limit_s=0)
    room.op(ANA, "dj.join")
    room.add(ANA, 1, duration_ms=1000)
    room.advance(1000)
    assert room.add(ANA, 1)["last_played_at"] is not None


def test_too_long_and_too_many_are_refused() -> None:
    room = Room()
    fan(room, max_track_s=120, max_queue=2, afk_limit_s=0)
    room.op(ANA, "dj.join")
    with pytest.raises(TrackTooLong) as long_:
        room.add(ANA, 1, duration_ms=120_001)
    assert long_.value.field == "track.duration_ms"
    room.add(ANA, 2, duration_ms=120_000)  # plays at once
    room.add(ANA, 3)
    room.add(ANA, 4)
    with pytest.raises(QueueFull):
        room.add(ANA, 5)
    room.op(BEN, "dj.join")  # per DJ: Ben has his own two
    room.add(BEN, 6)
    room.add(BEN, 7)


# ---- away DJs, kept queues, moving ------------------------------------------------------------


def test_a_dj_silent_past_the_limit_is_removed_at_their_turn_and_keeps_their_queue() -> None:
    room = Room()
    fan(room, afk_limit_s=300, repeat_window_s=0)
    room.op(ANA, "dj.join")
    room.op(BEN, "dj.join")
    room.add(ANA, 1, duration_ms=200_000)  # plays at once
    room.add(BEN, 2)
    room.add(BEN, 3)
    room.add(ANA, 4, duration_ms=200_000)
    room.advance(200_000)  # Ben's turn: silent for 200 s, under the limit: he plays
    assert room.named("track.started")[-1].data["dj_id"] == BEN
    room.advance(60_000)  # Ana's turn; she has been silent for 260 s
    assert room.named("track.started")[-1].data["dj_id"] == ANA
    room.op(ANA, "chat.send", {"text": "still here"}, mentions=[])  # any op counts
    room.advance(200_000)  # Ben's turn again: silent for 460 s: out, and Ana plays on
    out = room.named("dj.rotation")[-1]
    assert out.data["removed"] == [{"user_id": BEN, "reason": "afk"}]
    assert BEN not in out.data["djs"]
    session = room.state.session
    assert session is not None and [i.track["id"] for i in session.queue(BEN)] == ["t3"]  # kept
    assert all(i.added_by != BEN for i in session.play_order())
    room.op(BEN, "dj.join")  # back: his queue plays again
    assert [i["track"]["id"] for i in room.named("queue.updated")[-1].data["queue"]][-1] == "t3"
    assert replayed(room).snapshot() == room.state.snapshot()


def test_a_ping_is_not_activity() -> None:
    room = Room()
    fan(room, afk_limit_s=60, repeat_window_s=0)
    room.op(ANA, "dj.join")
    room.op(BEN, "dj.join")
    room.add(ANA, 1, duration_ms=120_000)
    room.add(BEN, 2)
    room.advance(100_000)
    room.op(BEN, "ping")
    room.op(ANA, "chat.send", {"text": "here"}, mentions=[])
    room.advance(20_000)
    assert room.named("dj.rotation")[-1].data["removed"] == [{"user_id": BEN, "reason": "afk"}]


def test_leaving_and_rejoining_keeps_the_queue() -> None:
    room = Room()
    fan(room, afk_limit_s=0, repeat_window_s=0)
    room.op(ANA, "dj.join")
    room.op(BEN, "dj.join")
    room.add(ANA, 1)
    room.add(BEN, 2)
    room.add(BEN, 3)
    room.op(BEN, "dj.leave")
    assert [i["added_by"] for i in room.named("queue.updated")[-1].data["queue"]] == []
    room.op(BEN, "dj.join")
    assert [i["track"]["id"] for i in room.named("queue.updated")[-1].data["queue"]] == ["t2", "t3"]
    assert replayed(room).snapshot() == room.state.snapshot()


def test_a_mod_moves_a_dj_to_the_next_turn() -> None:
    room = Room()
    fan(room, afk_limit_s=0, repeat_window_s=0)
    for dj in (ANA, BEN, CAT):
        room.op(dj, "dj.join")
    room.add(ANA, 1)  # Ana plays
    room.add(BEN, 2)
    room.add(CAT, 3)
    room.op(MOD, "mod.move_dj", {"user_id": CAT, "position": 1})
    rotation = room.named("dj.rotation")[-1]
    assert rotation.data["djs"] == [CAT, BEN, ANA] and rotation.data["active"] == ANA
    assert [i["track"]["id"] for i in room.named("queue.updated")[-1].data["queue"]] == ["t3", "t2"]
    room.advance(60_000)
    assert room.named("track.started")[-1].data["dj_id"] == CAT
    room.advance(60_000)
    assert room.named("track.started")[-1].data["dj_id"] == BEN
    room.op(OWNER, "mod.move_dj", {"user_id": ANA, "position": 25})  # past the end: last before the active
    assert room.named("dj.rotation")[-1].data["djs"] == [CAT, ANA, BEN]
    with pytest.raises(Forbidden):
        room.op(ANA, "mod.move_dj", {"user_id": BEN, "position": 1})
    room.join(DAN)
    with pytest.raises(NotFound) as missing:
        room.op(MOD, "mod.move_dj", {"user_id": DAN, "position": 1})
    assert missing.value.field == "user_id"
    assert replayed(room).snapshot() == room.state.snapshot()


# ---- skip --------------------------------------------------------------------------------------


def test_only_settled_listeners_count_toward_the_skip_threshold() -> None:
    room = Room()
    fan(room, afk_limit_s=0, skip_ratio=0.5)  # five users present since T0
    room.join(DAN)
    room.op(ANA, "dj.join")
    room.add(ANA, 1, duration_ms=600_000)
    item = room.named("track.started")[-1].data["item"]["item_id"]
    room.advance(40_000)  # owner, mod, ben, cat, dan settled (5, the DJ left out): 3 needed
    room.op(BEN, "vote.skip", {"item_id": item, "reason": "too loud"})
    room.op(CAT, "vote.skip", {"item_id": item, "reason": "too loud"})
    assert not room.named("track.ended")
    room.op(DAN, "vote.skip", {"item_id": item})
    ended = room.named("track.ended")[-1]
    assert ended.data["reason"] == "skipped" and ended.data["skip_reasons"] == {"too loud": 2}
    room.add(ANA, 2, duration_ms=600_000)
    item = room.named("track.started")[-1].data["item"]["item_id"]
    for user in (BEN, CAT, DAN):
        room.leave(user)
    room.join(BEN, CAT, DAN)  # back, but for under 30 s: only owner and mod count: 2 needed
    room.op(BEN, "vote.skip", {"item_id": item, "reason": "meh"})
    room.op(CAT, "vote.skip", {"item_id": item})
    assert room.named("track.ended")[-1].data["skip_reasons"] == {"meh": 1}


def test_a_skip_reason_is_bounded() -> None:
    with pytest.raises(BadRequest) as refused:
        parse_op_data("vote.skip", {"item_id": str(uuid.uuid4()), "reason": "x" * 101})
    assert refused.value.field == "reason"


# ---- blocks: what a joining socket is shown ----------------------------------------------------


def test_a_welcome_and_replay_hide_blocked_authors() -> None:
    room = Room()
    room.join(OWNER, ANA, BEN)
    room.op(BEN, "chat.send", {"text": "hi"}, mentions=[])
    room.op(ANA, "chat.send", {"text": "yo"}, mentions=[])
    welcome = {
        "type": "welcome",
        "data": welcome_data(room.state, room.conns[OWNER], room.now, resumed=False, replayed=0),
    }
    replay = [e.wire() for e in room.durable()]
    shown = hide_for(frozenset({BEN}), [welcome, *replay])
    recent = shown[0]["data"]["recent_messages"]
    assert recent[0] == {"id": recent[0]["id"], "user_id": BEN, "hidden": True}
    assert recent[1]["text"] == "yo"
    stubs = [m for m in shown[1:] if m["data"].get("hidden")]
    assert len(stubs) == 1 and stubs[0]["seq"] == replay[0]["seq"]
    index = BlockIndex()
    index.assign(7, frozenset({BEN}))
    assert index.active and index.hiders(BEN) == {7}
    index.assign(7, frozenset())
    assert not index.active and index.hiders(BEN) is None


# ---- replay with everything in the mix ---------------------------------------------------------

USERS = [OWNER, MOD, ANA, BEN, CAT]
steps = st.one_of(
    st.tuples(st.just("dj.join"), st.sampled_from(USERS)),
    st.tuples(st.just("dj.leave"), st.sampled_from(USERS)),
    st.tuples(
        st.just("add"), st.sampled_from(USERS), st.integers(1, 6), st.integers(1000, 400_000), st.booleans()
    ),
    st.tuples(st.just("advance"), st.integers(0, 500_000)),
    st.tuples(st.just("skip"), st.sampled_from(USERS), st.sampled_from([None, "bad", "loud"])),
    st.tuples(st.just("move"), st.sampled_from(USERS), st.integers(1, 5)),
    st.tuples(st.just("update"), st.integers(0, 600), st.integers(0, 600), st.integers(1, 4)),
    st.tuples(st.just("chat"), st.sampled_from(USERS)),
    st.tuples(st.just("leave"), st.sampled_from(USERS)),
    st.tuples(st.just("join"), st.sampled_from(USERS)),
)


@settings(max_examples=150, deadline=None)
@given(
    start=st.fixed_dictionaries(
        {
            "repeat_window_s": st.integers(0, 900),
            "afk_limit_s": st.integers(0, 900),
            "max_track_s": st.integers(0, 400),
            "max_queue": st.integers(1, 5),
        }
    ),
    script=st.lists(steps, min_size=10, max_size=70),
)
def test_random_fair_sessions_replay_exactly(start: dict[str, Any], script: list[tuple[Any, ...]]) -> None:
    room = Room()
    room.join(*USERS)
    room.op(OWNER, "session.start", {"mode": "fan", **start})
    for step in script:
        kind = step[0]
        try:
            if kind == "dj.join" or kind == "dj.leave":
                if step[1] in room.conns:
                    room.op(step[1], kind)
            elif kind == "add" and step[1] in room.conns:
                room.add(step[1], step[2], step[3], force=step[4])
            elif kind == "advance":
                room.advance(step[1])
            elif kind == "skip" and step[1] in room.conns:
                session = room.state.session
                playing = session.now_playing if session is not None else None
                if playing is not None:
                    data = {"item_id": playing.item.item_id}
                    if step[2] is not None:
                        data["reason"] = step[2]
                    room.op(step[1], "vote.skip", data)
            elif kind == "move" and MOD in room.conns:
                room.op(
                    MOD, "mod.move_dj", {"user_id": step[1], "position": step[2]}, target_role=ROLES[step[1]]
                )
            elif kind == "update":
                room.op(
                    OWNER,
                    "session.update",
                    {"afk_limit_s": step[1], "repeat_window_s": step[2], "max_queue": step[3]},
                )
            elif kind == "chat" and step[1] in room.conns:
                room.op(step[1], "chat.send", {"text": "x"}, mentions=[])
            elif kind == "leave" and step[1] in room.conns and step[1] != OWNER:
                room.leave(step[1])
            elif kind == "join" and step[1] not in room.conns:
                room.join(step[1])
        except ProtocolError:
            pass  # refused: nothing was applied
        session = room.state.session
        if session is not None:
            assert {i.added_by for i in session.play_order()} <= set(session.djs)
            assert all(len(session.queue(dj)) <= max(session.max_queue, 5) for dj in session.djs)
    live = room.state.snapshot()
    assert replayed(room).snapshot() == live
    assert RoomState.restore(json.loads(json.dumps(live))).snapshot() == live
