"""Follows and likes over REST (REST.md "Social"), only while ``FEATURE_SOCIAL`` is on.

Nobody likes or lists what they may not see: an entity the caller cannot see
answers 404 exactly as one that does not exist.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from quart import Blueprint, Response
from quart_schema import security_scheme_blueprint, validate_querystring, validate_request, validate_response

from protocol.errors import NotFound, ValidationFailed
from protocol.social import (
    FOLLOWABLE_TYPES,
    LIKEABLE_TYPES,
    FollowBody,
    FollowOut,
    FollowPage,
    LikeBody,
    LikeOut,
    LikersPage,
    MyLikesPage,
    StatsOut,
)
from server.auth import Principal
from server.http.errors import NoContent, documents, no_content
from server.http.notifications import tell
from server.http.pagination import PageQuery, keyed_page
from server.http.params import as_uuid, at_micros, cursor_key, path_user, path_uuid, time_id_after
from server.http.principal import app_context, require_principal
from server.http.rooms_access import visible_room

blueprint = Blueprint("social", __name__, url_prefix="/api/v1/social")
security_scheme_blueprint(blueprint, [{"bearer": []}])


@blueprint.before_request
async def _only_when_enabled() -> None:
    if not app_context().settings.feature_social:
        raise NotFound("no such path")


class MyLikesQuery(PageQuery):
    entity_type: Literal["track_ref", "playlist", "playlist_item", "message", "feed_event"] | None = None


async def _visible_entity(entity_type: str, raw_id: str | uuid.UUID, principal: Principal) -> uuid.UUID:
    """The id of an entity the caller may see; anything else is a 404 naming ``entity_id``."""
    if entity_type not in LIKEABLE_TYPES:
        raise NotFound(f"no such entity type {entity_type!r}", field="entity_type")
    entity_id = raw_id if isinstance(raw_id, uuid.UUID) else path_uuid(raw_id, "entity_id", entity_type)
    ctx = app_context()
    visible = False
    if entity_type == "track_ref":
        visible = await ctx.rooms.track_exists(entity_id)
    elif entity_type in ("playlist", "playlist_item"):
        playlist_id = entity_id if entity_type == "playlist" else await ctx.playlists.item_playlist(entity_id)
        found = await ctx.playlists.find(playlist_id, principal.user_id) if playlist_id else None
        visible = found is not None and found[0].can_read
    elif entity_type == "message":
        room_id = await ctx.rooms.message_room(entity_id)
        if room_id is not None:
            try:
                await visible_room(room_id, principal)
                visible = True
            except NotFound:
                visible = False
    elif entity_type == "feed_event":
        visible = await ctx.feed.visible(entity_id, principal.user_id)
    if not visible:
        raise NotFound(f"no such {entity_type}", field="entity_id")
    return entity_id


# ---- follows ---------------------------------------------------------------------------


@blueprint.post("/follow")
@validate_request(FollowBody)
@validate_response(FollowOut, 201)
@validate_response(FollowOut, 200)
async def follow(data: FollowBody) -> tuple[dict[str, Any], int]:
    """Follow a user, or an artist (a user whose role is artist); again is 200 and counts nothing."""
    principal = require_principal()
    if data.target_id == principal.user_id:
        raise ValidationFailed("you cannot follow yourself", field="target_id")
    ctx = app_context()
    target = await ctx.users.get(data.target_id)
    if target is None:
        raise NotFound("no such user", field="target_id")
    if data.target_type == "artist" and target.role != "artist":
        raise ValidationFailed("that user is not an artist", field="target_type")
    followed, created, notes = await ctx.social.follow(principal.user_id, data.target_id, data.target_type)
    tell(notes)
    return followed, 201 if created else 200


@blueprint.delete("/follow/<target_id>")
@documents(NoContent, 204)
async def unfollow(target_id: str) -> Response:
    principal = require_principal()
    if not await app_context().social.unfollow(principal.user_id, path_uuid(target_id, "target_id", "user")):
        raise NotFound("you do not follow that user", field="target_id")
    return no_content()


@blueprint.get("/followers/<user_id>")
@validate_querystring(PageQuery)
@validate_response(FollowPage, 200)
async def followers(user_id: str, query_args: PageQuery) -> dict[str, Any]:
    """Who follows the user, newest first."""
    require_principal()
    uid = await path_user(user_id, "user_id")
    rows = await app_context().social.follow_page(
        uid, followers=True, limit=query_args.limit, before=time_id_after(query_args.cursor)
    )
    return keyed_page(rows, query_args.limit)


@blueprint.get("/following/<user_id>")
@validate_querystring(PageQuery)
@validate_response(FollowPage, 200)
async def following(user_id: str, query_args: PageQuery) -> dict[str, Any]:
    """Whom the user follows, newest first."""
    require_principal()
    uid = await path_user(user_id, "user_id")
    rows = await app_context().social.follow_page(
        uid, followers=False, limit=query_args.limit, before=time_id_after(query_args.cursor)
    )
    return keyed_page(rows, query_args.limit)


# ---- likes -----------------------------------------------------------------------------


@blueprint.post("/like")
@validate_request(LikeBody)
@validate_response(LikeOut, 201)
@validate_response(LikeOut, 200)
async def like(data: LikeBody) -> tuple[dict[str, Any], int]:
    """Like something the caller can see; again is 200 and counts nothing."""
    principal = require_principal()
    entity_id = await _visible_entity(data.entity_type, data.entity_id, principal)
    social = app_context().social
    liked_at, created = await social.like(principal.user_id, data.entity_type, entity_id)
    counts = await social.stats(data.entity_type, entity_id)
    body = {
        "entity_type": data.entity_type,
        "entity_id": str(entity_id),
        "liked_at": liked_at,
        "likes_count": counts["likes_count"],
    }
    return body, 201 if created else 200


@blueprint.delete("/like/<entity_type>/<entity_id>")
@documents(NoContent, 204)
async def unlike(entity_type: str, entity_id: str) -> Response:
    principal = require_principal()
    if entity_type not in LIKEABLE_TYPES:
        raise NotFound(f"no such entity type {entity_type!r}", field="entity_type")
    eid = path_uuid(entity_id, "entity_id", entity_type)
    if not await app_context().social.unlike(principal.user_id, entity_type, eid):
        raise NotFound("you have not liked that", field="entity_id")
    return no_content()


@blueprint.get("/likes/<entity_type>/<entity_id>")
@validate_querystring(PageQuery)
@validate_response(LikersPage, 200)
async def likers(entity_type: str, entity_id: str, query_args: PageQuery) -> dict[str, Any]:
    """Who liked it, newest first, and how many in all."""
    principal = require_principal()
    eid = await _visible_entity(entity_type, entity_id, principal)
    social = app_context().social
    rows = await social.likers(entity_type, eid, query_args.limit, time_id_after(query_args.cursor))
    counts = await social.stats(entity_type, eid)
    return {**keyed_page(rows, query_args.limit), "likes_count": counts["likes_count"]}


@blueprint.get("/me/likes")
@validate_querystring(MyLikesQuery)
@validate_response(MyLikesPage, 200)
async def my_likes(query_args: MyLikesQuery) -> dict[str, Any]:
    """What the caller liked, newest first (``entity_type`` narrows it)."""
    principal = require_principal()
    rows = await app_context().social.my_likes(
        principal.user_id,
        query_args.entity_type,
        query_args.limit,
        cursor_key(query_args.cursor, at_micros, str, as_uuid),
    )
    return keyed_page(rows, query_args.limit)


@blueprint.get("/stats/<entity_type>/<entity_id>")
@validate_response(StatsOut, 200)
async def stats(entity_type: str, entity_id: str) -> dict[str, Any]:
    """Likes of an entity the caller can see, or followers of a user (``user``/``artist``)."""
    principal = require_principal()
    if entity_type in FOLLOWABLE_TYPES:
        eid = await path_user(entity_id, "entity_id")
    else:
        eid = await _visible_entity(entity_type, entity_id, principal)
    counts = await app_context().social.stats(entity_type, eid)
    return {"entity_type": entity_type, "entity_id": str(eid), **counts}
