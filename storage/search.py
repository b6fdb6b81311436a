"""Global search over rooms, artists, playlists, tracks and users (migrations 016 and 018).

A query becomes, once, a few tsqueries: each query word as a prefix (``jaz:*``), or as
any word of the vocabulary that is trigram-similar to it (pg_trgm's ``%``, through a
``gin_trgm_ops`` index: ``kaytranda`` -> ``kaytranada``). Rows are found through their
tsvector's GIN index, in three tiers, best first:

2. every query word is in the name;
1. every query word is somewhere (tags, genres, description) but not all in the name;
0. some query word is somewhere (``late nite``: ``nite`` is nowhere, ``late`` is).

Within a tier, a row's score is half ``ts_rank`` of the query's own words (name A above
tags and genres B above description C) and half the trigram match of its name: mostly how
much of the query the name holds (pg_trgm's ``word_similarity``), partly ``similarity``
over all. ``score = (tier + 0.999 * that) / 3``,
so every tier's scores lie above the next one's and a page cursor (score, id) needs no
tier of its own. Tiers are read one statement at a time, best first, and reading stops
once the page is full: a common word's best matches are all in its first tier, and the
rows that only mention it are never scored.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from storage.database import Database, Record
from storage.refs import TRACK_COLUMNS, track, user_ref, user_ref_columns

KINDS = ("rooms", "artists", "playlists", "tracks", "users")
MAX_WORDS = 10  # query words in the tsqueries (all of them count in the trigram match)
NEAR_WORDS = 5  # vocabulary words tried for each query word
NEAR_THRESHOLD = 0.3  # pg_trgm's default similarity threshold
MIN_PREFIX = 2  # shorter query words match only themselves


def _operand(word: str, *, prefix: bool = False, weight: str = "") -> str:
    """A lexeme as a tsquery operand: quoted (quotes and backslashes doubled), then ``*`` to match
    it as a prefix and a weight letter to match it only in those fields."""
    quoted = "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"
    label = ("*" if prefix else "") + weight
    return f"{quoted}:{label}" if label else quoted


def _typed(word: str, weight: str = "") -> str:
    """A query word as typed: a prefix (``jaz`` finds jazz), unless one letter (not every a-word)."""
    return _operand(word, prefix=len(word) >= MIN_PREFIX, weight=weight)


def _group(word: str, near: Sequence[str], weight: str = "") -> str:
    """One query word: as typed, or any of its near words; with ``weight``, in those fields only."""
    return "(" + " | ".join([_typed(word, weight), *(_operand(n, weight=weight) for n in near)]) + ")"


@dataclass(frozen=True)
class Query:
    """A search text, prepared: the text (for the name match) and its tsqueries (as tsquery text)."""

    text: str
    ranked: str  # the query's own words, as prefixes: what ts_rank scores
    all_in_name: str  # every word (or a near word) in the name
    all_words: str  # every word anywhere
    any_word: str  # some word anywhere
    words: int

    @classmethod
    def build(cls, text: str, near: dict[str, list[str]]) -> Query | None:
        """From the query text and its words with their near words; None without words."""
        if not near:
            return None
        groups = [_group(word, others) for word, others in near.items()]
        return cls(
            text=text,
            ranked=" | ".join(_typed(word) for word in near),
            all_in_name=" & ".join(_group(word, others, "A") for word, others in near.items()),
            all_words=" & ".join(groups),
            any_word=" | ".join(groups),
            words=len(near),
        )


@dataclass(frozen=True)
class _Kind:
    """Where one kind of result lives and how a row of it is shown."""

    source: str  # FROM, aliased: the rows to score
    hit_id: str
    doc: str  # the tsvector
    name: str  # the name(s) the query's trigrams are matched against
    visible: str  # WHERE: what the viewer may see
    show: str  # the joins that show a hit (``hits.hit_id``), made for the page's rows only
    columns: str  # what they select
    shape: Callable[[Record], dict[str, Any]]
    other_fields: bool = True  # whether the tsvector holds more than names (else tier 1 is empty)
    by_viewer: bool = False  # whether ``visible`` depends on the viewer ($9)


def _room(r: Record) -> dict[str, Any]:
    return {
        "id": str(r["hit_id"]),
        "slug": r["slug"],
        "name": r["name"],
        "description": r["description"],
        "genres": list(r["genres"]),
        "tags": list(r["tags"]),
        "visibility": r["visibility"],
    }


def _artist(r: Record) -> dict[str, Any]:
    return {"user": user_ref(r, "user_"), "artist_name": r["artist_name"], "verified": r["verified"]}


def _playlist(r: Record) -> dict[str, Any]:
    return {
        "id": str(r["hit_id"]),
        "name": r["name"],
        "description": r["description"],
        "is_public": r["is_public"],
        "items_count": r["items_count"],
        "owner": user_ref(r, "owner_"),
    }


def _user(r: Record) -> dict[str, Any]:
    ref = user_ref(r, "user_")
    assert ref is not None
    return ref


_USER_OF_HIT = "JOIN users u ON u.id = hits.hit_id LEFT JOIN profiles p ON p.user_id = hits.hit_id"

_KINDS: dict[str, _Kind] = {
    "rooms": _Kind(
        source="rooms r",
        hit_id="r.id",
        doc="r.search_doc",
        name="r.name",
        # Never unlisted; private (by type or visibility) only for the owner and members.
        visible="""r.deleted_at IS NULL AND r.visibility <> 'unlisted'
                   AND ((r.visibility = 'public' AND r.type <> 'private') OR r.owner_id = $9
                        OR EXISTS (SELECT 1 FROM room_memberships m
                                   WHERE m.room_id = r.id AND m.user_id = $9))""",
        show="JOIN rooms r ON r.id = hits.hit_id",
        columns="r.slug, r.name, r.description, r.genres, r.tags, r.visibility",
        shape=_room,
        by_viewer=True,
    ),
    "artists": _Kind(
        source="artist_profiles a",
        hit_id="a.user_id",
        doc="a.search_doc",
        name="a.artist_name",
        visible="TRUE",
        show=f"JOIN artist_profiles a ON a.user_id = hits.hit_id {_USER_OF_HIT}",
        columns=f"a.artist_name, a.verified, {user_ref_columns('u', 'p', 'user_')}",
        shape=_artist,
        other_fields=False,
    ),
    "playlists": _Kind(
        source="playlists pl",
        hit_id="pl.id",
        doc="pl.search_doc",
        name="pl.name",
        # The rule of storage.playlists: public, or the viewer owns or collaborates on it.
        visible="""(pl.is_public OR pl.owner_id = $9
                    OR EXISTS (SELECT 1 FROM playlist_collaborators c
                               WHERE c.playlist_id = pl.id AND c.user_id = $9))""",
        show="""JOIN playlists pl ON pl.id = hits.hit_id JOIN users u ON u.id = pl.owner_id
                LEFT JOIN profiles p ON p.user_id = pl.owner_id""",
        columns="pl.name, pl.description, pl.is_public, pl.items_count, "
        + user_ref_columns("u", "p", "owner_"),
        shape=_playlist,
        by_viewer=True,
    ),
    "tracks": _Kind(
        source="track_refs t",
        hit_id="t.id",
        doc="t.search_doc",
        name="t.title || ' ' || t.artist",
        visible="TRUE",
        show="JOIN track_refs t ON t.id = hits.hit_id",
        columns=TRACK_COLUMNS,
        shape=lambda r: {"track": track(r)},
    ),
    "users": _Kind(
        source="profiles p",  # username and display name, both (migrations 016, 018)
        hit_id="p.user_id",
        doc="p.search_doc",
        name="p.search_name",
        visible="TRUE",
        show=_USER_OF_HIT,
        columns=user_ref_columns("u", "p", "user_"),
        shape=_user,
        other_fields=False,
    ),
}


def _tier_sql(kind: _Kind) -> str:
    """One tier of one kind. $1 the query text, $2 the tier, $3 what the rows match, $4
    what they do not (the tiers above), $5 and $6 the cursor (score, id) or nulls, $7 the limit,
    $8 the words ts_rank scores, $9 the viewer (kinds seen :attr:`_Kind.by_viewer`). Candidates
    carry only their id and score; only the page's rows are joined to what shows them."""
    doc = kind.doc
    text = f"least(ts_rank({doc}, $8::tsquery), 1)::double precision"
    name = f"(0.6 * word_similarity($1::text, {kind.name}) + 0.4 * similarity($1::text, {kind.name}))"
    return f"""
        SELECT hits.hit_id, hits.score, {kind.columns}
        FROM (
            SELECT * FROM (
                SELECT {kind.hit_id} AS hit_id,
                       ($2::integer + 0.999 * (0.5 * {text} + 0.5 * {name})) / 3 AS score
                FROM {kind.source}
                WHERE {kind.visible} AND {doc} @@ $3::tsquery
                  AND ($4::tsquery IS NULL OR NOT {doc} @@ $4::tsquery)
                OFFSET 0) scored
            WHERE $5::double precision IS NULL OR (score, hit_id) < ($5, $6::uuid)
            ORDER BY score DESC, hit_id DESC
            LIMIT $7) hits
        {kind.show}
        ORDER BY hits.score DESC, hits.hit_id DESC"""


