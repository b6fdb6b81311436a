"""Global search over REST (public; a token shows the caller's private rooms and playlists too)."""

from __future__ import annotations

import math
import uuid
from typing import Any

from pydantic import Field
from quart import Blueprint
from quart_schema import security_scheme, validate_querystring, validate_response

from protocol.errors import ValidationFailed
from protocol.search import GROUPED_EACH, SearchResults, SearchText, SearchType
from server.http.pagination import PageQuery, keyed_page
from server.http.params import as_uuid, cursor_key
from server.http.principal import app_context, optional_principal

blueprint = Blueprint("search", __name__, url_prefix="/api/v1")
token_optional = security_scheme([{"bearer": []}, {}])


class SearchQuery(PageQuery):
    q: SearchText = Field(description="What to look for: 1-200 characters, surrounding spaces trimmed")
    type: SearchType | None = Field(
        default=None, description="One type, paged (limit, cursor); without it, the best 5 of each type"
    )


def _score(value: Any) -> float:
    """A cursor's score: a finite number (JSON keeps a float exact, so the next page starts right after)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("not a score")
    return float(value)


def _after(cursor: str | None) -> tuple[float, uuid.UUID] | None:
    key = cursor_key(cursor, _score, as_uuid)
    return None if key is None else (key[0], key[1])


@blueprint.get("/search")
@token_optional
@validate_querystring(SearchQuery)
@validate_response(SearchResults, 200)
async def search(query_args: SearchQuery) -> dict[str, Any]:
    """Rooms, artists, playlists, tracks and users matching ``q``: by words (name above tags and
    genres above description), prefixes (``jaz``) and near spellings (``kaytranda``), best first.
    Guests see public things; unlisted rooms never show, private rooms and playlists only to
    those who may see them."""
    principal = optional_principal()
    viewer = principal.user_id if principal is not None else None
    found = app_context().search
    if query_args.type is None:
        for paging in ("limit", "cursor"):
            if paging in query_args.model_fields_set:
                raise ValidationFailed(f"{paging} pages one type: give type too", field=paging)
        return await found.grouped(query_args.q, viewer, GROUPED_EACH)
    rows = await found.page(
        query_args.type, query_args.q, viewer, query_args.limit, _after(query_args.cursor)
    )
    return keyed_page(rows, query_args.limit)
