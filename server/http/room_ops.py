"""REST calls that change a live room: sent as ops to the room's actor, answered after commit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from actors.commands import Op, Tick
from actors.room_actor import Reply, Request, RoomActor
from actors.room_state import Connection, RoomState
from protocol.errors import NotFound, ServiceUnavailable
from server.auth import Principal
from server.http.principal import app_context, require_principal
from server.http.rooms_access import visible_room
from server.live.prepare import prepare

T = TypeVar("T")


async def _caller(room: dict[str, Any], principal: Principal) -> Connection:
    """The REST caller as the room sees them; joining a non-private room as a socket would."""
    ctx = app_context()
    user = await ctx.users.get(principal.user_id)
    if user is None:
        raise NotFound("no such user")
    role = await ctx.rooms.enter(room, user.id, is_admin=principal.is_admin)
    is_artist = principal.role == "artist" or user.role == "artist"
    return Connection(str(user.id), user.username, role, principal.is_admin, is_artist)


async def live_actor(room_id: str) -> RoomActor:
    registry = app_context().registry
    actor = await registry.get(room_id) if registry is not None else None
    if actor is None:
        raise ServiceUnavailable("the live side is not running")
    return actor


async def _send(
    room_id: uuid.UUID,
    op: str,
    data: BaseModel,
    principal: Principal | None,
    view: Callable[[RoomState], Any] | None,
) -> Reply:
    principal = principal or require_principal()
    room = await visible_room(room_id, principal)
    caller = await _caller(room, principal)
    actor = await live_actor(room["id"])
    new_id, context = await prepare(app_context().rooms, actor, room_id, op, data)
    reply = Reply(view)
    command = Op(0, op, data, new_id, context, caller=caller)
    await actor.send(Request(command, reply=reply, rate_key=caller.user_id))
    await reply.wait()
    return reply


async def run_op(
    room_id: uuid.UUID, op: str, data: BaseModel, principal: Principal | None = None
) -> dict[str, Any]:
    """Send ``op`` to the room's actor as the caller (or ``principal``); its reply data once committed."""
    return await (await _send(room_id, op, data, principal, None)).wait()


async def run_op_showing(
    room_id: uuid.UUID, op: str, data: BaseModel, view: Callable[[RoomState], T]
) -> tuple[dict[str, Any], T]:
    """``run_op``, and what ``view`` took of the room right after the op's own events.

    A response shows that, never the actor's state after the reply: the state runs ahead of the
    journal (what later requests did, not yet committed), so it could show what a crash undoes.
    """
    reply = await _send(room_id, op, data, None, view)
    seen: T = reply.seen
    return await reply.wait(), seen


async def read_committed(actor: RoomActor, view: Callable[[RoomState], T]) -> T:
    """What ``view`` takes of the room once everything the actor decided before it has committed.

    The read goes through the actor's inbox as a clock tick: it is taken after the requests ahead
    of it and handed over after their commits, so a read never shows what a crash could undo.
    """
    reply = Reply(view)
    await actor.send(Request(Tick(), reply=reply))
    await reply.wait()
    seen: T = reply.seen
    return seen
