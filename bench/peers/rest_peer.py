"""The REST peer: seda's three hottest public reads on Starlette + uvicorn + asyncpg.

``python bench/peers/rest_peer.py --port N`` (``DATABASE_URL``, or ``--dsn``) serves

- ``GET /api/v1/profiles/{username}``
- ``GET /api/v1/rooms/{room_id}`` (by id or slug)
- ``GET /api/v1/rooms/discover?q=&type=&genre=&tag=&limit=&cursor=``

against seda's own database, with the same SQL and the same response JSON, so that ``python -m
bench rest-peer`` can compare seda's request cost with that of a lean Python stack doing the
same work. It is its own program and imports nothing of seda's (bench/ may import only
protocol/): the SQL and row shaping below are COPIES, kept by hand in step with

- ``storage/profiles.py``: ``_SELECT``, ``_profile``, ``Profiles.by_username``
- ``storage/rooms.py``: ``_ROOM_COLUMNS``, ``room_dict``, ``is_private``, ``Rooms.get``,
  ``Rooms.id_by_slug``, ``Rooms.listed_page``, ``_like_literal``
- ``storage/database.py``: ``_init_connection`` (json/jsonb codecs), ``micros``; the pool size
  (``SEDA_DB_POOL_SIZE``, 10)
- ``server/http/pagination.py``: ``encode_cursor``, ``decode_cursor``, ``keyed_page``

What it leaves out: tokens (private rooms are always 404 here, as for an anonymous caller of
seda), ``listeners`` (always 0: no live gateway; seda's is 0 too for a room nobody is in),
validation of query parameters beyond what the SQL needs, metrics and logging.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

POOL_SIZE = 10  # seda's default SEDA_DB_POOL_SIZE

# storage/profiles.py: _SELECT, Profiles.by_username
PROFILE_BY_USERNAME = """
             SELECT u.id, u.username, u.role, p.display_name, p.bio, p.avatar_url, p.favorite_genres,
                    p.onboarding_genres, a.links, a.verified
             FROM users u LEFT JOIN profiles p ON p.user_id = u.id
             LEFT JOIN artist_profiles a ON a.user_id = u.id WHERE u.username = lower($1)"""

# storage/rooms.py: _ROOM_COLUMNS, Rooms.get, Rooms.id_by_slug, Rooms.listed_page
ROOM_COLUMNS = (
    "id, slug, name, description, type, visibility, owner_id, genres, tags, pinned_track, "
    "pinned_message_ids, created_at"
)
ROOM_BY_ID = f"SELECT {ROOM_COLUMNS} FROM rooms WHERE id = $1 AND deleted_at IS NULL"
ROOM_ID_BY_SLUG = "SELECT id FROM rooms WHERE slug = lower($1) AND deleted_at IS NULL"
LISTED_PAGE = f"""SELECT {ROOM_COLUMNS} FROM rooms r
                WHERE r.deleted_at IS NULL
                  AND ($2::uuid IS NULL AND r.visibility = 'public'
                       OR r.id IN (SELECT room_id FROM room_memberships WHERE user_id = $2))
                  AND ($3::text IS NULL OR r.name ILIKE '%' || $9 || '%' OR lower($3) = ANY(r.tags)
                       OR lower($3) = ANY(r.genres))
                  AND ($4::text IS NULL OR r.type = $4)
                  AND ($5::text IS NULL OR lower($5) = ANY(r.genres))
                  AND ($6::text IS NULL OR lower($6) = ANY(r.tags))
                  AND ($7::timestamptz IS NULL OR (r.created_at, r.id) < ($7, $8))
                ORDER BY r.created_at DESC, r.id DESC LIMIT $1"""


def _profile(r: asyncpg.Record) -> dict[str, Any]:
    """storage/profiles.py: _profile."""
    return {
        "user_id": str(r["id"]),
        "username": r["username"],
        "display_name": r["display_name"],
        "bio": r["bio"],
        "avatar_url": r["avatar_url"],
        "favorite_genres": list(r["favorite_genres"] or []),
        "onboarding_genres": list(r["onboarding_genres"] or []),
        "role": r["role"],
        "artist": {"links": list(r["links"]), "verified": r["verified"]} if r["links"] is not None else None,
    }


def _room(r: asyncpg.Record) -> dict[str, Any]:
    """storage/rooms.py: room_dict, plus pinned_message_ids (Rooms.get) and listeners (0 here)."""
    return {
        "id": str(r["id"]),
        "slug": r["slug"],
        "name": r["name"],
        "type": r["type"],
        "visibility": r["visibility"],
        "owner_id": str(r["owner_id"]),
        "description": r["description"],
        "genres": list(r["genres"]),
        "tags": list(r["tags"]),
        "pinned_track": r["pinned_track"],
        "created_at": r["created_at"].isoformat(),
        "pinned_message_ids": [str(m) for m in r["pinned_message_ids"]],
        "listeners": 0,
    }


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _micros(ts: datetime) -> int:
    return int(ts.timestamp()) * 1_000_000 + ts.microsecond


def _encode_cursor(key: list[Any]) -> str:
    raw = json.dumps(key, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID] | None:
    try:
        key = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        at, rid = key
        return datetime.fromtimestamp(int(at) / 1_000_000, tz=UTC), uuid.UUID(str(rid))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        return None


def _error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _no_reset(conn: asyncpg.Connection) -> None:
    """As seda's pool: no reset query on release."""


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


async def profile(request: Request) -> JSONResponse:
    row = await _pool(request).fetchrow(PROFILE_BY_USERNAME, request.path_params["username"])
    if row is None:
        return _error(404, "not_found", "no such user", "username")
    return JSONResponse(_profile(row))


async def room(request: Request) -> JSONResponse:
    pool = _pool(request)
    raw = request.path_params["room_id"]
    try:
        rid = uuid.UUID(raw)
    except ValueError:
        found = await pool.fetchval(ROOM_ID_BY_SLUG, raw)
        if found is None:
            return _error(404, "not_found", "no such room", "room_id")
        rid = found
    row = await pool.fetchrow(ROOM_BY_ID, rid)
    # server/http/rooms_access.py visible_room, for a caller without a token
    if row is None or row["type"] == "private" or row["visibility"] == "private":
        return _error(404, "not_found", "no such room", "room_id")
    return JSONResponse(_room(row))


async def discover(request: Request) -> JSONResponse:
    query = request.query_params
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        return _error(400, "bad_request", "limit must be 1 to 100", "limit")
    after = None
    if "cursor" in query:
        after = _decode_cursor(query["cursor"])
        if after is None:
            return _error(400, "bad_request", "cursor is not one this API issued", "cursor")
    q = query.get("q")
    rows = await _pool(request).fetch(
        LISTED_PAGE,
        limit + 1,
        None,
        q,
        query.get("type"),
        query.get("genre"),
        query.get("tag"),
        after[0] if after else None,
        after[1] if after else None,
        _like_literal(q) if q is not None else None,
    )
    items = [_room(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit and items:
        last = rows[limit - 1]
        next_cursor = _encode_cursor([_micros(last["created_at"]), str(last["id"])])
    return JSONResponse({"items": items, "next_cursor": next_cursor})


def build_app(dsn: str) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=POOL_SIZE, init=_init_connection, reset=_no_reset
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    return Starlette(
        routes=[
            Route("/api/v1/profiles/{username}", profile),
            Route("/api/v1/rooms/discover", discover),
            Route("/api/v1/rooms/{room_id}", room),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL"), help="(DATABASE_URL)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    if not args.dsn:
        parser.error("give --dsn or DATABASE_URL")
    uvicorn.run(build_app(args.dsn), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
