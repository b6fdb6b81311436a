"""The room actor's playback clock under trio's MockClock: a whole evening of tracks in milliseconds.

The actor runs for real (its inbox, publisher and deadlines); the journal port is
an in-memory one that commits at once, and sockets are in-memory subscribers.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import trio

from actors.commands import Join, Op
from actors.room_actor import ActorConfig, Request, RoomActor
from actors.room_state import RoomInfo, RoomState
from protocol.ops import parse_op_data
from tests.actor_ports import Inbox, MemoryJournal


def op(conn: int, name: str, data: dict[str, Any], n: int, **context: Any) -> Request:
    return Request(Op(conn, name, parse_op_data(name, data), str(uuid.UUID(int=n)), context), ref=n)


async def fan_room(
    nursery: trio.Nursery, journal: MemoryJournal, settings: dict[str, Any], tracks_each: int
) -> tuple[RoomActor, RoomState, list[Inbox]]:
    """A running room with the owner, Ana and Ben in it; a fan session with ``settings``, where Ana
    and then Ben join the rotation and each queues ``tracks_each`` four-minute tracks."""
    state = RoomState(RoomInfo("r", "r", "Room", "public", "public", "owner"))
    actor = RoomActor("r", state, journal, ActorConfig(idle_s=60))
    inboxes = [Inbox(1), Inbox(2), Inbox(3)]
    await nursery.start(actor.run)
    for conn, user, role in zip(inboxes, ("owner", "ana", "ben"), ("owner", "member", "member"), strict=True):
        await actor.send(Request(Join(conn.conn_id, user, user, role), conn=conn))
    await actor.send(op(1, "session.start", {"mode": "fan", **settings}, 1))
    await actor.send(op(2, "dj.join", {}, 2))
    await actor.send(op(3, "dj.join", {}, 3))
    n = 10
    for dj in (2, 3):
        for _ in range(tracks_each):
            n += 1
            t: dict[str, Any] = {
                "provider": "spotify",
                "provider_id": f"{n:022d}",
                "title": f"T{n}",
                "artist": "A",
                "duration_ms": 240_000,
            }
            await actor.send(
                op(dj, "queue.add", {"track": t}, n, track={**t, "id": f"t{n}", "artwork_url": None})
            )
    return actor, state, inboxes


async def test_an_evening_of_tracks_plays_by_the_clock(autojump_clock: trio.testing.MockClock) -> None:
    journal = MemoryJournal(until_ended=40)
    async with trio.open_nursery() as nursery:
        # 20 four-minute tracks each (40 tracks, 160 minutes) from DJs who queue once and then
        # sit still: no away-from-ops limit here
        _, _, (owner, ana, ben) = await fan_room(nursery, journal, {"afk_limit_s": 0}, 20)
        started_at = trio.current_time()
        with trio.fail_after(4 * 3600):  # virtual time
            await journal.done.wait()
        assert trio.current_time() - started_at == 160 * 60
        last = journal.events[-1].seq
        assert last is not None
        for inbox in (owner, ana, ben):
            await inbox.wait_for_seq(last)
        nursery.cancel_scope.cancel()
    started = [e for e in journal.events if e.name == "track.started"]
    assert len(started) == 40
    assert [s.data["dj_id"] for s in started] == ["ana", "ben"] * 20  # turns alternate
    for prev, nxt in itertools.pairwise(started):
        assert nxt.data["started_at"] == prev.data["ends_at"]  # back to back, on the clock
    seqs = [e.seq for e in journal.events]
    assert seqs == list(range(1, len(seqs) + 1))
    # every socket saw every durable event, in order, after its welcome
    for inbox in (owner, ana, ben):
        seen = [m["seq"] for m in inbox.messages if m.get("type") == "event" and "seq" in m]
        assert seen == [s for s in seqs if s > inbox.messages[0]["data"]["seq"]]


async def test_a_silent_dj_leaves_at_their_turn_by_the_clock(autojump_clock: trio.testing.MockClock) -> None:
    """Away from the room's ops for ``afk_limit_s``: removed when their turn comes, by the actor's
    own clock; a DJ who keeps chatting plays on. Nothing but virtual time passes."""
    journal = MemoryJournal(until_ended=6)
    async with trio.open_nursery() as nursery:
        actor, state, _ = await fan_room(nursery, journal, {"afk_limit_s": 600}, 5)

        async def ana_chats() -> None:
            for k in range(12):  # every two minutes, for 24 minutes
                await actor.send(op(2, "chat.send", {"text": f"hi {k}"}, 100 + k, mentions=[]))
                await trio.sleep(120)

        nursery.start_soon(ana_chats)
        with trio.fail_after(3600):  # virtual time
            await journal.done.wait()
        nursery.cancel_scope.cancel()
    started = [e.data["dj_id"] for e in journal.events if e.name == "track.started"]
    # Ben (silent since he queued at 0) plays at 4 min; at 12 min his turn comes 12 min after his
    # last op, past the 10 min limit: out, and Ana plays every turn after that.
    assert started[:4] == ["ana", "ben", "ana", "ana"]
    removal = next(e for e in journal.events if e.name == "dj.rotation" and e.data["removed"])
    assert removal.data["removed"] == [{"user_id": "ben", "reason": "afk"}]
    assert removal.data["djs"] == ["ana"]
    assert removal.at - journal.events[0].at == 12 * 60_000
    assert state.session is not None and len(state.session.queue("ben")) == 4  # kept for the session
