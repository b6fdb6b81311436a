"""Global search over rooms, artists, playlists, tracks and users (migrations 016, 018 and 020).

A query becomes, once, a few tsqueries: each query word as a prefix (``jaz:*``), or as
any word of the vocabulary that is trigram-similar to it (pg_trgm's ``%``, through a
``gin_trgm_ops`` index: ``kaytranda`` -> ``kaytranada``). Rows are found through their
tsvector's GIN index (the first tier through the name's own tsvector's), in three tiers, best
first:

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

Within a tier, pg_trgm's two functions make the name's trigrams again for every row they
score (several microseconds a row, thousands of rows for a common word), so only a page's
worth of rows is scored with them: every candidate's score is first bounded from above with
the trigrams its name shares with the query, counted from the name's stored trigrams
(migration 020), and a row whose bound cannot reach the page is passed over (``_tier_sql``).
The scores, and so the order and the cursors, are pg_trgm's own, as in 018.
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
    trigrams: str  # pg_trgm's trigrams of the text (show_trgm), as tsvector text: the name match's bound
    ranked: str  # the query's own words, as prefixes: what ts_rank scores
    in_name: str  # every word (or a near word) in the name, for the name's own tsvector
    all_in_name: str  # the same, as words weighted A (the name) in the whole tsvector
    all_words: str  # every word anywhere
    any_word: str  # some word anywhere
    words: int

    @classmethod
    def build(cls, text: str, trigrams: str, near: dict[str, list[str]]) -> Query | None:
        """From the query text, its trigrams and its words with their near words; None without
        words."""
        if not near:
            return None
        groups = [_group(word, others) for word, others in near.items()]
        return cls(
            text=text,
            trigrams=trigrams,
            ranked=" | ".join(_typed(word) for word in near),
            in_name=" & ".join(_group(word, others) for word, others in near.items()),
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
    name_doc: str  # the tsvector of its A words (the name) alone, as indexed (migration 020)
    name: str  # the name(s) the query's trigrams are matched against
    visible: str  # WHERE: what the viewer may see
    show: str  # the joins that show a hit (``hits.hit_id``), made for the page's rows only
    columns: str  # what they select
    shape: Callable[[Record], dict[str, Any]]
    other_fields: bool = True  # whether the tsvector holds more than names (else tier 1 is empty)
    by_viewer: bool = False  # whether ``visible`` depends on the viewer ($10)


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
        name_doc="to_tsvector('simple', r.name)",
        name="r.name",
        # Never unlisted; private (by type or visibility) only for the owner and members.
        visible="""r.deleted_at IS NULL AND r.visibility <> 'unlisted'
                   AND ((r.visibility = 'public' AND r.type <> 'private') OR r.owner_id = $10
                        OR EXISTS (SELECT 1 FROM room_memberships m
                                   WHERE m.room_id = r.id AND m.user_id = $10))""",
        show="JOIN rooms r ON r.id = hits.hit_id",
        columns="r.slug, r.name, r.description, r.genres, r.tags, r.visibility",
        shape=_room,
        by_viewer=True,
    ),
    "artists": _Kind(
        source="artist_profiles a",
        hit_id="a.user_id",
        doc="a.search_doc",
        name_doc="to_tsvector('simple', a.artist_name)",
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
        name_doc="to_tsvector('simple', pl.name)",
        name="pl.name",
        # The rule of storage.playlists: public, or the viewer owns or collaborates on it.
        visible="""(pl.is_public OR pl.owner_id = $10
                    OR EXISTS (SELECT 1 FROM playlist_collaborators c
                               WHERE c.playlist_id = pl.id AND c.user_id = $10))""",
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
        name_doc="to_tsvector('simple', t.title)",
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
        name_doc="to_tsvector('simple', p.search_name)",
        name="p.search_name",
        visible="TRUE",
        show=_USER_OF_HIT,
        columns=user_ref_columns("u", "p", "user_"),
        shape=_user,
        other_fields=False,
    ),
}


def _score(name_match: str) -> str:
    """A row's score within its tier ($2): half its ts_rank, half how its name matches (0..1)."""
    return f"($2::integer + 0.999 * (0.5 * text_rank + 0.5 * ({name_match}))) / 3"


