"""Property tests of the pure DJ-session core: random rooms driven the way the actor drives them.

Each example opens and closes sockets, runs session/DJ/queue/vote/moderation ops and lets time pass,
checking the rules of PROTOCOL.md ("DJ modes", "Session state") after every step, and at the end
that the durable events (round-tripped through the journal's JSON form) rebuild the same state.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.commands import Join, Leave, Op, Tick
from actors.decision import Decision
from actors.room_rules import decide
from actors.room_state import RoomInfo, RoomState
from actors.session import AWAY_GRACE_MS, MAX_PASSES, MAX_ROTATION, PUBLIC_PER_USER, Session
from actors.session_rules import next_deadline
from protocol.errors import ProtocolError
from protocol.events import DURABLE_EVENTS, Event
from protocol.ops import parse_op_data


def _uid(n: int) -> str:
    return str(uuid.UUID(int=(0xACE << 64) + n))


OWNER, MOD = _uid(1), _uid(2)
MEMBERS = [_uid(n) for n in range(3, 7)]
USERS = [OWNER, MOD, *MEMBERS]
ROLES = {OWNER: "owner", MOD: "moderator", **dict.fromkeys(MEMBERS, "member")}
ARTISTS = {OWNER}  # artist mode can be started by the owner only (the moderator is no artist)
MODES = ("fan", "artist", "public")
MAX_SOCKETS = 3
# Session settings that switch off the fairness rules this file's model does not know.
OLD_RULES = {"afk_limit_s": 0, "repeat_window_s": 0, "max_track_s": 0, "max_queue": 500}
NO_SOCKET = -1  # the conn id an op gets from a user with no socket open (decide says unauthorized)


def room_info() -> RoomInfo:
    return RoomInfo("room", "room", "Room", "public", "public", OWNER)


def track(n: int, duration_ms: int) -> dict[str, Any]:
    return {
        "id": f"t{n}",
        "provider": "youtube",
        "provider_id": f"p{n}",
        "title": f"T{n}",
        "artist": "A",
        "duration_ms": duration_ms,
        "artwork_url": None,
    }


def ephemeral_view(state: RoomState) -> Any:
    """What ``decide`` must not change besides the snapshot: votes, skips, presence, sockets."""
    session = state.session
    view: dict[str, Any] = {
        "presence": dict(state.presence),
        "connections": {k: repr(v) for k, v in state.connections.items()},
    }
    if session is not None:
        view["votes"] = {i.item_id: dict(i.votes) for i in session.all_items()}
        view["away"] = dict(session.away_since)
        np = session.now_playing
        if np is not None:
            view["playing"] = (np.item.item_id, dict(np.item.votes), list(np.skips))
    return view


def journal_round_trip(event: Event) -> Event:
    """The event as Postgres gives it back: its journal payload through JSON."""
    assert event.seq is not None
    payload = json.loads(json.dumps(event.to_journal()))
    return Event.from_journal(event.name, event.seq, event.at, payload)


def replay(durable: list[Event], start: RoomState | None = None) -> RoomState:
    state = start if start is not None else RoomState(room_info())
    for event in durable:
        state.apply(journal_round_trip(event))
    return state


class Room:
    """Drives the core the way the actor does: decide, apply, then settle what is due.

    It also keeps its own record of accepted votes and skip votes, to check what
    ``track.ended`` reports and awards, and checks the invariants after every step.
    """

    def __init__(self, crowd: list[str] | None = None) -> None:
        self.roles = {**ROLES, **dict.fromkeys(crowd or [], "member")}
        self.state = RoomState(room_info())
        self.now = 1_000_000
        self.events: list[Event] = []
        self.sockets: dict[str, list[int]] = {u: [] for u in self.roles}
        self.next_conn = 1
        self._ids = 0
        self.known_items: list[str] = []
        self.votes: dict[str, dict[str, str]] = {}  # item -> voter -> up|down, as accepted
        self.skips: dict[str, set[str]] = {}  # item -> skip voters, as accepted
        self.started: dict[str, Event] = {}  # item -> its track.started
        self.ended: set[str] = set()
        self.current_op: str | None = None  # the op being applied and settled, if any
        self.away_at: dict[str, int] = {}  # user -> when their last socket closed
        self.since: dict[str, int] = {}  # user -> when their first socket (of those open) opened
        self.join_no: dict[str, int] = {}  # DJ -> when they (last) joined the rotation
        self.last_turn = 0  # join number of the DJ who last got a turn
        self.passes: dict[str, int] = {}  # DJ -> turns passed over in a row
        # what a client that follows only the events believes (the welcome's session, kept up to date)
        self.seen_queue: dict[str, str] = {}  # item -> who added it
        self.seen_rotation: dict[str, Any] = {"djs": [], "active": None}
        self.seen_playing: str | None = None

    # ---- driving -------------------------------------------------------------------------

    def decide(self, command: Join | Leave | Op | Tick) -> Decision:
        """``decide``, checking that it changes nothing, whether it refuses or not."""
        before, view = self.state.snapshot(), ephemeral_view(self.state)
        try:
            return decide(self.state, command, self.now)
        finally:  # refused or not
            assert self.state.snapshot() == before
            assert ephemeral_view(self.state) == view

    def apply(self, events: list[Event]) -> None:
        for event in events:
            self.before_event(event)
            self.state.apply(event)
            self.events.append(event)
            self.check_event(event)

    def settle(self) -> None:
        for _ in range(64):
            step = self.decide(Tick()).events
            if not step:
                return
            self.apply(step)
        raise AssertionError("settle did not converge")

    def run(self, command: Join | Leave | Op) -> dict[str, Any] | None:
        d = self.decide(command)
        self.apply(d.events)
        self.settle()
        return d.reply

    def join(self, user: str) -> None:
        if len(self.sockets[user]) >= MAX_SOCKETS:
            return
        conn = self.next_conn
        self.next_conn += 1
        if not self.sockets[user]:
            self.since[user] = self.now
        self.sockets[user].append(conn)
        self.away_at.pop(user, None)
        self.run(Join(conn, user, user, self.roles[user], False, user in ARTISTS))

    def leave(self, user: str, k: int) -> None:
        socks = self.sockets[user]
        if socks:
            conn = socks.pop(k % len(socks))
            if not socks:
                self.away_at[user] = self.now
            self.run(Leave(conn))

    def op(self, user: str, op: str, data: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
        self._ids += 1
        new_id = str(uuid.UUID(int=self._ids))
        socks = self.sockets[user]
        conn = socks[self._ids % len(socks)] if socks else NO_SOCKET
        if (
            op == "session.start"
        ):  # the rules of issue 18 (away, repeat, length, queue size) have tests of their own
            data = {**OLD_RULES, **(data or {})}
        d = self.decide(Op(conn, op, parse_op_data(op, data or {}), new_id, context))
        if op == "dj.join" and any(e.name == "dj.rotation" for e in d.events):
            self.join_no[user] = self._ids
        # accepted: record votes before the events are applied (a skip vote may end the track at once)
        if op == "vote":
            assert data is not None
            votes = self.votes.setdefault(str(data["item_id"]), {})
            if data["value"] == "none":
                votes.pop(user, None)
            else:
                votes[user] = data["value"]
        elif op == "vote.skip":
            assert data is not None
            self.skips.setdefault(str(data["item_id"]), set()).add(user)
        self.current_op = op
        try:
            self.apply(d.events)
            self.settle()
        finally:
            self.current_op = None
        return d.reply or {}

    def add(self, user: str, duration_ms: int) -> str:
        t = track(self._ids + 1, duration_ms)
        body = {"provider": "youtube", "provider_id": t["provider_id"], "title": t["title"], "artist": "A"}
        reply = self.op(user, "queue.add", {"track": {**body, "duration_ms": duration_ms}}, track=t)
        item_id = str(reply["item_id"])
        self.known_items.append(item_id)
        return item_id

    def advance(self, ms: int) -> None:
        """Let ``ms`` pass, waking at every deadline on the way as the actor's clock does."""
        target = self.now + ms
        for _ in range(10_000):
            due = next_deadline(self.state)
            if due is None or due > target:
                break
            assert due > self.now, "something due was left undone"
            self.now = due
            self.settle()
        else:
            raise AssertionError("the clock did not reach its target")
        self.now = target
        self.settle()

    # ---- checks ----------------------------------------------------------------------------

    def durable(self) -> list[Event]:
        return [e for e in self.events if e.seq is not None]

    def listeners(self, exclude: str) -> int:
        """Present for 30 s or more (PROTOCOL.md "Skip"), the DJ left out."""
        return sum(
            1
            for u, socks in self.sockets.items()
            if socks and u != exclude and self.now - self.since[u] >= 30_000
        )

    def skips_needed(self, session: Session, dj: str) -> int:
        return max(2, math.ceil(session.skip_ratio * self.listeners(dj) - 1e-9))

    def before_event(self, event: Event) -> None:
        """Fan mode: the turn goes to the next present DJ, in join order, who has something queued."""
        session = self.state.session
        if event.name == "dj.rotation" and "left" in event.meta:
            left = event.meta["left"]
            if not self.sockets[left] and self.current_op != "mod.remove_dj":  # the clock removed them
                assert self.now - self.away_at[left] >= AWAY_GRACE_MS, "a DJ lost their place within 60 s"
        if event.name == "session.started":
            self.join_no.clear()
            self.passes.clear()
            self.last_turn = 0
        if event.name == "dj.rotation" and "joined" in event.meta:
            self.passes[event.meta["joined"]] = 0
        turn = event.name == "track.started" or (event.name == "dj.rotation" and "passes" in event.meta)
        if not turn or session is None or session.mode != "fan":
            return
        order = sorted(session.djs, key=lambda dj: (self.join_no[dj] <= self.last_turn, self.join_no[dj]))
        ready = [dj for dj in order if session.queues.get(dj) and self.sockets[dj]]
        assert ready, "a turn came with nobody to play"
        dj = ready[0]
        passed = order[: order.index(dj)]  # empty-handed or away: passed over
        out = [d for d in passed if self.passes[d] + 1 >= MAX_PASSES]
        if event.name == "dj.rotation":  # third pass in a row: out of the rotation, before the track
            assert event.data["removed"] == [{"user_id": d, "reason": "passed"} for d in out]
            assert event.data == {
                "djs": [d for d in session.djs if d not in out],
                "active": dj,
                "removed": event.data["removed"],
            }
            return
        assert not out, f"{out} passed over {MAX_PASSES} times in a row but still in the rotation"
        for d in passed:
            self.passes[d] += 1
        self.passes[dj] = 0
        assert event.data["dj_id"] == dj
        assert event.data["item"]["item_id"] == session.queues[dj][0].item_id
        self.last_turn = self.join_no[dj]

    def follow(self, event: Event) -> None:
        """Update the client's view from one event, as a client would."""
        d = event.data
        if event.name in ("session.started", "session.ended"):
            self.seen_queue, self.seen_playing = {}, None
            self.seen_rotation = {"djs": [], "active": None}
        elif event.name == "queue.updated":
            self.seen_queue = {i["item_id"]: i["added_by"] for i in d["queue"]}
        elif event.name == "dj.rotation":
            self.seen_rotation = {"djs": d["djs"], "active": d["active"]}
        elif event.name == "track.started":
            self.seen_queue.pop(d["item"]["item_id"], None)
            self.seen_playing = d["item"]["item_id"]
            assert self.state.session is not None
            if self.state.session.mode == "fan":
                self.seen_rotation["active"] = d["dj_id"]
        elif event.name == "track.ended":
            self.seen_playing = None

    def check_event(self, event: Event) -> None:
        """Per event, right after it is applied."""
        assert (event.seq is not None) == (event.name in DURABLE_EVENTS), event.name
        assert event.at == self.now
        self.follow(event)
        session = self.state.session
        if event.name == "queue.updated":  # what clients see is the queue in play order
            assert session is not None
            assert event.data["queue"] == [i.wire() for i in session.play_order()]
        elif event.name == "dj.rotation":
            assert session is not None and {**event.data, "removed": None} == {
                **session.rotation_wire(),
                "removed": None,
            }
        elif event.name == "vote.tally":  # the counts as they stand after the vote
            assert session is not None
            item_id = event.data["item_id"]
            votes = self.votes.get(item_id, {})
            ups = sum(1 for v in votes.values() if v == "up")
            np = session.now_playing
            skip = len(self.skips.get(item_id, ())) if np is not None and np.item.item_id == item_id else 0
            assert event.data == {"item_id": item_id, "up": ups, "down": len(votes) - ups, "skip": skip}
        if event.name == "track.started":
            assert session is not None and session.now_playing is not None
            item = event.data["item"]
            item_id = item["item_id"]
            assert item_id not in self.started, f"{item_id} played twice"
            self.started[item_id] = event
            assert event.data["started_at"] == self.now
            assert event.data["ends_at"] == self.now + item["track"]["duration_ms"]
            assert event.data["dj_id"] == item["added_by"]  # the active DJ in fan mode is the adder
            assert session.now_playing.item.item_id == item_id
            key = (-session.now_playing.item.score(), session.now_playing.item.position)
            if session.mode == "public":  # highest up - down, ties by earliest added
                assert all(key < (-i.score(), i.position) for i in session.queue())
            elif session.mode == "artist":  # in order
                assert all(key[1] < i.position for i in session.queue())
            else:  # a DJ in the rotation, present, whose turn it is
                dj = event.data["dj_id"]
                assert dj in session.djs and dj not in session.away_since
                assert session.active == dj
        elif event.name == "track.ended":
            item_id = event.data["item_id"]
            start = self.started[item_id]
            assert item_id not in self.ended
            self.ended.add(item_id)
            reason = event.data["reason"]
            assert reason in ("completed", "skipped", "mod_skip")
            votes = self.votes.get(item_id, {})
            skips = self.skips.get(item_id, set())
            if reason == "completed":
                assert self.now == start.data["ends_at"]
            else:
                assert self.now < start.data["ends_at"]
            if reason == "mod_skip":
                assert self.current_op == "mod.skip"
            elif reason == "skipped":
                assert session is not None
                assert len(skips) >= self.skips_needed(session, start.data["dj_id"])
            ups = sum(1 for v in votes.values() if v == "up")
            assert event.data["votes"] == {"up": ups, "down": len(votes) - ups, "skip": len(skips)}
            dj = start.data["dj_id"]
            assert dj not in votes  # votes on one's own item are refused
            expected: list[list[Any]] = []
            if reason == "completed":
                expected.append([dj, "track_played", 10, item_id, ""])
            for voter, value in sorted(votes.items()):
                if value == "up":
                    expected.append([dj, "upvote_received", 2, item_id, voter])
                else:
                    expected.append([dj, "downvote_received", -1, item_id, voter])
            assert event.meta["awards"] == expected

    def check(self) -> None:
        """After every step (everything due has been settled)."""
        durable = self.durable()
        assert [e.seq for e in durable] == list(range(1, len(durable) + 1))
        assert self.state.seq == len(durable)
        started = [e.data["item"]["item_id"] for e in self.events if e.name == "track.started"]
        assert len(started) == len(set(started))
        due = next_deadline(self.state)
        assert due is None or due > self.now
        session = self.state.session
        if session is None:
            assert not self.seen_queue and self.seen_playing is None
            return
        # a client following the events sees the session as it is
        wire = session.wire()
        assert self.seen_queue == {i["item_id"]: i["added_by"] for i in wire["queue"]}
        assert self.seen_rotation == wire["rotation"]
        assert self.seen_playing == (wire["now_playing"] or {"item": {"item_id": None}})["item"]["item_id"]
        assert len(session.djs) == len(set(session.djs)) <= MAX_ROTATION
        assert session.mode == "fan" or not session.djs  # only fan mode has a rotation
        assert len(session.played) == len(set(session.played))
        queued = [i.item_id for i in session.all_items()]
        assert len(queued) == len(set(queued))
        assert not set(queued) & set(session.played)
        playing = session.now_playing
        if playing is not None:
            assert playing.item.item_id not in queued
            assert playing.item.item_id in session.played
            skips = self.skips.get(playing.item.item_id, set())
            assert len(skips) < self.skips_needed(session, playing.dj_id)
        for dj in session.djs:  # a DJ away for 60 s has left the rotation
            assert self.sockets[dj] or self.now - self.away_at[dj] < AWAY_GRACE_MS
        if session.mode == "fan":
            assert {dj: session.passes.get(dj, 0) for dj in session.djs} == {
                dj: self.passes[dj] for dj in session.djs
            }
            for owner, items in session.queues.items():  # a DJ who left keeps theirs for the session
                assert all(i.added_by == owner for i in items)
            assert {i.added_by for i in session.play_order()} <= set(session.djs), (
                "a non-DJ's track would play"
            )
        else:
            assert set(session.queues) <= {""}
        if session.mode == "public":
            per_user: dict[str, int] = {}
            for item in session.queue():
                per_user[item.added_by] = per_user.get(item.added_by, 0) + 1
            assert max(per_user.values(), default=0) <= PUBLIC_PER_USER
            order = session.play_order()
            keys = [(-i.score(), i.position) for i in order]
            assert keys == sorted(keys)
        # nothing due is left undone: with nothing playing, nothing could play
        if playing is None:
            if session.mode == "fan":
                assert all(dj in session.away_since for dj in session.djs if session.queues.get(dj))
            else:
                assert not session.all_items()

    # ---- random steps ------------------------------------------------------------------------

    def item_ref(self, ref: tuple[str, int]) -> str:
        kind, n = ref
        session = self.state.session
        if kind == "playing" and session is not None and session.now_playing is not None:
            return session.now_playing.item.item_id
        if kind == "queued" and session is not None and session.all_items():
            items = session.all_items()
            return items[n % len(items)].item_id
        if kind == "known" and self.known_items:
            return self.known_items[n % len(self.known_items)]
        return str(uuid.UUID(int=(0xDEAD << 64) + n))

    def allowed(self, op: str, user: str, data: dict[str, Any]) -> bool:
        """Whether PROTOCOL.md lets ``user`` do ``op`` now (the oracle the refusals are checked against)."""
        session, mod = self.state.session, self.roles[user] in ("owner", "moderator")
        if not self.sockets[user]:
            return False
        if op == "session.start":
            return session is None and mod and (data["mode"] != "artist" or user in ARTISTS)
        if session is None:
            return False
        playing = session.now_playing
        playing_id = playing.item.item_id if playing is not None else None
        if op == "session.stop":
            return user == session.host_id or mod
        if op == "dj.join":
            return session.mode == "fan" and (user in session.djs or len(session.djs) < MAX_ROTATION)
        if op == "dj.leave":
            return user in session.djs
        if op == "queue.add":
            if session.mode == "fan":
                return user in session.djs
            if session.mode == "artist":
                return user == session.host_id or mod
            return sum(1 for i in session.all_items() if i.added_by == user) < PUBLIC_PER_USER
        if op == "queue.remove":
            found = session.find_item(data["item_id"])
            return found is not None and (user in (found[1].added_by, session.host_id) or mod)
        if op == "vote":
            if playing is not None and data["item_id"] == playing_id:
                return playing.item.added_by != user
            found = session.find_item(data["item_id"]) if session.mode == "public" else None
            return found is not None and found[1].added_by != user
        if op == "vote.skip":
            return bool(data["item_id"] == playing_id)
        if op == "mod.skip":
            return playing is not None and (mod or user == playing.dj_id)
        if op == "mod.remove_dj":
            target = data["user_id"]
            outranked = target == OWNER or (self.roles[target] == "moderator" and self.roles[user] != "owner")
            return mod and not outranked and target in session.djs
        assert op == "mod.clear_queue"
        return mod

    def step(self, step: tuple[Any, ...]) -> None:
        kind, user = step[0], USERS[step[1]]
        if kind == "advance":
            self.advance(step[2])
            return
        if kind == "join":
            self.join(user)
            return
        if kind == "leave":
            self.leave(user, step[2])
            return
        data: dict[str, Any] = {}
        context: dict[str, Any] = {}
        op = kind
        if kind == "start":
            op, data = "session.start", {"mode": step[2], "skip_ratio": step[3]}
        elif kind == "add":
            op = "queue.add"
        elif kind == "remove":
            op, data = "queue.remove", {"item_id": self.item_ref(step[2])}
        elif kind == "vote":
            data = {"item_id": self.item_ref(step[2]), "value": step[3]}
        elif kind == "vote.skip":
            data = {"item_id": self.item_ref(step[2])}
        elif kind == "mod.remove_dj":
            target = USERS[step[2]]
            data, context = {"user_id": target}, {"target_role": self.roles[target]}
        expected = self.allowed(op, user, data)
        session = self.state.session
        try:
            if op == "queue.add":
                self.add(user, step[2])
            else:
                self.op(user, op, data, **context)
        except ProtocolError as refusal:
            assert not expected, f"{op} by {self.roles[user]} refused: {refusal.code} {refusal.message}"
            if not self.sockets[user]:
                assert refusal.code == "unauthorized"
            elif session is None and op != "session.start":
                assert refusal.code == "no_session"
            if refusal.code == "queue_full":  # in public mode only the per-user cap fills a queue
                assert op == "queue.add" and session is not None and session.mode == "public"
        else:
            assert expected, f"{op} by {self.roles[user]} was accepted"


