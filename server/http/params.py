"""Path ids, time-ordered cursors and optional bodies, parsed once for every blueprint."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from quart import request

from protocol.errors import BadRequest, NotFound
from server.http.errors import from_validation_error
from server.http.pagination import decode_cursor
from server.http.principal import app_context

M = TypeVar("M", bound=BaseModel)


def path_uuid(raw: str, field: str, what: str) -> uuid.UUID:
    """An id from the path; one that cannot be an id names nothing, so it is a 404 on ``field``."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"no such {what}", field=field) from None


async def path_user(raw: str, field: str = "user_id") -> uuid.UUID:
    """The id of an existing user from the path; anything else is a 404 on ``field``."""
    user_id = path_uuid(raw, field, "user")
    if await app_context().users.get(user_id) is None:
        raise NotFound("no such user", field=field)
    return user_id


def at_micros(value: Any) -> datetime:
    """A cursor's microsecond timestamp."""
    return datetime.fromtimestamp(int(value) / 1_000_000, tz=UTC)


def as_uuid(value: Any) -> uuid.UUID:
    return uuid.UUID(str(value))


def row_id(value: Any) -> int:
    """A positive bigint row id (and not a bool, which isinstance counts as an int)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**63:
        raise ValueError("not a row id")
    return value


def cursor_key(cursor: str | None, *parts: Callable[[Any], Any]) -> tuple[Any, ...] | None:
    """The sort key inside ``cursor``, each part parsed by its function; one we did not make
    (or whose parts do not parse) is a bad_request on ``cursor``."""
    key = decode_cursor(cursor, len(parts))
    if key is None:
        return None
    try:
        return tuple(parse(value) for parse, value in zip(parts, key, strict=True))
    except (ValueError, TypeError, OverflowError):
        raise BadRequest("cursor is not one this API issued", field="cursor") from None


def time_id_after(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """A (microsecond timestamp, id) cursor back into its sort key."""
    return cursor_key(cursor, at_micros, as_uuid)


async def optional_body(model: type[M]) -> M:
    """The JSON body as ``model``, where no body at all means ``{}``.

    For endpoints whose fields are all optional and that the seed lists without a body
    (``POST …/join-request``, ``…/deny-join/:userId``): a client written from it may send
    none. A body that is there must be a JSON object of the model's shape; document it with
    quart-schema's ``document_request``.
    """
    raw = await request.get_data()
    if not raw.strip():
        return model()
    if not request.is_json:
        raise BadRequest("the body must be JSON (content-type: application/json)", field="body")
    data = await request.get_json(silent=True)
    if data is None:
        raise BadRequest("the body is not valid JSON", field="body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc, where="body") from None