_SQL = {name: _tier_sql(kind) for name, kind in _KINDS.items()}


def _tiers(kind: _Kind, query: Query) -> list[tuple[int, str, str | None]]:
    """(tier, match, exclude) for the tiers that can hold anything."""
    tiers: list[tuple[int, str, str | None]] = [(2, query.all_in_name, None)]
    if kind.other_fields:
        tiers.append((1, query.all_words, query.all_in_name))
    if query.words > 1:
        tiers.append((0, query.any_word, query.all_words))
    return tiers


# The search's rows are read through indexes and are in memory, so a random page costs about what
# a sequential one does (with the default 4, the planner scans all rooms to find 1% of them), and
# a plan is made for each query's own tsqueries (a generic plan would guess their selectivity).
# pg_trgm's % is similarity() >= its threshold, said here rather than left to the server's default.
_PLANNER = (
    "SET LOCAL random_page_cost = 1.1; SET LOCAL plan_cache_mode = force_custom_plan; "
    f"SET LOCAL pg_trgm.similarity_threshold = {NEAR_THRESHOLD}"
)


async def _prepare(conn: asyncpg.Connection, text: str) -> Query | None:
    """The query's words (the first MAX_WORDS), each with the vocabulary's words most like it."""
    await conn.execute(_PLANNER)
    rows = await conn.fetch(
        """WITH words AS (
               SELECT w FROM unnest(tsvector_to_array(to_tsvector('simple', $1))) AS w LIMIT $2)
           SELECT w, ARRAY(SELECT s.word FROM search_words s
                           WHERE s.word % w AND s.word <> w
                           ORDER BY similarity(s.word, w) DESC, s.word
                           LIMIT $3) AS near
           FROM words""",
        text,
        MAX_WORDS,
        NEAR_WORDS,
    )
    if not rows:
        return None
    return Query.build(text, {r["w"]: list(r["near"]) for r in rows})