# ---- strategies --------------------------------------------------------------------------------

user_ix = st.integers(0, len(USERS) - 1)
item_refs = st.one_of(
    st.tuples(st.just("playing"), st.just(0)),
    st.tuples(st.just("playing"), st.just(0)),
    st.tuples(st.just("playing"), st.just(0)),
    st.tuples(st.just("queued"), st.integers(0, 40)),
    st.tuples(st.just("queued"), st.integers(0, 40)),
    st.tuples(st.just("known"), st.integers(0, 40)),
    st.tuples(st.just("random"), st.integers(0, 3)),
)
skip_refs = st.one_of(st.just(("playing", 0)), item_refs)  # skip votes mostly on what plays
durations = st.one_of(st.integers(1000, 600_000), st.sampled_from([1000, 1001, 60_000]))
time_steps = st.one_of(
    st.integers(0, 700_000),
    st.integers(0, 5_000),
    st.sampled_from([AWAY_GRACE_MS - 1, AWAY_GRACE_MS, AWAY_GRACE_MS + 1]),
)


def _no_data(op: str) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(st.just(op), user_ix)


steps: st.SearchStrategy[tuple[Any, ...]] = st.one_of(
    st.tuples(st.just("join"), user_ix),
    st.tuples(st.just("leave"), user_ix, st.integers(0, MAX_SOCKETS - 1)),
    st.tuples(st.just("start"), user_ix, st.sampled_from(MODES), st.floats(0.1, 1.0)),
    _no_data("session.stop"),
    _no_data("dj.join"),
    _no_data("dj.join"),
    _no_data("dj.leave"),
    st.tuples(st.just("add"), user_ix, durations),
    st.tuples(st.just("add"), user_ix, durations),
    st.tuples(st.just("add"), user_ix, durations),
    st.tuples(st.just("remove"), user_ix, item_refs),
    st.tuples(st.just("vote"), user_ix, item_refs, st.sampled_from(["up", "down", "none"])),
    st.tuples(st.just("vote"), user_ix, item_refs, st.sampled_from(["up", "down", "none"])),
    st.tuples(st.just("vote.skip"), user_ix, skip_refs),
    st.tuples(st.just("vote.skip"), user_ix, skip_refs),
    _no_data("mod.skip"),
    st.tuples(st.just("mod.remove_dj"), user_ix, user_ix),
    _no_data("mod.clear_queue"),
    st.tuples(st.just("advance"), user_ix, time_steps),
    st.tuples(st.just("advance"), user_ix, time_steps),
    st.tuples(st.just("advance"), user_ix, time_steps),
)


