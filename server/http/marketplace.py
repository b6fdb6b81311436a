"""The artist marketplace over REST: verified artists sell, anyone browses."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import ValidationError
from quart import Blueprint, Response
from quart_schema import security_scheme, validate_querystring, validate_request, validate_response

from protocol.errors import Forbidden, NotFound, ValidationFailed
from protocol.marketplace import ItemBody, ItemOut, ItemPage, ItemPatch, concert_start
from server.auth import Principal
from server.http.errors import NoContent, documents, no_content
from server.http.pagination import PageQuery, keyed_page
from server.http.params import path_uuid, time_id_after
from server.http.principal import app_context, optional_principal, require_principal

blueprint = Blueprint("marketplace", __name__, url_prefix="/api/v1/marketplace")
needs_token = security_scheme([{"bearer": []}])


class ItemsQuery(PageQuery):
    artist_id: uuid.UUID | None = None
    type: Literal["merch", "concert", "track"] | None = None
    upcoming: bool = False


def _starts_at(item: dict[str, Any]) -> Any:
    """A concert's start, its metadata checked; a concert without a date, venue or city is a 422."""
    try:
        return concert_start(item["type"], item["metadata"])
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(["metadata", *(str(part) for part in first["loc"])])
        message = first["msg"].removeprefix("Value error, ")
        raise ValidationFailed(f"{where}: {message}", field=where) from None


async def _own(raw_id: str, principal: Principal) -> tuple[uuid.UUID, dict[str, Any]]:
    """The item, if the caller is its artist or an admin (others: 403; no such item: 404)."""
    item_id = path_uuid(raw_id, "item_id", "item")
    item = await app_context().marketplace.get(item_id)
    if item is None:
        raise NotFound("no such item", field="item_id")
    if item["artist_id"] != str(principal.user_id) and not principal.is_admin:
        raise Forbidden("only the item's artist or an admin can change it")
    return item_id, item


@blueprint.post("/items")
@needs_token
@validate_request(ItemBody)
@validate_response(ItemOut, 201)
async def create_item(data: ItemBody) -> tuple[dict[str, Any], int]:
    """Verified artists only."""
    principal = require_principal()
    market = app_context().marketplace
    if not await market.is_verified_artist(principal.user_id):
        raise Forbidden("only verified artists sell in the marketplace")
    item = data.model_dump()
    return await market.create(principal.user_id, item, _starts_at(item)), 201


@blueprint.patch("/items/<item_id>")
@needs_token
@validate_request(ItemPatch)
@validate_response(ItemOut, 200)
async def update_item(item_id: str, data: ItemPatch) -> dict[str, Any]:
    """The item's artist or an admin; only the fields given change (a concert stays a valid concert)."""
    iid, item = await _own(item_id, require_principal())
    merged = {**item, **data.model_dump(exclude_unset=True)}
    return await app_context().marketplace.replace(iid, merged, _starts_at(merged))


@blueprint.delete("/items/<item_id>")
@needs_token
@documents(NoContent, 204)
async def delete_item(item_id: str) -> Response:
    """Takes the item off sale (``active`` false); its artist and admins still see it."""
    iid, _ = await _own(item_id, require_principal())
    await app_context().marketplace.deactivate(iid)
    return no_content()


@blueprint.get("/items")
@validate_querystring(ItemsQuery)
@validate_response(ItemPage, 200)
async def list_items(query_args: ItemsQuery) -> dict[str, Any]:
    """Public: active items newest first (``upcoming=true``: concerts not yet started, soonest first)."""
    rows = await app_context().marketplace.listed(
        artist_id=query_args.artist_id,
        item_type=query_args.type,
        upcoming=query_args.upcoming,
        limit=query_args.limit,
        after=time_id_after(query_args.cursor),
    )
    return keyed_page(rows, query_args.limit)


@blueprint.get("/items/<item_id>")
@validate_response(ItemOut, 200)
async def get_item(item_id: str) -> dict[str, Any]:
    """Public; an item off sale is 404 except to its artist and admins."""
    item = await app_context().marketplace.get(path_uuid(item_id, "item_id", "item"))
    if item is not None and not item["active"]:
        viewer = optional_principal()
        if viewer is None or (item["artist_id"] != str(viewer.user_id) and not viewer.is_admin):
            item = None
    if item is None:
        raise NotFound("no such item", field="item_id")
    return item
