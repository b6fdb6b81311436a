"""Progression over REST: my points, anyone's level, credits and Premium."""

from __future__ import annotations

from typing import Any

from quart import Blueprint
from quart_schema import (
    security_scheme_blueprint,
    validate_querystring,
    validate_request,
    validate_response,
)

from protocol.progression import CreditsOut, PointPage, ProgressionOut, RedeemBody, RedeemOut
from server.http.pagination import PageQuery, page
from server.http.params import cursor_key, path_user, row_id
from server.http.principal import app_context, require_principal

blueprint = Blueprint("progression", __name__, url_prefix="/api/v1/progression")
security_scheme_blueprint(blueprint, [{"bearer": []}])


@blueprint.get("/me")
@validate_response(ProgressionOut, 200)
async def my_progression() -> dict[str, Any]:
    return await app_context().progression.get(require_principal().user_id)


@blueprint.get("/me/points")
@validate_querystring(PageQuery)
@validate_response(PointPage, 200)
async def my_points(query_args: PageQuery) -> dict[str, Any]:
    """The point ledger, newest first."""
    user_id = require_principal().user_id
    key = cursor_key(query_args.cursor, row_id)  # a ledger id
    before = None if key is None else key[0]
    rows = await app_context().progression.points_page(user_id, query_args.limit, before)
    items, next_cursor = page(rows, query_args.limit, lambda r: (r["id"],))
    return {"items": items, "next_cursor": next_cursor}


@blueprint.get("/me/credits")
@validate_response(CreditsOut, 200)
async def my_credits() -> dict[str, Any]:
    return await app_context().progression.credits(require_principal().user_id)


@blueprint.post("/credits/redeem")
@validate_request(RedeemBody)
@validate_response(RedeemOut, 200)
async def redeem(data: RedeemBody) -> dict[str, Any]:
    """100 credits buy a month of Premium; 409 (naming ``months``) when the balance is short."""
    return await app_context().progression.redeem(require_principal().user_id, data.months)


@blueprint.get("/<user_id>")
@validate_response(ProgressionOut, 200)
async def user_progression(user_id: str) -> dict[str, Any]:
    require_principal()
    return await app_context().progression.get(await path_user(user_id))