@settings(max_examples=200, deadline=None)
@given(
    start=st.tuples(st.sampled_from([*MODES, "fan", None]), st.floats(0.1, 1.0)),
    djs=st.lists(user_ix, max_size=len(USERS), unique=True),
    script=st.lists(steps, min_size=15, max_size=80),
    cut=st.integers(0, 80),
)
def test_random_sessions_keep_the_rules_and_replay(
    start: tuple[str | None, float], djs: list[int], script: list[tuple[Any, ...]], cut: int
) -> None:
    room = Room()
    for user in USERS:
        room.join(user)
    if start[0] is not None:  # most examples begin inside a session, fan mode with some DJs
        room.op(OWNER, "session.start", {"mode": start[0], "skip_ratio": start[1]})
        for n in djs:
            room.step(("dj.join", n))
    room.check()
    midway: tuple[dict[str, Any], int] | None = None
    for n, step in enumerate(script):
        if n == cut % len(script):
            midway = (json.loads(json.dumps(room.state.snapshot())), room.state.seq)
        room.step(step)
        room.check()

    live = room.state.snapshot()
    durable = room.durable()
    # the journal alone, through JSON, rebuilds the state
    assert replay(durable).snapshot() == live
    # a snapshot restores exactly, also through JSON
    assert RoomState.restore(live).snapshot() == live
    assert RoomState.restore(json.loads(json.dumps(live)), room_info()).snapshot() == live
    # a snapshot taken midway plus the journal after it
    assert midway is not None
    snap, seq = midway
    rebuilt = replay(durable[seq:], RoomState.restore(snap))
    assert rebuilt.snapshot() == live


