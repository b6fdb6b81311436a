"""Who may see a room over REST."""

from __future__ import annotations

import uuid
from typing import Any

from protocol.errors import Forbidden, NotFound
from server.auth import Principal
from server.http.principal import app_context
from storage.rooms import is_private


async def visible_room(room_id: uuid.UUID, principal: Principal | None) -> dict[str, Any]:
    """The room if the caller may see it; private rooms are invisible (404) to non-members."""
    ctx = app_context()
    room = await ctx.rooms.get(room_id)
    if room is None:
        raise NotFound("no such room", field="room_id")
    if is_private(room):
        if principal is None:
            raise NotFound("no such room", field="room_id")
        if not principal.is_admin and await ctx.rooms.role_of(room_id, principal.user_id) is None:
            raise NotFound("no such room", field="room_id")
    return room


async def require_room_mod(room_id: uuid.UUID, principal: Principal) -> dict[str, Any]:
    """The room, if the caller is its owner or a moderator (or a site admin); others 403."""
    room = await visible_room(room_id, principal)
    role = await app_context().rooms.role_of(room_id, principal.user_id)
    if role not in ("owner", "moderator") and not principal.is_admin:
        raise Forbidden("only the room's owner or moderators may do that")
    return room
