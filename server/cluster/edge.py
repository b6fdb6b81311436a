"""Edges: sockets in rooms another node owns.

For each such room this node subscribes once to ``room.<id>.events``, and one task puts
everything its sockets receive in order: the owner's relayed batches, the welcomes of
sockets joining, and the replies to their ops (each held until the events before it are
out). A gap in the seqs is read from ``room_events``, so each socket sees every seq exactly
once, in order. When the owner goes (no responders, a new epoch, its close), the room's
sockets here close with 1012 and resume with ``since`` wherever the room runs next.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import deque
from typing import Any

import trio

from actors.blocks import BlockIndex
from actors.fanout import Fanout
from actors.ports import Subscriber
from actors.room_actor import CLOSE_RESTART, CLOSES_ALL, CLOSES_USER, MAX_REPLAY
from server.cluster.bus import Bus, BusError, BusMessage, NoResponders, Subscription
from server.cluster.owner import MISSED_BEATS
from server.cluster.wire import events_subject, ops_subject, pack, unpack
from storage.leases import Leases
from storage.rooms import Rooms

log = logging.getLogger("seda.cluster")

RING = 1000
REPLY_HOLD_S = 0.05  # a reply that overtook its events waits this long for them, then reads Postgres
REQUEST_TIMEOUT_S = 5.0


class RoomMoved(Exception):
    """The room's owner is gone or changed: route again (claim it, or find the new owner)."""