fan_steps: st.SearchStrategy[tuple[Any, ...]] = st.one_of(
    st.tuples(st.just("join"), user_ix),
    st.tuples(st.just("leave"), user_ix, st.integers(0, MAX_SOCKETS - 1)),
    st.tuples(st.just("leave"), user_ix, st.integers(0, MAX_SOCKETS - 1)),
    _no_data("dj.join"),
    _no_data("dj.leave"),
    st.tuples(st.just("add"), user_ix, durations),
    st.tuples(st.just("add"), user_ix, durations),
    st.tuples(st.just("add"), user_ix, durations),
    st.tuples(st.just("vote"), user_ix, item_refs, st.sampled_from(["up", "down", "none"])),
    st.tuples(st.just("vote.skip"), user_ix, skip_refs),
    st.tuples(st.just("vote.skip"), user_ix, skip_refs),
    _no_data("mod.skip"),
    st.tuples(st.just("mod.remove_dj"), user_ix, user_ix),
    st.tuples(st.just("advance"), user_ix, time_steps),
    st.tuples(st.just("advance"), user_ix, time_steps),
    st.tuples(st.just("advance"), user_ix, time_steps),
)


@settings(max_examples=150, deadline=None)
@given(
    ratio=st.floats(0.1, 1.0),
    djs=st.lists(user_ix, min_size=1, max_size=len(USERS), unique=True),
    script=st.lists(fan_steps, min_size=15, max_size=80),
)
def test_fan_rotation_passes_and_absences_keep_the_rules_and_replay(
    ratio: float, djs: list[int], script: list[tuple[Any, ...]]
) -> None:
    """Fan mode only, with every user a DJ or about to be: turns, pass-overs, absences, step-downs."""
    room = Room()
    for user in USERS:
        room.join(user)
    room.op(OWNER, "session.start", {"mode": "fan", "skip_ratio": ratio})
    for n in djs:
        room.step(("dj.join", n))
    room.check()
    for step in script:
        room.step(step)
        room.check()
    live = room.state.snapshot()
    assert replay(room.durable()).snapshot() == live
    assert RoomState.restore(json.loads(json.dumps(live)), room_info()).snapshot() == live


