"""Who may see a room over REST."""

from __future__ import annotations

import uuid
from typing import Any

from protocol.errors import Forbidden, NotFound
from server.auth import Principal
from server.http.principal import app_context
from storage.rooms import is_private


def may_see(room: dict[str, Any], role: str | None, principal: Principal | None) -> bool:
    """Whether the caller may see the room, given their ``role`` in it (None: not a member)."""
    if not is_private(room):
        return True
    return principal is not None and (principal.is_admin or role is not None)


async def visible_room(room_id: uuid.UUID, principal: Principal | None) -> dict[str, Any]:
    """The room if the caller may see it; private rooms are invisible (404) to non-members."""
    found = await app_context().rooms.get_for(room_id, principal.user_id if principal is not None else None)
    if found is None or not may_see(*found, principal):
        raise NotFound("no such room", field="room_id")
    return found[0]


async def require_room_mod(room_id: uuid.UUID, principal: Principal) -> dict[str, Any]:
    """The room, if the caller is its owner or a moderator (or a site admin); others 403."""
    room = await visible_room(room_id, principal)
    role = await app_context().rooms.role_of(room_id, principal.user_id)
    if role not in ("owner", "moderator") and not principal.is_admin:
        raise Forbidden("only the room's owner or moderators may do that")
    return room
