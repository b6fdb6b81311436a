"""The moderation log over REST: all of it for admins, a room's own for its owner and moderators."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field
from quart import Blueprint
from quart_schema import security_scheme_blueprint, validate_querystring, validate_response

from protocol.moderation import ModLogPage
from server.http.pagination import PageQuery, keyed_page
from server.http.params import cursor_key, path_uuid, row_id
from server.http.principal import app_context, require_admin, require_principal
from server.http.rooms_access import require_room_mod

blueprint = Blueprint("moderation", __name__, url_prefix="/api/v1")
security_scheme_blueprint(blueprint, [{"bearer": []}])


class LogQuery(PageQuery):
    room_id: uuid.UUID | None = None
    actor_id: uuid.UUID | None = None
    action: str | None = Field(default=None, min_length=1, max_length=40, pattern=r"^[a-z_.]+$")


def _before(cursor: str | None) -> int | None:
    key = cursor_key(cursor, row_id)
    return None if key is None else key[0]


@blueprint.get("/admin/moderation/log")
@validate_querystring(LogQuery)
@validate_response(ModLogPage, 200)
async def admin_log(query_args: LogQuery) -> dict[str, Any]:
    """Admins: every moderation act, newest first (``room_id``, ``actor_id``, ``action`` narrow it)."""
    require_admin()
    rows = await app_context().moderation.page(
        room_id=query_args.room_id,
        actor_id=query_args.actor_id,
        action=query_args.action,
        limit=query_args.limit,
        before=_before(query_args.cursor),
    )
    return keyed_page(rows, query_args.limit)


@blueprint.get("/rooms/<room_id>/moderation/log")
@validate_querystring(PageQuery)
@validate_response(ModLogPage, 200)
async def room_log(room_id: str, query_args: PageQuery) -> dict[str, Any]:
    """The room's owner and moderators: the room's moderation acts, newest first."""
    rid = path_uuid(room_id, "room_id", "room")
    await require_room_mod(rid, require_principal())
    rows = await app_context().moderation.page(
        room_id=rid, actor_id=None, action=None, limit=query_args.limit, before=_before(query_args.cursor)
    )
    return keyed_page(rows, query_args.limit)
