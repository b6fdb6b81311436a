"""Rooms over REST: create, read, and chat history."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from quart import Blueprint, Response
from quart_schema import (
    document_request,
    security_scheme,
    validate_querystring,
    validate_request,
    validate_response,
)

from protocol.errors import BadRequest, Conflict, Forbidden, NotFound
from protocol.ops import NoData, PinTrackData
from protocol.rooms import (
    CreateRoomBody,
    DenyBody,
    DiscoverQuery,
    InviteBody,
    InviteOut,
    JoinRequestBody,
    JoinRequestOut,
    JoinRequestPage,
    MemberPage,
    MemberRoleBody,
    MemberRoleOut,
    MembershipOut,
    MessagePage,
    OwnerChange,
    RoleChange,
    RoomOut,
    RoomPage,
    TransferBody,
    TrendingPage,
    UpdateRoomBody,
)
from server.http.errors import NoContent, documents, no_content
from server.http.notifications import tell
from server.http.pagination import LimitQuery, PageQuery, keyed_page, page
from server.http.params import cursor_key, optional_body, path_uuid, row_id, time_id_after
from server.http.principal import app_context, optional_principal, require_principal
from server.http.room_ops import run_op, run_op_showing
from server.http.rooms_access import may_see, require_room_mod, visible_room
from server.live.room_views import View
from storage.rooms import is_private

blueprint = Blueprint("rooms", __name__, url_prefix="/api/v1/rooms")
# In the OpenAPI: a bearer token is required, or optional (a private room shows only to its members).
needs_token = security_scheme([{"bearer": []}])
token_optional = security_scheme([{"bearer": []}, {}])
TRENDING_WINDOW = timedelta(hours=24)


def _room_id(raw: str) -> uuid.UUID:
    return path_uuid(raw, "room_id", "room")


async def listening() -> dict[str, int]:
    """Listeners present now per live room. Alone: this node's actors (exact). With other nodes:
    what each room's owner last wrote with its lease renewal (at most TTL/3 old), with the rooms
    running here taken exactly."""
    ctx = app_context()
    registry = ctx.registry
    local = registry.busiest(None) if registry is not None else {}
    if ctx.settings.nats_url is None or ctx.leases is None:
        return local
    return {**await ctx.leases.listeners(), **local}


def _with_listeners(room: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    return {**room, "listeners": counts.get(room["id"], 0)}


_room_now: View[dict[str, Any]] = View("room")


@blueprint.post("")
@needs_token
@validate_request(CreateRoomBody)
@validate_response(RoomOut, 201)
async def create_room(data: CreateRoomBody) -> tuple[dict[str, Any], int]:
    """Create a room; the caller owns it."""
    principal = require_principal()
    room = await app_context().rooms.create(
        principal.user_id,
        name=data.name,
        type=data.type,
        visibility=data.resolved_visibility(),
        slug=data.slug,
        description=data.description,
        genres=data.genres,
        tags=data.tags,
    )
    return _with_listeners(room, await listening()), 201


async def _room_page(rows: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    result = keyed_page(rows, limit)
    counts = await listening()
    result["items"] = [_with_listeners(r, counts) for r in result["items"]]
    return result


@blueprint.get("/me")
@needs_token
@validate_querystring(PageQuery)
@validate_response(RoomPage, 200)
async def my_rooms(query_args: PageQuery) -> dict[str, Any]:
    """Rooms the caller is a member of (any visibility), newest first."""
    principal = require_principal()
    rows = await app_context().rooms.listed_page(
        limit=query_args.limit, after=time_id_after(query_args.cursor), member=principal.user_id
    )
    return await _room_page(rows, query_args.limit)


def _also_at(rule: str, endpoint: str, view: Callable[..., Any], method: str) -> None:
    """Serve ``view`` at a second path too (the seed's paths are the first; these came before).

    Its own endpoint name gives it its own operationId in the OpenAPI.
    """
    blueprint.add_url_rule(rule, endpoint, view, methods=[method])


_also_at("/mine", "my_rooms_mine", my_rooms, "GET")


@blueprint.get("/discover")
@validate_querystring(DiscoverQuery)
@validate_response(RoomPage, 200)
async def discover(query_args: DiscoverQuery) -> dict[str, Any]:
    """Public, listed rooms by name, tag or genre (``q``), ``type``, ``genre``, ``tag``; newest first."""
    rows = await app_context().rooms.listed_page(
        limit=query_args.limit,
        after=time_id_after(query_args.cursor),
        q=query_args.q,
        room_type=query_args.type,
        genre=query_args.genre,
        tag=query_args.tag,
    )
    return await _room_page(rows, query_args.limit)


@blueprint.get("/trending")
@validate_querystring(LimitQuery)
@validate_response(TrendingPage, 200)
async def trending(query_args: LimitQuery) -> dict[str, Any]:
    """Public listed rooms ranked by listeners present now (x10) plus chat in the last 24 h.

    A ranking of this moment: one page, no cursor.
    """
    ctx = app_context()
    candidates = max(query_args.limit * 5, 100)
    counts = await listening()
    present = dict(sorted(counts.items(), key=lambda kv: -kv[1])[:candidates])
    activity = await ctx.rooms.recent_activity(datetime.now(UTC) - TRENDING_WINDOW, candidates)
    scores = {rid: 10 * present.get(rid, 0) + activity.get(rid, 0) for rid in {*present, *activity}}
    rooms = await ctx.rooms.public_rooms(list(scores))
    rooms.sort(key=lambda r: (-scores[r["id"]], r["created_at"], r["id"]))
    items = [_with_listeners(r, counts) | {"score": scores[r["id"]]} for r in rooms[: query_args.limit]]
    return {"items": items, "next_cursor": None}


@blueprint.post("/<room_id>/pin-track")
@needs_token
@validate_request(PinTrackData)
@validate_response(RoomOut, 200)
async def pin_track(room_id: str, data: PinTrackData) -> dict[str, Any]:
    """A moderator pins a track (or ``null`` to unpin); sockets see ``room.updated``."""
    _, room = await run_op_showing(_room_id(room_id), "room.pin_track", data, _room_now)
    return room


@blueprint.post("/<room_id>/join")
@needs_token
@validate_response(MembershipOut, 200)
async def join(room_id: str) -> dict[str, Any]:
    """Join a public, genre or artist room (private rooms take an invite or an approved request).

    The one entry rule sockets use too: a banned user is refused, members included.
    """
    principal = require_principal()
    room = await visible_room(_room_id(room_id), principal)
    # Not is_admin: a site admin may look into a private room, but joining one takes an invite.
    role = await app_context().rooms.enter(room, principal.user_id, is_admin=False)
    return {"room_id": room["id"], "role": role}


@blueprint.post("/<room_id>/leave")
@needs_token
@documents(NoContent, 204)
async def leave(room_id: str) -> Response:
    """Leave the room (the owner cannot: transfer it or delete it first)."""
    principal = require_principal()
    rid = _room_id(room_id)
    room = await visible_room(rid, principal)
    if room["owner_id"] == str(principal.user_id):
        raise Conflict("the owner cannot leave; transfer ownership or delete the room")
    if not await app_context().rooms.leave(rid, principal.user_id):
        raise NotFound("you are not a member of this room")
    return no_content()


@blueprint.get("/<room_id>/members")
@token_optional
@validate_querystring(PageQuery)
@validate_response(MemberPage, 200)
async def members(room_id: str, query_args: PageQuery) -> dict[str, Any]:
    """Members in join order, with their roles."""
    rid = _room_id(room_id)
    await visible_room(rid, optional_principal())
    rows = await app_context().rooms.members_page(rid, query_args.limit, time_id_after(query_args.cursor))
    return keyed_page(rows, query_args.limit)


@blueprint.patch("/<room_id>/members/<user_id>")
@needs_token
@validate_request(MemberRoleBody)
@validate_response(MemberRoleOut, 200)
async def set_member_role(room_id: str, user_id: str, data: MemberRoleBody) -> dict[str, Any]:
    """Only the owner appoints or removes moderators; the member's open sockets act with it at once."""
    principal = require_principal()
    rid = _room_id(room_id)
    room = await visible_room(rid, principal)
    if room["owner_id"] != str(principal.user_id) and not principal.is_admin:
        raise Forbidden("only the room's owner appoints moderators")
    target = path_uuid(user_id, "user_id", "member")
    if str(target) == room["owner_id"]:
        raise Conflict("the owner's role is not changed here", field="user_id")
    if not await app_context().rooms.set_role(rid, target, data.role, principal.user_id):
        raise NotFound("no such member", field="user_id")
    await run_op(rid, "member.role", RoleChange(user_id=str(target), role=data.role))
    return {"user_id": str(target), "role": data.role}


@blueprint.post("/<room_id>/transfer")
@needs_token
@validate_request(TransferBody)
@validate_response(RoomOut, 200)
async def transfer(room_id: str, data: TransferBody) -> dict[str, Any]:
    """The owner hands the room to a member, and stays on as a moderator."""
    principal = require_principal()
    rid = _room_id(room_id)
    room = await visible_room(rid, principal)
    old_owner = uuid.UUID(room["owner_id"])
    if old_owner != principal.user_id and not principal.is_admin:
        raise Forbidden("only the room's owner hands it over")
    if data.user_id == old_owner:
        raise Conflict("that user already owns the room", field="user_id")
    if not await app_context().rooms.swap_owner(rid, old_owner, data.user_id):
        raise NotFound("the new owner must be a member of the room", field="user_id")
    _, room = await run_op_showing(
        rid, "room.transfer", OwnerChange(new_owner_id=str(data.user_id)), _room_now
    )
    return room


@blueprint.post("/<room_id>/invite")
@needs_token
@validate_request(InviteBody)
@validate_response(InviteOut, 201)
async def invite(room_id: str, data: InviteBody) -> tuple[dict[str, Any], int]:
    """A moderator adds a user as a member (how private rooms grow without a request)."""
    rid = _room_id(room_id)
    await require_room_mod(rid, require_principal())
    if await app_context().users.get(data.user_id) is None:
        raise NotFound("no such user", field="user_id")
    if not await app_context().rooms.add_member(rid, data.user_id):
        raise Conflict("that user is already a member", field="user_id")
    return {"room_id": str(rid), "user_id": str(data.user_id), "role": "member"}, 201


@blueprint.post("/<room_id>/join-request")
@needs_token
@document_request(JoinRequestBody)
@validate_response(JoinRequestOut, 201)
async def request_to_join(room_id: str) -> tuple[dict[str, Any], int]:
    """Ask to join a private room (it stays invisible otherwise: its id is all the asker knows).

    The body (an optional ``message``) may be left out.
    """
    data = await optional_body(JoinRequestBody)
    principal = require_principal()
    rid = _room_id(room_id)
    rooms = app_context().rooms
    room = await rooms.get(rid)
    if room is None or not is_private(room):
        raise NotFound("no private room with that id", field="room_id")
    if await rooms.is_banned(rid, principal.user_id):
        raise Forbidden("you are banned from this room")
    if await rooms.role_of(rid, principal.user_id) is not None:
        raise Conflict("you are already a member")
    request, notes = await rooms.request_to_join(rid, principal.user_id, data.message)
    tell(notes)
    return request, 201


_also_at("/<room_id>/requests", "request_to_join_requests", request_to_join, "POST")


@blueprint.get("/<room_id>/requests")
@needs_token
@validate_querystring(PageQuery)
@validate_response(JoinRequestPage, 200)
async def pending_requests(room_id: str, query_args: PageQuery) -> dict[str, Any]:
    """Pending requests to join, oldest first (owner and moderators)."""
    rid = _room_id(room_id)
    await require_room_mod(rid, require_principal())
    rows = await app_context().rooms.requests_page(rid, query_args.limit, time_id_after(query_args.cursor))
    return keyed_page(rows, query_args.limit)


@blueprint.post("/<room_id>/requests/<request_id>/approve")
@needs_token
@validate_response(JoinRequestOut, 200)
async def approve_request(room_id: str, request_id: str) -> dict[str, Any]:
    """Approve a pending request: its user becomes a member."""
    return await _decide(room_id, request_id, approve=True, reason=None)


@blueprint.post("/<room_id>/requests/<request_id>/deny")
@needs_token
@document_request(DenyBody)
@validate_response(JoinRequestOut, 200)
async def deny_request(room_id: str, request_id: str) -> dict[str, Any]:
    """Deny a pending request, with an optional reason (the body may be left out)."""
    data = await optional_body(DenyBody)
    return await _decide(room_id, request_id, approve=False, reason=data.reason)


@blueprint.post("/<room_id>/approve-join/<user_id>")
@needs_token
@validate_response(JoinRequestOut, 200)
async def approve_join(room_id: str, user_id: str) -> dict[str, Any]:
    """Approve the user's pending request: they become a member."""
    return await _decide_for_user(room_id, user_id, approve=True, reason=None)


@blueprint.post("/<room_id>/deny-join/<user_id>")
@needs_token
@document_request(DenyBody)
@validate_response(JoinRequestOut, 200)
async def deny_join(room_id: str, user_id: str) -> dict[str, Any]:
    """Deny the user's pending request, with an optional reason (the body may be left out)."""
    data = await optional_body(DenyBody)
    return await _decide_for_user(room_id, user_id, approve=False, reason=data.reason)


async def _decide_for_user(
    room_id: str, user_id: str, *, approve: bool, reason: str | None
) -> dict[str, Any]:
    principal = require_principal()
    rid = _room_id(room_id)
    await require_room_mod(rid, principal)
    asker = path_uuid(user_id, "user_id", "pending request")
    request_id = await app_context().rooms.pending_request_id(rid, asker)
    if request_id is None:
        raise NotFound("that user has no pending request to join", field="user_id")
    return await _decided(rid, request_id, principal.user_id, approve, reason)


async def _decide(room_id: str, request_id: str, *, approve: bool, reason: str | None) -> dict[str, Any]:
    principal = require_principal()
    rid = _room_id(room_id)
    await require_room_mod(rid, principal)
    req = path_uuid(request_id, "request_id", "request")
    return await _decided(rid, req, principal.user_id, approve, reason)


async def _decided(
    rid: uuid.UUID, req: uuid.UUID, by: uuid.UUID, approve: bool, reason: str | None
) -> dict[str, Any]:
    decided = await app_context().rooms.decide_request(rid, req, by, approve, reason)
    if decided is None:
        raise NotFound("no pending request with that id", field="request_id")
    tell(decided[1])
    return decided[0]


@blueprint.get("/<room_id>")
@token_optional
@validate_response(RoomOut, 200)
async def get_room(room_id: str) -> dict[str, Any]:
    """A room by id or by slug (public read, unlisted rooms too; a private room only for its members)."""
    try:
        rid = uuid.UUID(room_id)
    except ValueError:
        found = await app_context().rooms.id_by_slug(room_id)
        if found is None:
            raise NotFound("no such room", field="room_id") from None
        rid = found
    return _with_listeners(await visible_room(rid, optional_principal()), await listening())


@blueprint.patch("/<room_id>")
@needs_token
@validate_request(UpdateRoomBody)
@validate_response(RoomOut, 200)
async def update_room(room_id: str, data: UpdateRoomBody) -> dict[str, Any]:
    """The owner changes the room's settings; every socket in it sees ``room.updated``."""
    rid = _room_id(room_id)
    _, room = await run_op_showing(rid, "room.update", data, _room_now)
    return room


@blueprint.delete("/<room_id>")
@needs_token
@documents(NoContent, 204)
async def delete_room(room_id: str) -> Response:
    """The owner deletes the room: a live session ends, and its sockets close with 4004."""
    await run_op(_room_id(room_id), "room.delete", NoData())
    return no_content()


@blueprint.get("/<room_id>/messages")
@token_optional
@validate_querystring(PageQuery)
@validate_response(MessagePage, 200)
async def room_messages(room_id: str, query_args: PageQuery) -> dict[str, Any]:
    """Chat history, newest first in the room's ``seq`` (the order it was seen live), with replies
    (``parent_id``) and reaction counts. A message by someone the caller blocks is only
    ``{id, user_id, hidden: true, seq}``, and their reactions are not counted."""
    rid = _room_id(room_id)
    principal = optional_principal()
    try:
        before = cursor_key(query_args.cursor, row_id)
    except BadRequest:
        await visible_room(rid, principal)  # a room the caller may not see is a 404 first
        raise
    found = await app_context().rooms.history_for(
        rid,
        principal.user_id if principal is not None else None,
        lambda room, role: may_see(room, role, principal),
        query_args.limit,
        before[0] if before else None,
    )
    if found is None or found[1] is None:
        raise NotFound("no such room", field="room_id")
    rows = found[1]
    items, next_cursor = page(rows, query_args.limit, lambda m: (m["seq"],))
    return {"items": [_message_out(m) for m in items], "next_cursor": next_cursor}


def _message_out(m: dict[str, Any]) -> dict[str, Any]:
    if m["hidden"]:  # by someone the reader blocks
        return {"id": m["id"], "user_id": m["user_id"], "hidden": True, "seq": m["seq"]}
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
