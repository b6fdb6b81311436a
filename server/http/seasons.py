"""Closing a season by hand (admins); the server also closes each by itself after its quarter."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from quart import Blueprint
from quart_schema import security_scheme_blueprint, validate_response

from protocol.badges import SeasonClosedOut
from protocol.errors import ValidationFailed
from protocol.leaderboards import SEASON_PATTERN
from server.http.notifications import tell
from server.http.principal import app_context, require_admin

blueprint = Blueprint("seasons", __name__, url_prefix="/api/v1/admin/seasons")
security_scheme_blueprint(blueprint, [{"bearer": []}])


@blueprint.post("/<season>/close")
@validate_response(SeasonClosedOut, 200)
async def close(season: str) -> dict[str, Any]:
    """Freeze the season's final board and award its medals, once: rank 1 gold, 2 silver,
    3 bronze (a shared rank shares its tier), everyone else ranked participant. A season
    still running is 409; closing again awards nothing new and answers the same."""
    require_admin()
    if not re.fullmatch(SEASON_PATTERN, season):
        raise ValidationFailed("season must look like 2026-Q4", field="season")
    awarded, notes = await app_context().seasons.close(season, datetime.now(UTC))
    tell(notes)
    return {"season": season, "awarded": awarded}
