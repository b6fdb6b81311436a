"""The room flusher: coalesced writes that keep publish order for every socket (no I/O)."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import trio
import trio.testing

from actors.fanout import Fanout
from protocol.codec import Encoding
from tests.frames import unframe


class Sock:
    """Stands in for a socket: records each write and what it held."""

    def __init__(self, conn_id: int, encoding: Encoding = Encoding.JSON) -> None:
        self.conn_id = conn_id
        self.encoding = encoding
        self.writes: list[list[Any]] = []
        self.closed: tuple[int, str] | None = None
        self.after_close: list[Any] = []

    def send_frame(self, frame: bytes) -> None:
        loads = json.loads if self.encoding == Encoding.JSON else msgpack.unpackb
        messages = [loads(p) for p in unframe(frame)]
        (self.after_close if self.closed else self.writes).append(messages)

    def close(self, code: int, reason: str = "") -> None:
        self.closed = (code, reason)

    @property
    def seen(self) -> list[Any]:
        return [m["n"] for write in self.writes for m in write]


def msg(n: Any) -> dict[str, Any]:
    return {"type": "event", "n": n}


async def test_a_quiet_room_flushes_at_once_and_a_busy_one_per_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fanout = Fanout(0.005)
    a, b = Sock(1), Sock(2, Encoding.MSGPACK)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(fanout.run)
        fanout.subscribe(a, [])
        fanout.subscribe(b, [])
        await trio.sleep(1)  # virtual time: a quiet spell
        start = trio.current_time()
        fanout.to_all(msg(1))
        await trio.testing.wait_all_tasks_blocked()
        assert a.seen == [1] and trio.current_time() == start  # first after a quiet spell: no wait
        for n in range(2, 12):
            fanout.to_all(msg(n))
        await trio.testing.wait_all_tasks_blocked()
        assert a.seen == [1]  # held until the window ends ...
        await trio.sleep(0.01)  # past the end of the window (virtual time)
        assert a.seen == b.seen == list(range(1, 12))
        assert [len(w) for w in a.writes] == [1, 10]  # ... then all ten in one write per socket
        nursery.cancel_scope.cancel()


async def test_publishing_flushes_in_place_when_due_and_leaves_the_rest_to_the_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fanout = Fanout(0.005)
    a = Sock(1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(fanout.run)
        fanout.subscribe(a, [])
        await trio.sleep(1)
        with fanout.publishing():
            fanout.to_all(msg(1))
            fanout.to_all(msg(2))
            assert a.seen == []  # nothing goes out before the end of the block ...
        # ... and then at once, as one write, with no task switch
        assert [[m["n"] for m in w] for w in a.writes] == [[1, 2]]
        with fanout.publishing():
            fanout.to_all(msg(3))
        assert a.seen == [1, 2]  # within the window of that flush: held for the flusher
        await trio.sleep(0.01)
        assert [[m["n"] for m in w] for w in a.writes] == [[1, 2], [3]]
        nursery.cancel_scope.cancel()


async def test_replies_follow_their_events_and_joiners_start_at_their_welcome() -> None:
    fanout = Fanout(0.005)
    old, leaver, kicked = Sock(1), Sock(2), Sock(3)
    for sock in (old, leaver, kicked):
        fanout.subscribe(sock, [])
    fanout.flush()
    joiner = Sock(4)
    fanout.to_all(msg("before-join"))
    fanout.to_one(old, msg("reply-to-old"))
    fanout.subscribe(joiner, [msg("welcome"), msg("replayed")])
    fanout.to_all(msg("joined"), exclude=joiner.conn_id)  # in the joiner's welcome already
    fanout.close(kicked, 4010, "kicked")
    fanout.to_all(msg("after-join"))
    fanout.unsubscribe(leaver.conn_id)
    fanout.to_all(msg("after-leave"))
    fanout.to_one(joiner, msg("reply-to-joiner"))
    fanout.flush()
    assert old.seen == ["before-join", "joined", "after-join", "after-leave", "reply-to-old"]
    assert joiner.seen == ["welcome", "replayed", "after-join", "after-leave", "reply-to-joiner"]
    assert leaver.seen == ["before-join", "joined", "after-join"]
    assert kicked.seen == ["before-join", "joined"] and kicked.closed == (4010, "kicked")
    assert all(len(s.writes) == 1 for s in (old, joiner, leaver, kicked))  # one write each
    fanout.to_all(msg("later"))
    fanout.flush()
    assert old.seen[-1] == joiner.seen[-1] == "later"
    assert leaver.seen[-1] == "after-join" and kicked.after_close == [] and kicked.seen[-1] == "joined"


async def test_close_all_sends_what_came_before_then_nothing() -> None:
    fanout = Fanout(0.005)
    a, b = Sock(1), Sock(2)
    fanout.subscribe(a, [])
    fanout.flush()
    fanout.to_all(msg("deleted"))
    fanout.subscribe(b, [msg("welcome")])
    fanout.close_all(4004, "room deleted")
    fanout.to_all(msg("never"))
    fanout.flush()
    assert a.seen == ["deleted"] and b.seen == ["welcome"]
    assert a.closed == b.closed == (4004, "room deleted")
    assert fanout.subscribers == {}


async def test_abandon_drops_what_is_unsent_and_closes_everyone() -> None:
    fanout = Fanout(0.005)
    a, b = Sock(1), Sock(2)
    fanout.subscribe(a, [])
    fanout.flush()
    fanout.subscribe(b, [msg("welcome")])
    fanout.to_all(msg("unsent"))
    fanout.abandon(1011, "room restarting")
    fanout.flush()
    assert a.writes == b.writes == []
    assert a.closed == b.closed == (1011, "room restarting")
