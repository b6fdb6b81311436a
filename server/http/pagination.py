"""Cursor pagination: ``?limit=&cursor=`` in, ``{"items", "next_cursor"}`` out.

A cursor is the sort key of the last item served, so pages stay stable while
rows are inserted: the next page starts strictly after that key.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from protocol.errors import BadRequest

T = TypeVar("T")


class LimitQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt parameter is an error, not a silent default
    limit: int = Field(default=20, ge=1, le=100, description="Page size")


class PageQuery(LimitQuery):
    cursor: str | None = Field(
        default=None, max_length=512, description="The next_cursor of the previous page"
    )


def encode_cursor(key: Sequence[Any]) -> str:
    raw = json.dumps(list(key), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    """The key inside ``cursor``; a cursor we did not make is a bad_request on ``cursor``."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("cursor is not one this API issued", field="cursor") from None
    if not isinstance(key, list) or len(key) != arity:
        raise BadRequest("cursor is not one this API issued", field="cursor")
    return key


def page(rows: Sequence[T], limit: int, key_of: Callable[[T], Sequence[Any]]) -> tuple[list[T], str | None]:
    """Given up to ``limit + 1`` rows, the page and the cursor for the next one."""
    items = list(rows[:limit])
    next_cursor = encode_cursor(key_of(items[-1])) if len(rows) > limit and items else None
    return items, next_cursor


def keyed_page(rows: Sequence[dict[str, Any]], limit: int) -> dict[str, Any]:
    """A page of rows that carry their sort key under ``"_key"`` (dropped from the items)."""
    items, next_cursor = page(rows, limit, lambda r: r["_key"])
    return {"items": [{k: v for k, v in r.items() if k != "_key"} for r in items], "next_cursor": next_cursor}
