"""The owner's side of the bus: requests on ``room.<id>.ops`` for each room this node runs,
and each committed batch relayed once on ``room.<id>.events``.

Sockets on other nodes (edges) join, send ops, leave and heartbeat through requests; REST
calls made on other nodes run here too. A silent edge's members leave after three missed
heartbeats.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import trio
from pydantic import BaseModel, ValidationError

from actors.commands import Join, Leave, Op, Tick
from actors.registry import RoomRegistry
from actors.room_actor import RemoteJoin, Reply, Request, RoomActor
from actors.room_state import Connection
from protocol.dj import QueueMoveData
from protocol.errors import BadRequest, Internal, ProtocolError
from protocol.ops import NoData, parse_op_data
from protocol.rooms import OwnerChange, RoleChange, UpdateRoomBody
from server.cluster.bus import Bus, BusMessage, Subscription
from server.cluster.wire import events_subject, ops_subject, pack, unpack
from server.live.admission import admit
from server.live.prepare import prepare, stored_for_resume
from server.live.room_views import View
from storage.rooms import Rooms
from storage.sanctions import Sanctions

log = logging.getLogger("seda.cluster")

# Ops only REST calls make (their bodies are REST models, not PROTOCOL.md op data).
REST_ONLY_OPS: dict[str, type[BaseModel]] = {
    "member.role": RoleChange,
    "room.update": UpdateRoomBody,
    "room.transfer": OwnerChange,
    "room.delete": NoData,
    "queue.move": QueueMoveData,
}

MISSED_BEATS = 3
JOIN_TIMEOUT_S = 10.0
RECENT_OPS = 10_000  # op ids answered lately: a retried op is answered again, not applied again


@dataclass
class _Edge:
    conns: set[int] = field(default_factory=set)
    last_beat: float = 0.0


def _int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"{name} must be an integer", field=name)
    return value


def _map(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be an object", field=name)
    return value


def _opt_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{name} must be a string", field=name)
    return value


class OwnerSide:
    def __init__(self, bus: Bus, rooms: Rooms, sanctions: Sanctions, beat_s: float) -> None:
        self._bus = bus
        self._rooms = rooms
        self._sanctions = sanctions
        self._beat_s = beat_s
        self.registry: RoomRegistry | None = None
        self._edges: dict[str, dict[str, _Edge]] = {}
        self._send, self._inbox = trio.open_memory_channel[tuple[str, BusMessage]](4096)
        self._nursery: trio.Nursery | None = None
        self._answered: OrderedDict[str, dict[str, Any]] = OrderedDict()

    # ---- hooks for the registry and the actors ------------------------------------------

    def on_actor(self, actor: RoomActor) -> None:
        """A room started here: take its requests until its actor finishes."""
        assert self._nursery is not None
        self._nursery.start_soon(self._serve_room, actor)

    def relay(
        self,
        room_id: str,
        epoch: int,
        items: list[tuple[dict[str, Any], int | None, int | None]],
        close: int | None,
    ) -> None:
        body: dict[str, Any] = {"epoch": epoch, "items": [list(item) for item in items]}
        if close is not None:
            body["close"] = close
        self._bus.publish(events_subject(room_id), pack(body))

    # ---- running -------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._sweep)
            task_status.started()
            async for room_id, message in self._inbox:
                nursery.start_soon(self._handle, room_id, message)

    async def _serve_room(self, actor: RoomActor) -> None:
        room_id = actor.room_id

        def deliver(message: BusMessage) -> None:
            try:
                self._send.send_nowait((room_id, message))
            except trio.WouldBlock:  # overloaded: the requester times out and retries
                log.warning("owner inbox full; a request for room %s was dropped", room_id)

        sub: Subscription | None = None
        try:
            sub = await self._bus.subscribe(ops_subject(room_id), deliver)
            await actor.finished.wait()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                if sub is not None:
                    await sub.unsubscribe()
            self._edges.pop(room_id, None)

    async def _sweep(self) -> None:
        """Members of an edge that missed three heartbeats leave their rooms."""
        while True:
            await trio.sleep(self._beat_s)
            now = trio.current_time()
            for room_id, edges in list(self._edges.items()):
                for node_id, edge in list(edges.items()):
                    if now - edge.last_beat <= MISSED_BEATS * self._beat_s:
                        continue
                    del edges[node_id]
                    actor = self.registry.running(room_id) if self.registry is not None else None
                    log.warning(
                        "edge %s went silent: %d socket(s) leave room %s", node_id, len(edge.conns), room_id
                    )
                    for conn_id in edge.conns:
                        if actor is not None:
                            try:
                                await actor.send(Request(Leave(conn_id)))
                            except (trio.BrokenResourceError, trio.ClosedResourceError):
                                break

    async def _handle(self, room_id: str, message: BusMessage) -> None:
        out: dict[str, Any]
        actor = self.registry.running(room_id) if self.registry is not None else None
        try:
            body = unpack(message.data)
            op_id = _opt_str(body, "id")
            if op_id is not None and op_id in self._answered:
                out = self._answered[op_id]
            elif actor is None:
                out = {"moved": True}  # not ours (any more): the sender routes again
            else:
                out = await self._answer(actor, body)
                if op_id is not None:
                    self._answered[op_id] = out
                    while len(self._answered) > RECENT_OPS:
                        self._answered.popitem(last=False)
        except ValueError as exc:
            out = {"ok": False, "error": BadRequest(str(exc), field="message").to_body(), "status": 400}
        except ProtocolError as error:
            out = {"ok": False, "error": error.to_body(), "status": error.http_status}
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            out = {"moved": True}
        except Exception:
            log.exception("a request for room %s failed", room_id)
            out = {"ok": False, "error": Internal("internal error").to_body(), "status": 500}
        if message.reply is not None:
            self._bus.publish(message.reply, pack(out))

    async def _answer(self, actor: RoomActor, body: dict[str, Any]) -> dict[str, Any]:
        kind = body.get("k")
        if kind == "op":
            return await self._op(actor, body)
        if kind == "join":
            return await self._join(actor, body)
        if kind == "leave":
            conn_id = _int(body, "conn")
            edge = self._edges.get(actor.room_id, {}).get(str(body.get("node")))
            if edge is not None:
                edge.conns.discard(conn_id)
            await actor.send(Request(Leave(conn_id)))
            return {"ok": True}
        if kind == "beat":
            return self._beat(actor, body)
        if kind == "rest":
            return await self._rest(actor, body)
        raise BadRequest("unknown request kind", field="k")

    def _edge(self, room_id: str, node: object) -> _Edge:
        if not isinstance(node, str):
            raise BadRequest("node must be a string", field="node")
        edge = self._edges.setdefault(room_id, {}).setdefault(node, _Edge())
        edge.last_beat = trio.current_time()
        return edge

    async def _join(self, actor: RoomActor, body: dict[str, Any]) -> dict[str, Any]:
        conn_id = _int(body, "conn")
        edge = self._edge(actor.room_id, body.get("node"))
        since = body.get("since")
        if since is not None and (not isinstance(since, int) or since < 0):
            raise BadRequest("since must be a non-negative integer", field="since")
        stored = await stored_for_resume(self._rooms, actor, since)
        muted = body.get("muted")
        join = Join(
            conn_id,
            _opt_str(body, "user_id"),
            _opt_str(body, "username"),
            str(body.get("role", "guest")),
            bool(body.get("is_admin")),
            bool(body.get("is_artist")),
            muted if isinstance(muted, int) else None,
        )
        joining = RemoteJoin(conn_id)
        edge.conns.add(conn_id)
        await actor.send(Request(join, conn=joining, since=since, stored=stored))
        with trio.move_on_after(JOIN_TIMEOUT_S):
            await joining.done.wait()
        if joining.first is None:
            edge.conns.discard(conn_id)
            code, reason = joining.closed or (1011, "room unavailable")
            return {"ok": False, "close": [code, reason]}
        return {"ok": True, "first": joining.first, "seq": joining.seq, "epoch": actor.epoch}

    def _beat(self, actor: RoomActor, body: dict[str, Any]) -> dict[str, Any]:
        edge = self._edge(actor.room_id, body.get("node"))
        conns = body.get("conns")
        if not isinstance(conns, list):
            raise BadRequest("conns must be a list", field="conns")
        members = actor.state.connections
        unknown = [c for c in conns if c not in members]
        edge.conns = {c for c in conns if c in members}
        return {"ok": True, "epoch": actor.epoch, "unknown": unknown}

    async def _op(self, actor: RoomActor, body: dict[str, Any]) -> dict[str, Any]:
        conn_id = _int(body, "conn")
        op = body.get("op")
        if not isinstance(op, str):
            raise BadRequest("op must be a string", field="op")
        data = parse_op_data(op, _map(body, "data"))
        admit(op, actor)  # a socket on another node: shed here, where the room's queue is
        new_id, context = "", dict[str, Any]()
        if op != "ping":
            new_id, context = await prepare(self._rooms, actor, uuid.UUID(actor.room_id), op, data)
        user_id = _opt_str(body, "user_id")
        if op == "chat.send" and user_id is not None:
            site_mute = self._sanctions.muted_until_ms(user_id)
            if site_mute is not None:
                context["site_muted_until"] = site_mute
        reply = Reply()
        command = Op(conn_id, op, data, new_id, context)
        await actor.send(Request(command, reply=reply, rate_key=_opt_str(body, "rate")))
        try:
            return {"ok": True, "data": await reply.wait(), "seq": reply.seq}
        except ProtocolError as error:
            return {"ok": False, "error": error.to_body(), "seq": reply.seq, "status": error.http_status}

    async def _rest(self, actor: RoomActor, body: dict[str, Any]) -> dict[str, Any]:
        view = View.parse(body["view"]) if body.get("view") is not None else None
        op = body.get("op")
        if op is None:
            reply = Reply(view)
            await actor.send(Request(Tick(), reply=reply))
            await reply.wait()
            return {"ok": True, "data": {}, "seen": reply.seen}
        if not isinstance(op, str):
            raise BadRequest("op must be a string", field="op")
        caller_fields = body.get("caller")
        if not isinstance(caller_fields, list) or len(caller_fields) != 5:
            raise BadRequest("caller must be a list of five", field="caller")
        user_id, username, role, is_admin, is_artist = caller_fields
        caller = Connection(str(user_id), str(username), str(role), bool(is_admin), bool(is_artist))
        rest_only = REST_ONLY_OPS.get(op)
        if rest_only is not None:
            try:
                data: BaseModel = rest_only.model_validate(_map(body, "data"))
            except ValidationError as exc:
                raise BadRequest(f"{op}: {exc.errors()[0]['msg']}", field="data") from None
        else:
            data = parse_op_data(op, _map(body, "data"))
        new_id, context = await prepare(self._rooms, actor, uuid.UUID(actor.room_id), op, data)
        reply = Reply(view)
        await actor.send(
            Request(Op(0, op, data, new_id, context, caller=caller), reply=reply, rate_key=caller.user_id)
        )
        answer = await reply.wait()
        return {"ok": True, "data": answer, "seen": reply.seen}
