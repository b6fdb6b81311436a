"""REST calls that change or read a live room: sent as ops to the room's actor (here, or on the
node that owns the room), answered after commit."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import trio
from pydantic import BaseModel

from actors.commands import Op, Tick
from actors.room_actor import Reply, Request, RoomActor
from actors.room_state import Connection
from protocol.errors import NotFound, OwnedElsewhere, ServiceUnavailable
from server.auth import Principal
from server.cluster.edge import RoomMoved
from server.cluster.service import RemoteRoom
from server.http.principal import app_context, require_principal
from server.http.rooms_access import visible_room
from server.live.prepare import prepare
from server.live.room_views import View

T = TypeVar("T")

LiveRoom = RoomActor | RemoteRoom
MOVED_RETRY_S = 0.2


async def _caller(room: dict[str, Any], principal: Principal) -> Connection:
    """The REST caller as the room sees them; joining a non-private room as a socket would."""
    ctx = app_context()
    user = await ctx.users.get(principal.user_id)
    if user is None:
        raise NotFound("no such user")
    role = await ctx.rooms.enter(room, user.id, is_admin=principal.is_admin)
    is_artist = principal.role == "artist" or user.role == "artist"
    return Connection(str(user.id), user.username, role, principal.is_admin, is_artist)


async def live_actor(room_id: str) -> LiveRoom:
    """The live room: its actor if it runs here (started if nobody runs it), else its owner."""
    ctx = app_context()
    registry = ctx.registry
    try:
        actor = await registry.get(room_id) if registry is not None else None
    except OwnedElsewhere:
        if ctx.cluster is None:
            raise ServiceUnavailable("the live side is not running") from None
        return RemoteRoom(ctx.cluster.edges, room_id)
    if actor is None:
        raise ServiceUnavailable("the live side is not running")
    return actor


async def _routed(room_id: str, ask: Any) -> Any:
    """``ask(room)`` on the live room; if its owner went meanwhile, found again (the lease runs
    out within its TTL, then this node or another claims it)."""
    settings = app_context().settings
    deadline = trio.current_time() + settings.lease_ttl_s + 2
    while True:
        room = await live_actor(room_id)
        try:
            return await ask(room)
        except RoomMoved:
            if trio.current_time() >= deadline:
                raise ServiceUnavailable("the room is moving to another node; try again") from None
            await trio.sleep(MOVED_RETRY_S)


async def _send(
    room_id: uuid.UUID, op: str, data: BaseModel, principal: Principal | None, view: View[Any] | None
) -> tuple[dict[str, Any], Any]:
    principal = principal or require_principal()
    room = await visible_room(room_id, principal)
    caller = await _caller(room, principal)

    async def ask(live: LiveRoom) -> tuple[dict[str, Any], Any]:
        if isinstance(live, RemoteRoom):
            return await live.run_op(op, data, caller, view)
        new_id, context = await prepare(app_context().rooms, live, room_id, op, data)
        reply = Reply(view)
        command = Op(0, op, data, new_id, context, caller=caller)
        await live.send(Request(command, reply=reply, rate_key=caller.user_id))
        answer = await reply.wait()
        return answer, reply.seen

    answer, seen = await _routed(room["id"], ask)
    return answer, seen


async def run_op(
    room_id: uuid.UUID, op: str, data: BaseModel, principal: Principal | None = None
) -> dict[str, Any]:
    """Send ``op`` to the room's actor as the caller (or ``principal``); its reply data once committed."""
    answer, _ = await _send(room_id, op, data, principal, None)
    return answer


async def run_op_showing(
    room_id: uuid.UUID, op: str, data: BaseModel, view: View[T]
) -> tuple[dict[str, Any], T]:
    """``run_op``, and what ``view`` took of the room right after the op's own events.

    A response shows that, never the actor's state after the reply: the state runs ahead of the
    journal (what later requests did, not yet committed), so it could show what a crash undoes.
    """
    answer, seen = await _send(room_id, op, data, None, view)
    shown: T = seen
    return answer, shown


async def read_committed(room: LiveRoom | str, view: View[T]) -> T:
    """What ``view`` takes of the room once everything the actor decided before it has committed.

    The read goes through the actor's inbox as a clock tick: it is taken after the requests ahead
    of it and handed over after their commits, so a read never shows what a crash could undo.
    """

    async def ask(live: LiveRoom) -> Any:
        if isinstance(live, RemoteRoom):
            return await live.read(view)
        reply = Reply(view)
        await live.send(Request(Tick(), reply=reply))
        await reply.wait()
        return reply.seen

    if isinstance(room, str):
        seen: T = await _routed(room, ask)
        return seen
    seen = await ask(room)
    return seen
