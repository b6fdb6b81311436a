"""Rooms over REST: create, read, and chat history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from quart import Blueprint, Response
from quart_schema import validate_querystring, validate_request, validate_response

from protocol.errors import BadRequest, NotFound
from protocol.ops import NoData
from protocol.rooms import CreateRoomBody, MessagePage, RoomOut, UpdateRoomBody
from server.http.pagination import PageQuery, decode_cursor, page
from server.http.principal import app_context, optional_principal, require_principal
from server.http.room_ops import run_op
from server.http.rooms_access import visible_room

blueprint = Blueprint("rooms", __name__, url_prefix="/api/v1/rooms")


def _room_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("no such room", field="room_id") from None


def _with_listeners(room: dict[str, Any]) -> dict[str, Any]:
    registry = app_context().registry
    return {**room, "listeners": registry.listeners(room["id"]) if registry is not None else 0}


@blueprint.post("")
@validate_request(CreateRoomBody)
@validate_response(RoomOut, 201)
async def create_room(data: CreateRoomBody) -> tuple[dict[str, Any], int]:
    principal = require_principal()
    room = await app_context().rooms.create(
        principal.user_id,
        name=data.name.strip(),
        type=data.type,
        visibility=data.resolved_visibility(),
        slug=data.slug,
        description=data.description,
        genres=data.genres,
        tags=data.tags,
    )
    return _with_listeners(room), 201


@blueprint.get("/<room_id>")
@validate_response(RoomOut, 200)
async def get_room(room_id: str) -> dict[str, Any]:
    return _with_listeners(await visible_room(_room_id(room_id), optional_principal()))


@blueprint.patch("/<room_id>")
@validate_request(UpdateRoomBody)
@validate_response(RoomOut, 200)
async def update_room(room_id: str, data: UpdateRoomBody) -> dict[str, Any]:
    """The owner changes the room's settings; every socket in it sees ``room.updated``."""
    rid = _room_id(room_id)
    actor, _ = await run_op(rid, "room.update", data)
    return _with_listeners(actor.state.room_wire())


@blueprint.delete("/<room_id>")
async def delete_room(room_id: str) -> Response:
    """The owner deletes the room: a live session ends, and its sockets close with 4004."""
    await run_op(_room_id(room_id), "room.delete", NoData())
    return Response(status=204)


@blueprint.get("/<room_id>/messages")
@validate_querystring(PageQuery)
@validate_response(MessagePage, 200)
async def room_messages(room_id: str, query_args: PageQuery) -> dict[str, Any]:
    """Chat history, newest first, with replies (``parent_id``) and reaction counts."""
    rid = _room_id(room_id)
    await visible_room(rid, optional_principal())
    key = decode_cursor(query_args.cursor, 2)
    before = None
    if key is not None:
        try:
            before = (datetime.fromtimestamp(int(key[0]) / 1_000_000, tz=UTC), uuid.UUID(str(key[1])))
        except (ValueError, TypeError, OverflowError):
            raise BadRequest("cursor is not one this API issued", field="cursor") from None
    rows = await app_context().rooms.messages_page(rid, query_args.limit, before)
    items, next_cursor = page(rows, query_args.limit, lambda m: (m["at_us"], m["id"]))
    return {"items": [_message_out(m) for m in items], "next_cursor": next_cursor}


def _message_out(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": m["id"],
        "user_id": m["user_id"],
        "username": m["username"],
        "text": m["text"],
        "reply_to": m["reply_to"],
        "parent_id": m["reply_to"],
        "track": m["track"],
        "mentions": m["mentions"],
        "reactions": {emoji: len(users) for emoji, users in m["reactions"].items() if users},
        "at": m["at"],
        "seq": m["seq"],
    }
