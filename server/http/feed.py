"""The newsfeed over REST: the caller's feed, reactions, and a user's activity page."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from quart import Blueprint, Response
from quart_schema import security_scheme_blueprint, validate_querystring, validate_request, validate_response

from protocol.errors import NotFound
from protocol.feed import REACTION_TYPES, FeedPage, ReactionBody, ReactionOut
from server.auth import Principal
from server.http.errors import NoContent, documents, no_content
from server.http.pagination import PageQuery, encode_cursor
from server.http.params import as_uuid, at_micros, cursor_key, path_user, path_uuid, time_id_after
from server.http.principal import app_context, require_principal
from storage.database import micros

blueprint = Blueprint("feed", __name__, url_prefix="/api/v1")
security_scheme_blueprint(blueprint, [{"bearer": []}])


def _snapshot_cursor(cursor: str | None) -> tuple[datetime, tuple[datetime, uuid.UUID]] | None:
    """(snapshot, after) from a feed cursor: the paging session's snapshot time and the last item."""
    key = cursor_key(cursor, at_micros, at_micros, as_uuid)
    return None if key is None else (key[0], (key[1], key[2]))


@blueprint.get("/feed")
@validate_querystring(PageQuery)
@validate_response(FeedPage, 200)
async def feed(query_args: PageQuery) -> dict[str, Any]:
    """Newest first: what people you follow, rooms you are in and you yourself did. Events of one
    kind about one target, each within an hour of the one before, are one item
    (``collapsed_count``, up to 3 ``actors``). Pages read the feed as of the first page."""
    principal = require_principal()
    feed_store = app_context().feed
    resumed = _snapshot_cursor(query_args.cursor)
    snapshot, after = resumed if resumed is not None else (await feed_store.now(), None)
    rows = await feed_store.page(principal.user_id, snapshot, query_args.limit, after)
    items = [{k: v for k, v in r.items() if k != "_key"} for r in rows[: query_args.limit]]
    next_cursor = None
    if len(rows) > query_args.limit and items:
        last_us, last_id = rows[query_args.limit - 1]["_key"]
        next_cursor = encode_cursor([micros(snapshot), last_us, last_id])
    return {"items": items, "next_cursor": next_cursor}


async def _visible_event(raw: str, principal: Principal) -> uuid.UUID:
    event_id = path_uuid(raw, "event_id", "feed event")
    if not await app_context().feed.visible(event_id, principal.user_id):
        raise NotFound("no such feed event", field="event_id")
    return event_id


@blueprint.post("/feed/<event_id>/reactions")
@validate_request(ReactionBody)
@validate_response(ReactionOut, 201)
@validate_response(ReactionOut, 200)
async def react(event_id: str, data: ReactionBody) -> tuple[dict[str, Any], int]:
    """React to a feed event you can see (201; 200 when you already had)."""
    principal = require_principal()
    eid = await _visible_event(event_id, principal)
    made = await app_context().feed.react(eid, principal.user_id, data.type)
    return {"event_id": str(eid), "type": data.type}, 201 if made else 200


@blueprint.delete("/feed/<event_id>/reactions/<kind>")
@documents(NoContent, 204)
async def unreact(event_id: str, kind: str) -> Response:
    principal = require_principal()
    eid = await _visible_event(event_id, principal)
    if kind not in REACTION_TYPES or not await app_context().feed.unreact(eid, principal.user_id, kind):
        raise NotFound("you have no such reaction on this event", field="type")
    return no_content()


@blueprint.get("/users/<user_id>/activity")
@validate_querystring(PageQuery)
@validate_response(FeedPage, 200)
async def activity(user_id: str, query_args: PageQuery) -> dict[str, Any]:
    """The user's own events that you may see, newest first, not collapsed."""
    principal = require_principal()
    ctx = app_context()
    uid = await path_user(user_id)
    rows = await ctx.feed.activity(uid, principal.user_id, query_args.limit, time_id_after(query_args.cursor))
    items = [{k: v for k, v in r.items() if k != "_key"} for r in rows[: query_args.limit]]
    next_cursor = encode_cursor(rows[query_args.limit - 1]["_key"]) if len(rows) > query_args.limit else None
    return {"items": items, "next_cursor": next_cursor}
