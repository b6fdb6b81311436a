"""Operations over REST (REST.md "Operations (admins)"): the nodes alive, the rooms live on
them and who owns a room, all read from the node and lease tables (``storage/leases.py``)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint
from quart_schema import security_scheme_blueprint, validate_querystring, validate_response

from protocol.errors import NotFound, ServiceUnavailable
from protocol.operations import JournalStatsOut, LiveRoomPage, NodeList, RoomOwnerOut
from server.http.pagination import PageQuery, page
from server.http.params import as_uuid, cursor_key, path_uuid
from server.http.principal import app_context, require_admin
from storage.leases import Leases

blueprint = Blueprint("operations", __name__, url_prefix="/api/v1/admin")
security_scheme_blueprint(blueprint, [{"bearer": []}])

_MAX_INT4 = 2**31 - 1  # room_leases.listeners is an integer column


def _leases() -> Leases:
    leases = app_context().leases  # set while the live side runs
    if leases is None:
        raise ServiceUnavailable("room leases are not running")
    return leases


def _listeners(value: Any) -> int:
    """A cursor's listener count: a whole number a Postgres integer holds (not a bool)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_INT4:
        raise ValueError("not a listener count")
    return value


def _room_key(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a room id")
    return str(as_uuid(value))


@blueprint.get("/nodes")
@validate_response(NodeList, 200)
async def nodes() -> dict[str, Any]:
    """Admins: the nodes alive now, oldest first; one when the server runs as a single process."""
    require_admin()
    return {"items": await _leases().nodes()}


@blueprint.get("/rooms/live")
@validate_querystring(PageQuery)
@validate_response(LiveRoomPage, 200)
async def live_rooms(query_args: PageQuery) -> dict[str, Any]:
    """Admins: the rooms with a live actor on any node, most listeners first (ties by room id),
    as their owners last wrote them with their lease renewals."""
    require_admin()
    after = cursor_key(query_args.cursor, _listeners, _room_key)
    rows = await _leases().live_rooms((after[0], after[1]) if after else None, query_args.limit + 1)
    for row in rows:
        session = row["session"]
        if session is not None:
            row["session"] = {"mode": session.get("mode"), "now_playing": session.get("now_playing")}
    items, next_cursor = page(rows, query_args.limit, lambda r: (r["listeners"], r["room_id"]))
    return {"items": items, "next_cursor": next_cursor}


@blueprint.get("/rooms/<room_id>/owner")
@validate_response(RoomOwnerOut, 200)
async def room_owner(room_id: str) -> dict[str, Any]:
    """Admins: the node holding the room's live lease, and its epoch; 404 when none does."""
    require_admin()
    owner = await _leases().owner(str(path_uuid(room_id, "room_id", "room")))
    if owner is None:
        raise NotFound("no node owns this room now", field="room_id")
    return owner.to_dict()


@blueprint.get("/journal")
@validate_response(JournalStatsOut, 200)
async def journal() -> dict[str, Any]:
    """Admins: the answering node's journal writer, its commit latency and batch sizes."""
    require_admin()
    ctx = app_context()
    return {
        "node_id": ctx.leases.node_id if ctx.leases is not None else None,
        **ctx.metrics.journal.summary(),
    }
