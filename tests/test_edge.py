"""An edge's bookkeeping, on the in-process bus (no Postgres: nothing here reads it)."""

from __future__ import annotations

from typing import Any, cast

import trio
import trio.testing

from protocol.codec import Encoding
from server.cluster.bus import LocalBus, LocalHub
from server.cluster.edge import EdgeSide
from server.cluster.wire import events_subject, pack


class FakeSocket:
    encoding = Encoding.JSON

    def __init__(self, conn_id: int) -> None:
        self.conn_id = conn_id
        self.frames: list[bytes] = []
        self.got = trio.Event()
        self.closed: tuple[int, str] | None = None

    def send_frame(self, frame: bytes) -> None:
        self.frames.append(frame)
        self.got.set()

    def close(self, code: int, reason: str = "") -> None:
        self.closed = (code, reason)


def _side(bus: LocalBus) -> EdgeSide:
    return EdgeSide(bus, cast(Any, None), cast(Any, None), "node-b", beat_s=60, coalesce_s=0)


async def test_the_last_socket_out_stops_the_room_edge_and_its_subscription() -> None:
    hub = LocalHub()
    owner, bus = LocalBus(hub), LocalBus(hub)
    side = _side(bus)
    async with trio.open_nursery() as nursery:
        await nursery.start(side.run)
        edge = await side.attach("r1")
        socket = FakeSocket(7)
        edge.welcome(socket, None, [{"type": "welcome", "data": {"seq": 3}}], 3, 1)
        with trio.fail_after(5):
            await socket.got.wait()
        # A relayed batch reaches the socket; one from an older epoch does not.
        socket.got = trio.Event()
        subject = events_subject("r1")
        owner.publish(subject, pack({"epoch": 1, "items": [[{"name": "x", "seq": 4}, 4, None]]}))
        owner.publish(subject, pack({"epoch": 0, "items": [[{"name": "old", "seq": 5}, 5, None]]}))
        with trio.fail_after(5):
            await socket.got.wait()
        assert edge.seq == 4
        assert side.sockets() == 1
        edge.remove(7)
        side.detach(edge)
        with trio.fail_after(5):
            await edge.stopped.wait()
        assert side.sockets() == 0
        assert not any(pattern == events_subject("r1") for _, pattern, _ in hub._subs.values())
        nursery.cancel_scope.cancel()


async def test_a_new_owner_closes_the_edges_sockets_with_1012() -> None:
    hub = LocalHub()
    owner, bus = LocalBus(hub), LocalBus(hub)
    side = _side(bus)
    async with trio.open_nursery() as nursery:
        await nursery.start(side.run)
        edge = await side.attach("r1")
        socket = FakeSocket(9)
        edge.welcome(socket, None, [{"type": "welcome", "data": {"seq": 0}}], 0, 2)
        with trio.fail_after(5):
            await socket.got.wait()
        # no seq was put out yet: nothing to read from Postgres before closing
        edge.seq = None
        owner.publish(events_subject("r1"), pack({"epoch": 3, "items": []}))
        with trio.fail_after(5):
            while socket.closed is None:
                await trio.testing.wait_all_tasks_blocked()
        assert socket.closed[0] == 1012
        nursery.cancel_scope.cancel()
