"""Recommendations over REST (REST.md "Recommendations and linked accounts").

``GET /api/v1/recommendations?type=rooms|playlists|artists&limit=`` (type defaults to
``rooms``, the one kind every user has something to be shown of: trending rooms; limit
1 to 50, default 20) and ``POST /api/v1/recommendations/:recommendation_id/dismiss``. What is
recommended, why and in which order is :mod:`storage.recommendations`.

An id is ``room:<uuid>``, ``playlist:<uuid>`` or ``artist:<uuid>``: dismissing needs nothing
stored. Like every path id here, one that cannot be an id names nothing (404 naming
``recommendation_id``), and so does an entity the caller may not see.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response
from quart_schema import security_scheme_blueprint, validate_querystring, validate_response

from protocol.errors import NotFound
from protocol.recommendations import (
    ENTITY_TYPES,
    RecommendationList,
    RecommendationType,
    parse_recommendation_id,
)
from server.auth import Principal
from server.http.errors import NoContent, documents, no_content
from server.http.principal import app_context, require_principal
from server.http.rooms_access import visible_room

blueprint = Blueprint("recommendations", __name__, url_prefix="/api/v1/recommendations")
security_scheme_blueprint(blueprint, [{"bearer": []}])

_FIELD = "recommendation_id"


class RecommendationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: RecommendationType = Field(default="rooms", description="What to recommend (default rooms)")
    limit: int = Field(default=20, ge=1, le=50, description="How many, at most")


@blueprint.get("")
@validate_querystring(RecommendationQuery)
@validate_response(RecommendationList, 200)
async def recommendations(query_args: RecommendationQuery) -> dict[str, Any]:
    """The caller's recommendations, best first, each with the reason it is there."""
    principal = require_principal()
    items = await app_context().recommendations.for_user(
        principal.user_id, ENTITY_TYPES[query_args.type], query_args.limit
    )
    return {"items": items}


async def _visible(entity_type: str, entity_id: uuid.UUID, principal: Principal) -> bool:
    """Whether the entity exists and the caller may see it (the same rules as its own paths)."""
    ctx = app_context()
    if entity_type == "room":
        try:
            await visible_room(entity_id, principal)
        except NotFound:
            return False
        return True
    if entity_type == "playlist":
        found = await ctx.playlists.find(entity_id, principal.user_id)
        return found is not None and found[0].can_read
    return await ctx.recommendations.is_artist(entity_id)


@blueprint.post("/<recommendation_id>/dismiss")
@documents(NoContent, 204)
async def dismiss(recommendation_id: str) -> Response:
    """Never recommend this entity to the caller again; dismissing twice is the same 204."""
    principal = require_principal()
    parsed = parse_recommendation_id(recommendation_id)
    if parsed is None:
        raise NotFound("no such recommendation", field=_FIELD)
    entity_type, entity_id = parsed
    if not await _visible(entity_type, entity_id, principal):
        raise NotFound(f"no such {entity_type}", field=_FIELD)
    await app_context().recommendations.dismiss(principal.user_id, entity_type, entity_id)
    return no_content()