adders = st.sampled_from([0, 2, 2, 3])  # a few users add a lot: the per-user cap is reached
queued_refs = st.one_of(item_refs, st.tuples(st.just("queued"), st.integers(0, 40)))
public_steps: st.SearchStrategy[tuple[Any, ...]] = st.one_of(
    st.tuples(st.just("join"), user_ix),
    st.tuples(st.just("leave"), user_ix, st.integers(0, MAX_SOCKETS - 1)),
    st.tuples(st.just("add"), user_ix, durations),
    st.tuples(st.just("add"), adders, durations),
    st.tuples(st.just("add"), adders, durations),
    st.tuples(st.just("add"), adders, durations),
    st.tuples(st.just("remove"), user_ix, queued_refs),
    st.tuples(st.just("vote"), user_ix, queued_refs, st.sampled_from(["up", "down", "none"])),
    st.tuples(st.just("vote"), user_ix, queued_refs, st.sampled_from(["up", "down", "none"])),
    st.tuples(st.just("vote"), user_ix, queued_refs, st.sampled_from(["up", "down", "none"])),
    st.tuples(st.just("vote.skip"), user_ix, skip_refs),
    st.tuples(st.just("vote.skip"), user_ix, skip_refs),
    _no_data("mod.skip"),
    _no_data("mod.clear_queue"),
    st.tuples(st.just("advance"), user_ix, time_steps),
)