async def _hits(
    conn: asyncpg.Connection,
    name: str,
    query: Query,
    viewer: uuid.UUID | None,
    limit: int,
    after: tuple[float, uuid.UUID] | None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` hits of one kind after the cursor, best first, each with its sort key."""
    kind = _KINDS[name]
    rows: list[Record] = []
    for tier, match, exclude in _tiers(kind, query):
        if after is not None and tier / 3 > after[0]:
            continue  # every row of this tier scores above the cursor: served already
        args: list[Any] = [query.text, tier, match, exclude, *(after or (None, None))]
        args += [limit - len(rows), query.ranked]
        if kind.by_viewer:
            args.append(viewer)
        rows += await conn.fetch(_SQL[name], *args)
        if len(rows) >= limit:
            break
    return [{**kind.shape(r), "score": r["score"], "_key": (r["score"], str(r["hit_id"]))} for r in rows]


class Search:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(
        self,
        name: str,
        text: str,
        viewer: uuid.UUID | None,
        limit: int,
        after: tuple[float, uuid.UUID] | None,
    ) -> list[dict[str, Any]]:
        """Up to ``limit + 1`` hits of one kind (the extra one says there is a next page)."""

        async def unit(conn: asyncpg.Connection) -> list[dict[str, Any]]:
            query = await _prepare(conn, text)
            return [] if query is None else await _hits(conn, name, query, viewer, limit + 1, after)

        return await self._db.run(unit)

    async def grouped(
        self, text: str, viewer: uuid.UUID | None, each: int
    ) -> dict[str, list[dict[str, Any]]]:
        """The best ``each`` hits of every kind; the query is prepared once for all of them."""

        async def unit(conn: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
            query = await _prepare(conn, text)
            out: dict[str, list[dict[str, Any]]] = {}
            for name in KINDS:
                hits = [] if query is None else await _hits(conn, name, query, viewer, each, None)
                out[name] = [{k: v for k, v in hit.items() if k != "_key"} for hit in hits]
            return out

        return await self._db.run(unit)
