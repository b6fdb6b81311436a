"""A room's history of played tracks over REST (REST.md "Room history"): whoever may read the
room's chat history may read it."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field
from quart import Blueprint
from quart_schema import security_scheme, validate_querystring, validate_response

from protocol.errors import BadRequest, NotFound
from protocol.room_history import HistoryPage
from server.http.pagination import PageQuery, keyed_page
from server.http.params import at_micros, cursor_key, path_uuid
from server.http.principal import app_context, optional_principal
from server.http.rooms_access import may_see, visible_room
from storage.room_history import history_page

blueprint = Blueprint("room_history", __name__, url_prefix="/api/v1/rooms")


class HistoryQuery(PageQuery):
    dj_id: uuid.UUID | None = Field(default=None, description="Only the tracks this DJ played")


def _item_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("not an item id")
    return value


@blueprint.get("/<room_id>/history")
@security_scheme([{"bearer": []}, {}])  # a private room's history shows only to its members
@validate_querystring(HistoryQuery)
@validate_response(HistoryPage, 200)
async def room_history(room_id: str, query_args: HistoryQuery) -> dict[str, Any]:
    """The tracks played in the room, newest first (``dj_id``: one DJ's), each with its DJ, start,
    end, why it ended and its final votes. A track still playing is not in it yet."""
    rid = path_uuid(room_id, "room_id", "room")
    principal = optional_principal()
    try:
        before = cursor_key(query_args.cursor, at_micros, _item_id)
    except BadRequest:
        await visible_room(rid, principal)  # a room the caller may not see is a 404 first
        raise
    rows = await history_page(
        app_context().db,
        rid,
        principal.user_id if principal is not None else None,
        lambda room, role: may_see(room, role, principal),
        query_args.dj_id,
        query_args.limit,
        (before[0], before[1]) if before else None,
    )
    if rows is None:
        raise NotFound("no such room", field="room_id")
    return keyed_page(rows, query_args.limit)