class RoomEdge:
    def __init__(self, room_id: str, side: EdgeSide) -> None:
        self.room_id = room_id
        self._side = side
        self.fanout = Fanout(side.coalesce_s, side.blocks)
        self._send, self._recv = trio.open_memory_channel[tuple[Any, ...]](math.inf)
        self.seq: int | None = None  # the last seq put out (to whoever was subscribed then)
        self.epoch = 0
        self._ring: deque[tuple[int, dict[str, Any]]] = deque(maxlen=RING)
        self._held: list[tuple[float, int, Subscriber, dict[str, Any]]] = []
        self.conns: dict[int, tuple[Subscriber, str | None]] = {}  # conn id -> (socket, user id)
        self.joining = 0
        self._scope = trio.CancelScope()
        self._sub: Subscription | None = None
        self.stopped = trio.Event()
        self._failed_beats = 0

    # ---- fed from outside (never blocks) -------------------------------------------------

    def _from_bus(self, message: BusMessage) -> None:
        try:
            self._send.send_nowait(("bus", unpack(message.data)))
        except ValueError:
            log.warning("an undecodable relay for room %s was dropped", self.room_id)

    def welcome(
        self, conn: Subscriber, user_id: str | None, first: list[dict[str, Any]], seq: int, epoch: int
    ) -> None:
        self._send.send_nowait(("join", conn, user_id, first, seq, epoch))

    def reply(self, conn: Subscriber, message: dict[str, Any], seq: int) -> None:
        self._send.send_nowait(("reply", conn, message, seq))

    def remove(self, conn_id: int) -> None:
        self.conns.pop(conn_id, None)  # now: the last one out stops the edge (EdgeSide.detach)
        self._send.send_nowait(("leave", conn_id))

    def close_all(self, code: int, reason: str) -> None:
        self._send.send_nowait(("close", code, reason))

    # ---- the room's task ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with self._scope:
                self._sub = await self._side.bus.subscribe(events_subject(self.room_id), self._from_bus)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self.fanout.run)
                    nursery.start_soon(self._beat)
                    task_status.started()
                    await self._loop()
        finally:
            self.stopped.set()
            self.fanout.flush()
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                if self._sub is not None:
                    await self._sub.unsubscribe()

    def stop(self) -> None:
        self._scope.cancel()

    async def _loop(self) -> None:
        while True:
            item: tuple[Any, ...] | None = None
            deadline = min((h[0] for h in self._held), default=math.inf)
            with trio.move_on_at(deadline):
                item = await self._recv.receive()
            if item is None:
                # A reply's events did not come over the bus in time: they are in Postgres.
                await self._catch_up(max(h[1] for h in self._held))
            else:
                await self._take(item)
            self._release_held()

    async def _take(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "bus":
            await self._relayed(item[1])
        elif kind == "join":
            _, conn, user_id, first, seq, epoch = item
            await self._join(conn, user_id, first, seq, epoch)
        elif kind == "reply":
            _, conn, message, seq = item
            if self.seq is None or seq <= self.seq:
                self.fanout.to_one(conn, message)
            else:
                self._held.append((trio.current_time() + REPLY_HOLD_S, seq, conn, message))
        elif kind == "leave":
            self.fanout.unsubscribe(item[1])
            self.conns.pop(item[1], None)
        elif kind == "close":
            self._close_everyone(item[1], item[2])

    async def _relayed(self, body: dict[str, Any]) -> None:
        epoch = body.get("epoch")
        if not isinstance(epoch, int) or (self.epoch and epoch < self.epoch):
            return  # from an owner that lost the room: nothing of it is shown
        if self.epoch and epoch > self.epoch:
            # A new owner: put out what the old one committed, then resume there.
            await self._catch_up(None)
            self._close_everyone(CLOSE_RESTART, "room moved to another node")
            return
        for wire, seq, exclude in body.get("items", []):
            if seq is None:
                self.fanout.to_all(wire, exclude=exclude)
                continue
            if self.seq is not None and seq <= self.seq:
                continue
            if self.seq is not None and seq > self.seq + 1:
                await self._catch_up(seq - 1)
            self._put_out(wire, seq, exclude)
        if body.get("close") is not None and self.epoch:
            self._close_everyone(CLOSE_RESTART, "room moved to another node")

    def _put_out(self, wire: dict[str, Any], seq: int, exclude: int | None) -> None:
        self.fanout.to_all(wire, exclude=exclude)
        self._ring.append((seq, wire))
        self.seq = seq
        name = str(wire.get("name"))
        code = CLOSES_USER.get(name)
        if code is not None:
            target = wire.get("data", {}).get("user_id")
            for conn, user_id in list(self.conns.values()):
                if user_id is not None and user_id == target:
                    self.fanout.close(conn, code, name.removeprefix("user."))
        closing = CLOSES_ALL.get(name)
        if closing is not None:
            self._close_everyone(*closing)

    async def owner_gone(self) -> bool:
        """Whether the owner this edge follows no longer holds the room (a paused or cut-off node
        keeps its NATS subscriptions, so only the lease tells)."""
        try:
            owner = await self._side.leases.owner(self.room_id)
        except Exception:  # Postgres away too: the missed heartbeats decide
            return False
        return owner is None or (self.epoch != 0 and owner.epoch != self.epoch)

    async def _catch_up(self, upto: int | None) -> None:
        """Put out the committed events after ``self.seq`` (up to ``upto``) from Postgres."""
        if self.seq is None:
            return
        events = await self._side.rooms.events_after(uuid.UUID(self.room_id), self.seq, MAX_REPLAY)
        for event in events:
            if event.seq is None or event.seq <= self.seq or (upto is not None and event.seq > upto):
                continue
            self._put_out(event.wire(), event.seq, None)

    async def _join(
        self, conn: Subscriber, user_id: str | None, first: list[dict[str, Any]], seq: int, epoch: int
    ) -> None:
        self.joining -= 1
        if self.epoch and epoch != self.epoch:
            if epoch < self.epoch:
                conn.close(CLOSE_RESTART, "room moved to another node")
                return
            self._close_everyone(CLOSE_RESTART, "room moved to another node")
            self.seq = None
            self._ring.clear()
        self.epoch = epoch
        extra: list[dict[str, Any]] = []
        if self.seq is None:
            self.seq = seq
        elif seq > self.seq:
            await self._catch_up(seq)
        elif seq < self.seq:
            extra = [wire for s, wire in self._ring if s > seq]
            if len(extra) != self.seq - seq:  # older than the ring holds
                events = await self._side.rooms.events_after(uuid.UUID(self.room_id), seq, self.seq - seq)
                extra = [e.wire() for e in events]
        self.conns[conn.conn_id] = (conn, user_id)
        self.fanout.subscribe(conn, [*first, *extra])

    def _release_held(self) -> None:
        if not self._held or self.seq is None:
            return
        ready = [h for h in self._held if h[1] <= self.seq]
        if ready:
            self._held = [h for h in self._held if h[1] > self.seq]
            for _, _, conn, message in ready:
                self.fanout.to_one(conn, message)

    def _close_everyone(self, code: int, reason: str) -> None:
        for conn, _ in self.conns.values():
            self.fanout.close(conn, code, reason)
        self.conns.clear()

    async def _beat(self) -> None:
        """Tell the owner who is here; if it is gone, the room's sockets here resume elsewhere."""
        side = self._side
        while True:
            await trio.sleep(side.beat_s)
            if not self.conns:
                continue
            body = {"k": "beat", "node": side.node_id, "conns": list(self.conns)}
            try:
                raw = await side.bus.request(ops_subject(self.room_id), pack(body), side.beat_s * 2)
                answer = unpack(raw)
            except NoResponders:
                answer = {"moved": True}
            except (BusError, ValueError):
                self._failed_beats += 1
                if self._failed_beats >= MISSED_BEATS or await self.owner_gone():
                    self.close_all(CLOSE_RESTART, "the room's node cannot be reached")
                continue
            self._failed_beats = 0
            if answer.get("moved"):
                self.close_all(CLOSE_RESTART, "room moved to another node")
                continue
            for conn_id in answer.get("unknown", []):
                found = self.conns.get(conn_id)
                if found is not None:
                    found[0].close(CLOSE_RESTART, "room moved to another node")


class EdgeSide:
    """Every room this node serves as an edge."""

    def __init__(
        self,
        bus: Bus,
        rooms: Rooms,
        leases: Leases,
        node_id: str,
        *,
        beat_s: float,
        coalesce_s: float,
        blocks: BlockIndex | None = None,
    ) -> None:
        self.blocks = blocks
        self.bus = bus
        self.rooms = rooms
        self.leases = leases
        self.node_id = node_id
        self.beat_s = beat_s
        self.coalesce_s = coalesce_s
        self._rooms: dict[str, RoomEdge] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def close_all(self, code: int, reason: str) -> None:
        """This node is stopping: its sockets in rooms owned elsewhere close (and resume elsewhere)."""
        for edge in list(self._rooms.values()):
            edge.close_all(code, reason)

    def sockets(self) -> int:
        return sum(len(edge.conns) for edge in self._rooms.values())

    async def attach(self, room_id: str) -> RoomEdge:
        """The room's edge here, subscribed to its events before any socket joins through it."""
        edge = self._rooms.get(room_id)
        if edge is None or edge.stopped.is_set():
            assert self._nursery is not None
            edge = self._rooms[room_id] = RoomEdge(room_id, self)
            await self._nursery.start(edge.run)
        edge.joining += 1
        return edge

    def join_failed(self, edge: RoomEdge) -> None:
        edge.joining -= 1
        self.detach(edge)

    def detach(self, edge: RoomEdge) -> None:
        """A socket of the room left (or never joined): the last one out stops the edge."""
        if not edge.conns and edge.joining <= 0 and self._rooms.get(edge.room_id) is edge:
            del self._rooms[edge.room_id]
            edge.stop()

    async def request(
        self, room_id: str, body: dict[str, Any], timeout: float = REQUEST_TIMEOUT_S
    ) -> dict[str, Any]:
        """Ask the room's owner; RoomMoved if nobody owns it (or it no longer does)."""
        try:
            answer = unpack(await self.bus.request(ops_subject(room_id), pack(body), timeout))
        except NoResponders:
            raise RoomMoved(room_id) from None
        if answer.get("moved"):
            raise RoomMoved(room_id)
        return answer
