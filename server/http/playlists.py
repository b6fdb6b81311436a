"""Playlists over REST: owners manage them, collaborators edit their items, anyone reads public ones.

Who may do what (``storage.playlists.Access``): a private playlist is invisible
(404) to everyone but its owner and collaborators; only the owner renames,
deletes or invites; the owner and collaborators add, remove and reorder items;
a collaborator may leave on their own.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from quart import Blueprint, Response
from quart_schema import security_scheme_blueprint, validate_querystring, validate_request, validate_response

from protocol.errors import Conflict, Forbidden, NotFound
from protocol.playlists import (
    AddCollaboratorBody,
    AddItemBody,
    CollaboratorOut,
    CollaboratorPage,
    CreatePlaylistBody,
    MoveItemBody,
    PlaylistItemOut,
    PlaylistItemPage,
    PlaylistOut,
    PlaylistPage,
    UpdatePlaylistBody,
)
from server.auth import Principal
from server.http.errors import NoContent, documents, no_content
from server.http.pagination import PageQuery, keyed_page
from server.http.params import as_uuid, cursor_key, path_uuid, time_id_after
from server.http.principal import app_context, require_principal
from storage.playlists import Access

blueprint = Blueprint("playlists", __name__)
security_scheme_blueprint(blueprint, [{"bearer": []}])


async def _load(raw_id: str, principal: Principal) -> tuple[uuid.UUID, Access, dict[str, Any]]:
    """The playlist if the caller may read it; a private one they may not is a 404, as if absent."""
    playlist_id = path_uuid(raw_id, "playlist_id", "playlist")
    found = await app_context().playlists.find(playlist_id, principal.user_id)
    if found is None or not found[0].can_read:
        raise NotFound("no such playlist", field="playlist_id")
    return playlist_id, found[0], found[1]


async def _owned(raw_id: str, principal: Principal) -> uuid.UUID:
    playlist_id, access, _ = await _load(raw_id, principal)
    if not access.is_owner:
        raise Forbidden("only the playlist's owner can do that")
    return playlist_id


async def _editable(raw_id: str, principal: Principal) -> uuid.UUID:
    playlist_id, access, _ = await _load(raw_id, principal)
    if not access.can_edit_items:
        raise Forbidden("only the owner and collaborators can change the items")
    return playlist_id


@blueprint.post("/api/v1/playlists")
@validate_request(CreatePlaylistBody)
@validate_response(PlaylistOut, 201)
async def create_playlist(data: CreatePlaylistBody) -> tuple[dict[str, Any], int]:
    principal = require_principal()
    playlist = await app_context().playlists.create(
        principal.user_id, data.name, data.description, data.is_public
    )
    return playlist, 201


@blueprint.get("/api/v1/playlists/mine")
@validate_querystring(PageQuery)
@validate_response(PlaylistPage, 200)
async def my_playlists(query_args: PageQuery) -> dict[str, Any]:
    """Playlists the caller owns or collaborates on, newest first."""
    principal = require_principal()
    rows = await app_context().playlists.listed(
        principal.user_id, query_args.limit, time_id_after(query_args.cursor)
    )
    return keyed_page(rows, query_args.limit)


@blueprint.get("/api/v1/profiles/<username>/playlists")
@validate_querystring(PageQuery)
@validate_response(PlaylistPage, 200)
async def users_playlists(username: str, query_args: PageQuery) -> dict[str, Any]:
    """A user's playlists the caller may read (public ones, private ones they share), newest first."""
    principal = require_principal()
    ctx = app_context()
    owner = await ctx.users.by_username(username)
    if owner is None:
        raise NotFound("no such user", field="username")
    rows = await ctx.playlists.listed(
        principal.user_id, query_args.limit, time_id_after(query_args.cursor), owner=owner.id
    )
    return keyed_page(rows, query_args.limit)


@blueprint.get("/api/v1/playlists/<playlist_id>")
@validate_response(PlaylistOut, 200)
async def get_playlist(playlist_id: str) -> dict[str, Any]:
    _, _, playlist = await _load(playlist_id, require_principal())
    return playlist


@blueprint.patch("/api/v1/playlists/<playlist_id>")
@validate_request(UpdatePlaylistBody)
@validate_response(PlaylistOut, 200)
async def update_playlist(playlist_id: str, data: UpdatePlaylistBody) -> dict[str, Any]:
    principal = require_principal()
    pid = await _owned(playlist_id, principal)
    await app_context().playlists.update(pid, data.model_dump(exclude_unset=True))
    _, _, playlist = await _load(playlist_id, principal)
    return playlist


