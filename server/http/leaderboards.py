"""Leaderboards over REST (public reads)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_response

from protocol.errors import NotFound, ValidationFailed
from protocol.leaderboards import BOARD_TYPES, SEASON_PATTERN, BoardPage, StandingOut
from server.http.pagination import PageQuery, keyed_page
from server.http.params import as_uuid, at_micros, cursor_key, path_user
from server.http.principal import app_context
from storage.progression import season_of

blueprint = Blueprint("leaderboards", __name__, url_prefix="/api/v1/leaderboards")


class BoardQuery(PageQuery):
    scope: str | None = Field(default=None, min_length=1, max_length=100, description="genre, or room id")
    season: str | None = Field(default=None, pattern=SEASON_PATTERN, description="YYYY-Qn (seasonal)")


def _board(kind: str, query: BoardQuery) -> tuple[str, str, str]:
    """(board, scope, season) as stored; an unknown board is 404, a missing scope 422."""
    if kind not in BOARD_TYPES:
        raise NotFound(f"no leaderboard {kind!r}", field="type")
    if kind in ("genre", "room"):
        if query.scope is None:
            raise ValidationFailed(f"a {kind} board needs its scope", field="scope")
        if kind == "genre":
            return kind, query.scope.strip().lower(), ""
        try:
            return kind, str(uuid.UUID(query.scope)), ""
        except ValueError:
            raise ValidationFailed("a room board's scope is the room's id", field="scope") from None
    if kind == "seasonal":
        return kind, "", query.season or season_of(datetime.now(UTC))
    return kind, "", ""


@blueprint.get("/<kind>")
@validate_querystring(BoardQuery)
@validate_response(BoardPage, 200)
async def board(kind: str, query_args: BoardQuery) -> dict[str, Any]:
    """Highest score first; equal scores share a rank (1, 2, 2, 4), who reached it first listed first."""
    name, scope, season = _board(kind, query_args)
    rows = await app_context().leaderboards.page(
        name, scope, season, query_args.limit, cursor_key(query_args.cursor, int, at_micros, as_uuid)
    )
    return {
        **keyed_page(rows, query_args.limit),
        "type": name,
        "scope": scope or None,
        "season": season or None,
    }


@blueprint.get("/<kind>/users/<user_id>")
@validate_querystring(BoardQuery)
@validate_response(StandingOut, 200)
async def standing(kind: str, user_id: str, query_args: BoardQuery) -> dict[str, Any]:
    """A user's rank (null when unranked), score and how many are ranked, without reading the board."""
    name, scope, season = _board(kind, query_args)
    return await app_context().leaderboards.standing(name, scope, season, await path_user(user_id))