@settings(max_examples=150, deadline=None)
@given(
    mode=st.sampled_from(["public", "public", "artist"]),
    ratio=st.floats(0.1, 1.0),
    script=st.lists(public_steps, min_size=15, max_size=80),
)
def test_public_and_artist_queues_keep_the_rules_and_replay(
    mode: str, ratio: float, script: list[tuple[Any, ...]]
) -> None:
    """Public and artist mode: per-user caps, votes on queued items deciding what plays next."""
    room = Room()
    for user in USERS:
        room.join(user)
    room.op(OWNER, "session.start", {"mode": mode, "skip_ratio": ratio})
    room.check()
    for step in script:
        room.step(step)
        room.check()
    live = room.state.snapshot()
    assert replay(room.durable()).snapshot() == live
    assert RoomState.restore(json.loads(json.dumps(live)), room_info()).snapshot() == live


@settings(max_examples=20, deadline=None)
@given(crowd=st.integers(1, MAX_ROTATION + 5), seed=st.randoms(use_true_random=False))
def test_the_rotation_holds_at_most_25_djs(crowd: int, seed: random.Random) -> None:
    users = [_uid(100 + n) for n in range(crowd)]
    room = Room(users)
    room.join(OWNER)
    room.op(OWNER, "session.start", {"mode": "fan"})
    for user in users:
        room.join(user)
    order = list(users)
    seed.shuffle(order)
    refused = []
    for user in order:
        try:
            room.op(user, "dj.join")
        except ProtocolError as refusal:
            assert refusal.code == "conflict"
            refused.append(user)
        room.check()
    session = room.state.session
    assert session is not None
    assert session.djs == [u for u in order if u not in refused]
    assert len(session.djs) == min(crowd, MAX_ROTATION)
    room.op(session.djs[0], "dj.leave")  # a place frees up
    room.check()
    if refused:
        room.op(refused[0], "dj.join")
        assert session.djs[-1] == refused[0] and len(session.djs) == MAX_ROTATION