@blueprint.delete("/api/v1/playlists/<playlist_id>")
@documents(NoContent, 204)
async def delete_playlist(playlist_id: str) -> Response:
    pid = await _owned(playlist_id, require_principal())
    await app_context().playlists.delete(pid)
    return no_content()


@blueprint.get("/api/v1/playlists/<playlist_id>/items")
@validate_querystring(PageQuery)
@validate_response(PlaylistItemPage, 200)
async def playlist_items(playlist_id: str, query_args: PageQuery) -> dict[str, Any]:
    """Items in playlist order; ``position`` is each item's 0-based place in it."""
    pid, _, _ = await _load(playlist_id, require_principal())
    rows = await app_context().playlists.items(
        pid, query_args.limit, cursor_key(query_args.cursor, int, as_uuid)
    )
    return keyed_page(rows, query_args.limit)


@blueprint.post("/api/v1/playlists/<playlist_id>/items")
@validate_request(AddItemBody)
@validate_response(PlaylistItemOut, 201)
async def add_item(playlist_id: str, data: AddItemBody) -> tuple[dict[str, Any], int]:
    """Append a track (TrackInput). Whoever played it in a room earns PLAYLIST_ADD points,
    once per adding user per track, told live as ``points.awarded``."""
    principal = require_principal()
    pid = await _editable(playlist_id, principal)
    ctx = app_context()
    track = await ctx.rooms.upsert_track(data.track.spec())
    item, progress = await ctx.playlists.add_item(pid, track["id"], principal.user_id)
    if ctx.user_sockets is not None:
        now_ms = int(time.time() * 1000)
        for change in progress:
            for notice in change.notices(now_ms):
                ctx.user_sockets.notify(change.user_id, notice)
    return item, 201


@blueprint.patch("/api/v1/playlists/<playlist_id>/items/<item_id>")
@validate_request(MoveItemBody)
@validate_response(PlaylistItemOut, 200)
async def move_item(playlist_id: str, item_id: str, data: MoveItemBody) -> dict[str, Any]:
    """Reorder: move the item to ``position`` (0-based; past the end means last)."""
    pid = await _editable(playlist_id, require_principal())
    iid = path_uuid(item_id, "item_id", "item in this playlist")
    return await app_context().playlists.move_item(pid, iid, data.position)


@blueprint.delete("/api/v1/playlists/<playlist_id>/items/<item_id>")
@documents(NoContent, 204)
async def remove_item(playlist_id: str, item_id: str) -> Response:
    pid = await _editable(playlist_id, require_principal())
    await app_context().playlists.remove_item(pid, path_uuid(item_id, "item_id", "item in this playlist"))
    return no_content()


@blueprint.get("/api/v1/playlists/<playlist_id>/collaborators")
@validate_querystring(PageQuery)
@validate_response(CollaboratorPage, 200)
async def collaborators(playlist_id: str, query_args: PageQuery) -> dict[str, Any]:
    pid, _, _ = await _load(playlist_id, require_principal())
    rows = await app_context().playlists.collaborators(
        pid, query_args.limit, time_id_after(query_args.cursor)
    )
    return keyed_page(rows, query_args.limit)


@blueprint.post("/api/v1/playlists/<playlist_id>/collaborators")
@validate_request(AddCollaboratorBody)
@validate_response(CollaboratorOut, 201)
@validate_response(CollaboratorOut, 200)
async def add_collaborator(playlist_id: str, data: AddCollaboratorBody) -> tuple[dict[str, Any], int]:
    """Owner only: 201 when invited, 200 when they already were."""
    principal = require_principal()
    pid = await _owned(playlist_id, principal)
    ctx = app_context()
    user = await (ctx.users.get(data.user_id) if data.user_id else ctx.users.by_username(data.username or ""))
    field = "user_id" if data.user_id else "username"
    if user is None:
        raise NotFound("no such user", field=field)
    if user.id == principal.user_id:
        raise Conflict("the owner is not a collaborator of their own playlist", field=field)
    collaborator, created = await ctx.playlists.add_collaborator(pid, user.id, principal.user_id)
    return collaborator, 201 if created else 200


@blueprint.delete("/api/v1/playlists/<playlist_id>/collaborators/<user_id>")
@documents(NoContent, 204)
async def remove_collaborator(playlist_id: str, user_id: str) -> Response:
    """The owner removes anyone; a collaborator may remove themselves."""
    principal = require_principal()
    pid, access, _ = await _load(playlist_id, principal)
    target = path_uuid(user_id, "user_id", "collaborator")
    if not access.is_owner and target != principal.user_id:
        raise Forbidden("only the owner can remove other collaborators")
    if not await app_context().playlists.remove_collaborator(pid, target):
        raise NotFound("that user is not a collaborator", field="user_id")
    return no_content()