def _tier_sql(kind: _Kind, *, in_name: bool) -> str:
    """One tier of one kind. $1 the query text, $2 the tier, $3 what the rows match (``in_name``:
    in the name's own tsvector, through its index, since the whole tsvector's index would have
    every row holding the words anywhere rechecked for their weight; else in the whole tsvector),
    $4 what they do not (the tiers above), $5 and $6 the cursor (score, id) or nulls, $7 the
    limit, $8 the words ts_rank scores, $9 the query's trigrams (``show_trgm``, as a tsvector),
    $10 the viewer (kinds seen :attr:`_Kind.by_viewer`).

    Every candidate gets its ts_rank and the count of trigrams its name shares with the query
    (its stored ``search_name_trigrams`` and $9: the length of their union, in C). That count
    gives pg_trgm's similarity() exactly and bounds its word_similarity() (a part of the name
    shares at most what all of it does, out of the query's trigrams), so ``bound`` is at least the
    row's score (with a margin for float4). The ``$7`` candidates of highest bound (after the
    cursor) are scored; if there are that many, the least of their scores is a floor the page's
    rows all reach, and the candidates whose bound is below it are passed over; the rest are
    scored with pg_trgm's own functions, as in 018. Only the page's rows are joined to what
    shows them."""
    doc, trgm = kind.doc, kind.doc.replace("search_doc", "search_name_trigrams")
    score = _score("0.6 * word_similarity($1::text, hit_name) + 0.4 * similarity($1::text, hit_name)")
    # The same score with the shared trigrams in place of pg_trgm's two functions: at least as high.
    bound = _score(
        """0.6 * shared / greatest(length($9::tsvector), 1)
           + 0.4 * coalesce(shared / nullif(length($9::tsvector) + trigrams - shared, 0), 0)"""
    )
    return f"""
        WITH candidates AS MATERIALIZED (
            SELECT hit_id, hit_name, text_rank, {bound} + 1e-6 AS bound
            FROM (
                SELECT {kind.hit_id} AS hit_id, {kind.name} AS hit_name,
                       least(ts_rank({doc}, $8::tsquery), 1)::double precision AS text_rank,
                       length({trgm}) AS trigrams,
                       (length({trgm}) + length($9::tsvector)
                        - length({trgm} || $9::tsvector))::double precision AS shared
                FROM {kind.source}
                WHERE {kind.visible} AND {kind.name_doc if in_name else doc} @@ $3::tsquery
                  AND ($4::tsquery IS NULL OR NOT {doc} @@ $4::tsquery)
                OFFSET 0) matched),
        first AS MATERIALIZED (
            SELECT * FROM (
                SELECT hit_id, {score} AS score
                FROM (SELECT * FROM candidates
                      WHERE $5::double precision IS NULL OR bound < $5
                      ORDER BY bound DESC, hit_id DESC
                      LIMIT $7) best
                OFFSET 0) scored
            WHERE $5::double precision IS NULL OR (score, hit_id) < ($5, $6::uuid)),
        floor AS (
            SELECT CASE WHEN count(*) >= $7 THEN min(score) END AS score FROM first)
        SELECT hits.hit_id, hits.score, {kind.columns}
        FROM (
            SELECT * FROM (
                SELECT hit_id, {score} AS score
                FROM candidates
                WHERE bound >= coalesce((SELECT score FROM floor), '-infinity')
                OFFSET 0) scored
            WHERE $5::double precision IS NULL OR (score, hit_id) < ($5, $6::uuid)
            ORDER BY score DESC, hit_id DESC
            LIMIT $7) hits
        {kind.show}
        ORDER BY hits.score DESC, hits.hit_id DESC"""


_SQL = {
    (name, in_name): _tier_sql(kind, in_name=in_name)
    for name, kind in _KINDS.items()
    for in_name in (True, False)
}


def _tiers(kind: _Kind, query: Query) -> list[tuple[int, str, str | None]]:
    """(tier, match, exclude) for the tiers that can hold anything."""
    tiers: list[tuple[int, str, str | None]] = [(2, query.in_name, None)]
    if kind.other_fields:
        tiers.append((1, query.all_words, query.all_in_name))
    if query.words > 1:
        tiers.append((0, query.any_word, query.all_words))
    return tiers


# The search's rows are read through indexes and are in memory, so a random page costs about what
# a sequential one does (with the default 4, the planner scans all rooms to find 1% of them). Each
# statement is planned once per connection (a generic plan): every tier reads its candidates
# through a GIN index whatever the words (nothing else can find them), then scores a page's worth;
# planning it again for each query's own tsqueries cost more (0.3-0.9 ms a statement, up to
# fourteen statements a grouped search) than any of those plans saved.
# pg_trgm's % is similarity() >= its threshold, said here rather than left to the server's default.
_PLANNER = (
    "SET LOCAL random_page_cost = 1.1; SET LOCAL plan_cache_mode = force_generic_plan; "
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
                           LIMIT $3) AS near,
                  array_to_tsvector(show_trgm($1)) AS trigrams
           FROM words""",
        text,
        MAX_WORDS,
        NEAR_WORDS,
    )
    if not rows:
        return None
    return Query.build(text, rows[0]["trigrams"], {r["w"]: list(r["near"]) for r in rows})


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
        args += [limit - len(rows), query.ranked, query.trigrams]
        if kind.by_viewer:
            args.append(viewer)
        rows += await conn.fetch(_SQL[name, tier == 2], *args)
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