# ---- bugs found by these properties -------------------------------------------------------------


def test_a_dj_passed_out_with_queued_items_is_followed_by_queue_updated() -> None:
    """An away DJ with tracks queued is passed over three times within 60 s and leaves the rotation."""
    room = Room()
    ana, ben = MEMBERS[0], MEMBERS[1]
    for user in (OWNER, ana, ben):
        room.join(user)
    room.op(OWNER, "session.start", {"mode": "fan"})
    room.op(ana, "dj.join")
    room.op(ben, "dj.join")
    for _ in range(3):
        room.add(ben, 1000)  # the first plays at once
    room.leave(ben, 0)  # away: his turns are passed over
    for _ in range(4):
        room.add(ana, 1000)
    for _ in range(4):
        room.advance(1000)
    session = room.state.session
    assert session is not None and ben not in session.djs  # passed over 3 times: out (this is right)
    assert not any(i.added_by == ben for i in session.play_order())  # out of the play order ...
    assert len(session.queue(ben)) == 2  # ... but kept for the session (PROTOCOL.md "Away DJs")
    out = next(e for e in room.events if e.name == "dj.rotation" and e.data["removed"])
    assert out.data["removed"] == [{"user_id": ben, "reason": "passed"}]
    after = room.events[room.events.index(out) :]
    assert any(e.name == "queue.updated" for e in after), "no queue.updated after the pass-out"
    room.check()


# ---- regressions -------------------------------------------------------------------------------
# Session.queue() used to be ``setdefault`` (until 296060d): reading a queue (a Tick in artist or
# public mode, a welcome's session.wire()) added ``"" -> []`` to the live state, so decide was not
# pure and the journal replay gave a different snapshot.


def test_replaying_a_public_session_rebuilds_the_exact_snapshot() -> None:
    room = Room()
    room.join(OWNER)
    room.op(OWNER, "session.start", {"mode": "public"})  # settles: decide(Tick) finds nothing to play
    assert replay(room.durable()).snapshot() == room.state.snapshot()
    assert room.state.session is not None
    room.state.session.wire()  # what a welcome reads
    assert replay(room.durable()).snapshot() == room.state.snapshot()


def test_a_tick_that_emits_nothing_changes_nothing() -> None:
    state = RoomState(room_info())
    for event in decide(state, Join(1, OWNER, OWNER, "owner", False, True), 0).events:
        state.apply(event)
    start = Op(1, "session.start", parse_op_data("session.start", {"mode": "artist"}), _uid(99))
    for event in decide(state, start, 0).events:
        state.apply(event)
    before = state.snapshot()
    assert decide(state, Tick(), 0).events == []
    assert state.snapshot() == before
