"""REST calls that change a live room: sent as ops to the room's actor, answered after commit."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel

from actors.commands import Op
from actors.room_actor import Reply, Request, RoomActor
from actors.room_state import Connection
from protocol.errors import NotFound, ServiceUnavailable
from server.auth import Principal
from server.http.principal import app_context, require_principal
from server.http.rooms_access import visible_room
from server.live.prepare import prepare


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


async def run_op(
    room_id: uuid.UUID, op: str, data: BaseModel, principal: Principal | None = None
) -> tuple[RoomActor, dict[str, Any]]:
    """Send ``op`` to the room's actor as the caller (or ``principal``); its reply data once committed."""
    principal = principal or require_principal()
    room = await visible_room(room_id, principal)
    caller = await _caller(room, principal)
    actor = await live_actor(room["id"])
    new_id, context = await prepare(app_context().rooms, actor, room_id, op, data)
    reply = Reply()
    command = Op(0, op, data, new_id, context, caller=caller)
    await actor.send(Request(command, reply=reply, rate_key=caller.user_id))
    return actor, await reply.wait()
