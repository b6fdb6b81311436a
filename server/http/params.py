"""Path ids and time-ordered cursors, parsed once for every blueprint."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from protocol.errors import BadRequest, NotFound
from server.http.pagination import decode_cursor


def path_uuid(raw: str, field: str, what: str) -> uuid.UUID:
    """An id from the path; one that cannot be an id names nothing, so it is a 404 on ``field``."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"no such {what}", field=field) from None


def time_id_after(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """A (microsecond timestamp, id) cursor back into its sort key."""
    key = decode_cursor(cursor, 2)
    if key is None:
        return None
    try:
        return datetime.fromtimestamp(int(key[0]) / 1_000_000, tz=UTC), uuid.UUID(str(key[1]))
    except (ValueError, TypeError, OverflowError):
        raise BadRequest("cursor is not one this API issued", field="cursor") from None
