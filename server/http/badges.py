"""Badges over REST: the catalogue, a user's badges and trophy case (public reads)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from quart import Blueprint
from quart_schema import validate_querystring, validate_response

from protocol.badges import AwardedBadgePage, BadgeOut, TrophiesOut
from server.http.pagination import PageQuery, keyed_page
from server.http.params import at_micros, cursor_key, path_user
from server.http.principal import app_context

blueprint = Blueprint("badges", __name__, url_prefix="/api/v1")

TROPHY_CASE_BADGES = 100


class Catalogue(BaseModel):
    items: list[BadgeOut]
    next_cursor: str | None


@blueprint.get("/badges")
@validate_response(Catalogue, 200)
async def catalogue() -> dict[str, Any]:
    """Every badge there is to earn."""
    return {"items": app_context().badges.catalogue(), "next_cursor": None}


@blueprint.get("/users/<user_id>/badges")
@validate_querystring(PageQuery)
@validate_response(AwardedBadgePage, 200)
async def user_badges(user_id: str, query_args: PageQuery) -> dict[str, Any]:
    """A user's badges, newest first."""
    uid = await path_user(user_id)
    rows = await app_context().badges.of_user(
        uid, query_args.limit, cursor_key(query_args.cursor, at_micros, str)
    )
    return keyed_page(rows, query_args.limit)


@blueprint.get("/users/<user_id>/trophies")
@validate_response(TrophiesOut, 200)
async def trophies(user_id: str) -> dict[str, Any]:
    """The trophy case: season medals by tier, badges newest first, ranks in closed seasons (best first)."""
    uid = await path_user(user_id)
    rows = await app_context().badges.of_user(uid, TROPHY_CASE_BADGES, None)
    badges = [{k: v for k, v in r.items() if k != "_key"} for r in rows[:TROPHY_CASE_BADGES]]
    counts = {tier: 0 for tier in ("gold", "silver", "bronze", "participant")}
    for awarded in badges:
        tier = awarded["badge"]["tier"]
        if tier is not None:
            counts[tier] += 1
    best = await app_context().badges.season_ranks(uid)
    return {"user_id": str(uid), "counts": counts, "badges": badges, "best_ranks": best}
