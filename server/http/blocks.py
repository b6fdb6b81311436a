"""The caller's personal blocks over REST (REST.md "Blocks"); nobody else can read them.

Each committed change is told at once to the caller's open sockets (``Cluster.blocks_changed``):
from then on they hide what the blocked users say, without a reconnect.
"""

from __future__ import annotations

import uuid
from typing import Any

import trio
from quart import Blueprint, Response, current_app
from quart_schema import security_scheme_blueprint, validate_querystring, validate_request, validate_response

from protocol.blocks import BlockBody, BlockOut, BlockPage
from protocol.errors import NotFound, ValidationFailed
from server.http.errors import NoContent, documents, no_content
from server.http.pagination import PageQuery, keyed_page
from server.http.params import path_uuid, time_id_after
from server.http.principal import app_context, require_principal

blueprint = Blueprint("blocks", __name__, url_prefix="/api/v1/me/blocks")
security_scheme_blueprint(blueprint, [{"bearer": []}])


async def _tell_sockets(user_id: uuid.UUID) -> None:
    """After a committed change: the user's open sockets hide exactly whom they block now.

    The set is read after the commit, and each read with its tell is one step under one lock:
    of two changes committed close together, the later step reads both, so the sockets never end
    on the earlier set (as they could if each request told the set its own transaction saw)."""
    ctx = app_context()
    if ctx.cluster is None:  # the live side is not running: no sockets to tell
        return
    lock: trio.Lock = current_app.extensions.setdefault("seda.blocks_told", trio.Lock())
    async with lock:
        blocked = await ctx.blocks.blocked_ids(user_id)
        if ctx.cluster is not None:
            ctx.cluster.blocks_changed(str(user_id), blocked)


@blueprint.post("")
@validate_request(BlockBody)
@validate_response(BlockOut, 201)
@validate_response(BlockOut, 200)
async def block(data: BlockBody) -> tuple[dict[str, Any], int]:
    """Block a user: their messages are hidden from you, their mentions and replies do not notify
    you, and they cannot follow you (a follow of theirs ends). Again is 200; at most 1,000 (409)."""
    principal = require_principal()
    if data.user_id == principal.user_id:
        raise ValidationFailed("you cannot block yourself", field="user_id")
    entry, created = await app_context().blocks.block(principal.user_id, data.user_id)
    if created:
        await _tell_sockets(principal.user_id)
    return entry, 201 if created else 200


@blueprint.delete("/<user_id>")
@documents(NoContent, 204)
async def unblock(user_id: str) -> Response:
    principal = require_principal()
    if not await app_context().blocks.unblock(principal.user_id, path_uuid(user_id, "user_id", "user")):
        raise NotFound("you do not block that user", field="user_id")
    await _tell_sockets(principal.user_id)
    return no_content()


@blueprint.get("")
@validate_querystring(PageQuery)
@validate_response(BlockPage, 200)
async def blocks(query_args: PageQuery) -> dict[str, Any]:
    """Whom the caller blocks, newest first."""
    principal = require_principal()
    rows = await app_context().blocks.page(
        principal.user_id, query_args.limit, time_id_after(query_args.cursor)
    )
    return keyed_page(rows, query_args.limit)
