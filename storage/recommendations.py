"""Recommended rooms, playlists and artists, one SQL query per type (REST.md "Recommendations").

Each query gathers the caller's signals as rows ``(entity, kind, subject, weight)`` in CTEs
joined by UNION ALL, sums the weights per entity, drops what may not be recommended, keeps
the best ``limit`` (score, then id: the same data gives the same answer), and names each
one's strongest signal as its reason (highest weight, then kind in the order below, then
subject). Nothing is loaded into Python but the page.

Signals and weights (per contributing row; an entity's score is the sum of its rows):

=============  ====  ==================================================================
kind           w     rows
=============  ====  ==================================================================
follow         6-10  rooms: each person you follow who owns (10) or is a member of (8)
                     it; playlists: owns it (10) or liked it (6); artists: follows them
colisten       4-7   per room you listened in (present in the last 30 days): n of the
                     people who listened there too, in the last 30 days, were in this
                     room (rooms), liked or own it (playlists), follow them (artists):
                     4 for one, one more for each further one, up to 7, so that one
                     such signal never outweighs a follow ("Popular with people who
                     listen in Late Night Jazz")
played         5     artists: their tracks (by artist name) played in a room you
                     listened in, in the last 30 days ("Played in Late Night Jazz")
like           3     per track you liked: played in the room, in the playlist, or theirs
genre          2/1   per genre of yours, favourite (2) or onboarding (1), that the room
                     has (rooms) or a public room of theirs has (artists)
trending       <1    only when the signals above find fewer than ``limit``: rooms by
                     listeners in the last 7 days, playlists by likes, artists by
                     followers, as n/(n+1), so they always come after any signal
=============  ====  ==================================================================

Bounds keep a query's work flat however much a user follows or listens: the 1,000 newest
follows, 50 memberships / playlists / likes / follows of each, the caller's 200 newest
liked tracks, the 50 rooms listened in most recently, and the 500 co-listeners who shared
the most of those rooms. The windows (30 and 7 days) are counted from the query's now().

Never recommended: the caller's own rooms and playlists, rooms they are a member of or
listened in lately, playlists they collaborate on or already like, artists they follow or
are, anything they dismissed, and what they may not see (deleted, private and unlisted
rooms; private playlists).
"""

from __future__ import annotations

import uuid
from typing import Any

from protocol.recommendations import recommendation_id
from storage.database import Database, Record
from storage.refs import user_ref, user_ref_columns

FOLLOW, COLISTEN, PLAYED, LIKE, GENRE, TRENDING = 1, 2, 3, 4, 5, 6

_RECENT = "now() - interval '30 days'"
_TRENDING_SINCE = "now() - interval '7 days'"
_EACH = 50  # rows taken from each followed person (memberships, playlists, likes, follows)

# ---- signals shared by the three queries (CTEs; $1 is the caller) -----------------------------

_FOLLOWEES = """followees AS (
    SELECT followee_id AS uid FROM follows WHERE follower_id = $1
    ORDER BY created_at DESC, followee_id DESC LIMIT 1000)"""

_MY_GENRES = """my_genres AS (
    SELECT g, max(w) AS w FROM (
        SELECT unnest(favorite_genres) AS g, 2 AS w FROM profiles WHERE user_id = $1
        UNION ALL
        SELECT unnest(onboarding_genres), 1 FROM profiles WHERE user_id = $1) x
    GROUP BY g)"""

# The caller's newest liked tracks.
_MY_LIKED_TRACKS = f"""my_liked_tracks AS (
    SELECT entity_id FROM likes WHERE user_id = $1 AND entity_type = 'track_ref'
    ORDER BY created_at DESC LIMIT {_EACH * 4})"""

# The rooms the caller listened in lately, and who else listened there (not necessarily at the
# same moment: "people who listen in Late Night Jazz").
_COLISTENING = f"""my_rooms AS (
    SELECT p.room_id FROM room_presence p JOIN rooms r ON r.id = p.room_id AND r.deleted_at IS NULL
    WHERE p.user_id = $1 AND coalesce(p.left_at, 'infinity') >= {_RECENT}
    GROUP BY p.room_id ORDER BY max(coalesce(p.left_at, 'infinity')) DESC, p.room_id LIMIT 50),
colistened AS (
    SELECT DISTINCT p.user_id AS uid, p.room_id AS via
    FROM my_rooms m JOIN room_presence p ON p.room_id = m.room_id
    WHERE coalesce(p.left_at, 'infinity') >= {_RECENT} AND p.user_id <> $1),
colisteners AS (
    SELECT c.uid, c.via FROM colistened c
    JOIN (SELECT uid FROM colistened GROUP BY uid ORDER BY count(*) DESC, uid LIMIT 500) best USING (uid))"""

# Rows of every signal CTE: (entity uuid, kind int, sid uuid, stext text, w numeric).
# sid names a user, room or track (by kind); stext a genre.

_ROOM_SEEN = "r.deleted_at IS NULL AND r.visibility = 'public' AND r.type <> 'private'"


def _dismissed(entity_type: str, column: str) -> str:
    return f"""NOT EXISTS (SELECT 1 FROM recommendation_dismissals d WHERE d.user_id = $1
                           AND d.entity_type = '{entity_type}' AND d.entity_id = {column})"""


def _page(signals: str, candidate_join: str, allowed: str, trending: str, summary: str) -> str:
    """The query around a type's signals: sum per entity, filter, best first, reasons, then
    (only when short) trending to fill, and the page's summaries and reason names.

    ``candidate_join`` joins the entity's table to candidates ``c`` (by ``c.entity``),
    ``allowed`` is what may be recommended, ``trending`` selects (entity, score, rank) of
    fillers from the same join, and ``summary`` the page's columns from ``x`` (entity, score,
    kind, sid, stext)."""
    return f"""
WITH {_FOLLOWEES}, {_MY_GENRES}, {_MY_LIKED_TRACKS}, {_COLISTENING},
signals(entity, kind, sid, stext, w) AS ({signals}),
candidates AS (SELECT entity, sum(w) AS score FROM signals GROUP BY entity),
top AS (
    SELECT c.entity, c.score FROM candidates c {candidate_join}
    WHERE {allowed}
    ORDER BY c.score DESC, c.entity LIMIT $2),
reasons AS (
    SELECT DISTINCT ON (s.entity) s.entity, s.kind, s.sid, s.stext
    FROM signals s JOIN top t ON t.entity = s.entity
    ORDER BY s.entity, s.w DESC, s.kind, s.stext, s.sid),
fill AS ({trending}),
picked AS (
    SELECT t.entity, t.score, w.kind, w.sid, w.stext FROM top t JOIN reasons w ON w.entity = t.entity
    UNION ALL
    SELECT f.entity, f.score, {TRENDING}, NULL::uuid, NULL::text FROM fill f
    WHERE NOT EXISTS (SELECT 1 FROM top t WHERE t.entity = f.entity)
    ORDER BY 2 DESC, 1 LIMIT $2)
SELECT x.entity, x.score, x.kind,
       CASE x.kind WHEN {FOLLOW} THEN (SELECT username FROM users WHERE id = x.sid)
                   WHEN {COLISTEN} THEN (SELECT name FROM rooms WHERE id = x.sid)
                   WHEN {PLAYED} THEN (SELECT name FROM rooms WHERE id = x.sid)
                   WHEN {LIKE} THEN (SELECT title || ' by ' || artist FROM track_refs WHERE id = x.sid)
                   ELSE x.stext END AS subject,
       {summary}
ORDER BY x.score DESC, x.entity"""


# ---- rooms ---------------------------------------------------------------------------------

_ROOM_SIGNALS = f"""
    SELECT m.room_id, {FOLLOW}, f.uid, NULL::text, (CASE m.role WHEN 'owner' THEN 10 ELSE 8 END)::numeric
    FROM followees f CROSS JOIN LATERAL (
        SELECT room_id, role FROM room_memberships WHERE user_id = f.uid
        ORDER BY joined_at DESC LIMIT {_EACH}) m
    UNION ALL
    SELECT p.room_id, {COLISTEN}, c.via, NULL, (3 + least(count(DISTINCT c.uid), 4))::numeric
    FROM colisteners c JOIN room_presence p ON p.user_id = c.uid
    WHERE coalesce(p.left_at, 'infinity') >= {_RECENT}
    GROUP BY p.room_id, c.via
    UNION ALL
    SELECT tp.room_id, {LIKE}, l.entity_id, NULL, 3::numeric
    FROM my_liked_tracks l
    JOIN track_plays tp ON tp.track_ref_id = l.entity_id
    GROUP BY tp.room_id, l.entity_id
    UNION ALL
    SELECT r.id, {GENRE}, NULL, g.g, g.w::numeric
    FROM my_genres g JOIN rooms r ON r.genres @> ARRAY[g.g] AND {_ROOM_SEEN}"""

_ROOM_ALLOWED = f"""{_ROOM_SEEN} AND r.owner_id <> $1
    AND NOT EXISTS (SELECT 1 FROM room_memberships m WHERE m.room_id = r.id AND m.user_id = $1)
    AND NOT EXISTS (SELECT 1 FROM my_rooms m WHERE m.room_id = r.id)
    AND {_dismissed("room", "r.id")}"""

_ROOMS = _page(
    _ROOM_SIGNALS,
    "JOIN rooms r ON r.id = c.entity",
    _ROOM_ALLOWED,
    f"""SELECT c.entity, c.n::numeric / (c.n + 1) AS score
        FROM (SELECT p.room_id AS entity, count(DISTINCT p.user_id) AS n FROM room_presence p
              WHERE (SELECT count(*) FROM top) < $2
                AND coalesce(p.left_at, 'infinity') >= {_TRENDING_SINCE} AND p.user_id <> $1
              GROUP BY p.room_id) c
        JOIN rooms r ON r.id = c.entity
        WHERE {_ROOM_ALLOWED}
        ORDER BY c.n DESC, c.entity LIMIT $2""",
    f"""r.slug, r.name, r.description, r.genres, {user_ref_columns("u", "up", "owner_")}
FROM picked x JOIN rooms r ON r.id = x.entity
LEFT JOIN users u ON u.id = r.owner_id LEFT JOIN profiles up ON up.user_id = r.owner_id""",
)

# ---- playlists -----------------------------------------------------------------------------

_PLAYLIST_SIGNALS = f"""
    SELECT pl.id, {FOLLOW}, f.uid, NULL::text, 10::numeric
    FROM followees f CROSS JOIN LATERAL (
        SELECT id FROM playlists WHERE owner_id = f.uid AND is_public
        ORDER BY created_at DESC, id DESC LIMIT {_EACH}) pl
    UNION ALL
    SELECT l.entity_id, {FOLLOW}, f.uid, NULL, 6::numeric
    FROM followees f CROSS JOIN LATERAL (
        SELECT entity_id FROM likes WHERE user_id = f.uid AND entity_type = 'playlist'
        ORDER BY created_at DESC LIMIT {_EACH}) l
    UNION ALL
    SELECT x.pid, {COLISTEN}, x.via, NULL, (3 + least(count(DISTINCT x.uid), 4))::numeric
    FROM (SELECT l.entity_id AS pid, c.uid, c.via
          FROM colisteners c JOIN likes l ON l.user_id = c.uid AND l.entity_type = 'playlist'
          UNION ALL
          SELECT pl.id, c.uid, c.via FROM colisteners c JOIN playlists pl ON pl.owner_id = c.uid) x
    GROUP BY x.pid, x.via
    UNION ALL
    SELECT i.playlist_id, {LIKE}, l.entity_id, NULL, 3::numeric
    FROM my_liked_tracks l
    JOIN playlist_items i ON i.track_ref_id = l.entity_id
    GROUP BY i.playlist_id, l.entity_id"""

_PLAYLIST_ALLOWED = f"""pl.is_public AND pl.owner_id <> $1
    AND NOT EXISTS (SELECT 1 FROM playlist_collaborators pc WHERE pc.playlist_id = pl.id AND pc.user_id = $1)
    AND NOT EXISTS (SELECT 1 FROM likes l WHERE l.user_id = $1 AND l.entity_type = 'playlist'
                    AND l.entity_id = pl.id)
    AND {_dismissed("playlist", "pl.id")}"""

_PLAYLISTS = _page(
    _PLAYLIST_SIGNALS,
    "JOIN playlists pl ON pl.id = c.entity",
    _PLAYLIST_ALLOWED,
    f"""SELECT es.entity_id AS entity, es.likes_count::numeric / (es.likes_count + 1) AS score
        FROM entity_stats es JOIN playlists pl ON pl.id = es.entity_id
        WHERE (SELECT count(*) FROM top) < $2
          AND es.entity_type = 'playlist' AND es.likes_count > 0 AND {_PLAYLIST_ALLOWED}
        ORDER BY es.likes_count DESC, es.entity_id LIMIT $2""",
    f"""pl.name, pl.description, pl.items_count, {user_ref_columns("u", "up", "owner_")}
FROM picked x JOIN playlists pl ON pl.id = x.entity
JOIN users u ON u.id = pl.owner_id LEFT JOIN profiles up ON up.user_id = pl.owner_id""",
)

# ---- artists -------------------------------------------------------------------------------

_ARTIST_SIGNALS = f"""
    SELECT f2.followee_id, {FOLLOW}, f.uid, NULL::text, 10::numeric
    FROM followees f CROSS JOIN LATERAL (
        SELECT followee_id FROM follows WHERE follower_id = f.uid
        ORDER BY created_at DESC, followee_id DESC LIMIT {_EACH}) f2
    UNION ALL
    SELECT f2.followee_id, {COLISTEN}, c.via, NULL, (3 + least(count(DISTINCT c.uid), 4))::numeric
    FROM colisteners c JOIN follows f2 ON f2.follower_id = c.uid
    GROUP BY f2.followee_id, c.via
    UNION ALL
    SELECT a.user_id, {PLAYED}, tp.room_id, NULL, 5::numeric
    FROM my_rooms m JOIN track_plays tp ON tp.room_id = m.room_id AND tp.started_at >= {_RECENT}
    JOIN track_refs t ON t.id = tp.track_ref_id
    JOIN artist_profiles a ON lower(a.artist_name) = lower(t.artist)
    GROUP BY a.user_id, tp.room_id
    UNION ALL
    SELECT a.user_id, {LIKE}, t.id, NULL, 3::numeric
    FROM my_liked_tracks l
    JOIN track_refs t ON t.id = l.entity_id
    JOIN artist_profiles a ON lower(a.artist_name) = lower(t.artist)
    UNION ALL
    SELECT r.owner_id, {GENRE}, NULL, g.g, g.w::numeric
    FROM my_genres g JOIN rooms r ON r.genres @> ARRAY[g.g] AND {_ROOM_SEEN}
    JOIN artist_profiles a ON a.user_id = r.owner_id
    GROUP BY r.owner_id, g.g, g.w"""

# An artist is a user with an artist profile and the artist role (whom one may follow as an artist).
_ARTIST_ALLOWED = f"""au.role = 'artist' AND a.user_id <> $1
    AND NOT EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = $1 AND f.followee_id = a.user_id)
    AND {_dismissed("artist", "a.user_id")}"""

_ARTISTS = _page(
    _ARTIST_SIGNALS,
    "JOIN artist_profiles a ON a.user_id = c.entity JOIN users au ON au.id = a.user_id",
    _ARTIST_ALLOWED,
    f"""SELECT a.user_id AS entity, n.n::numeric / (n.n + 1) AS score
        FROM artist_profiles a JOIN users au ON au.id = a.user_id
        LEFT JOIN entity_stats es ON es.entity_type = 'user' AND es.entity_id = a.user_id
        CROSS JOIN LATERAL (SELECT coalesce(es.follows_count, 0) AS n) n
        WHERE (SELECT count(*) FROM top) < $2 AND {_ARTIST_ALLOWED}
        ORDER BY 2 DESC, 1 LIMIT $2""",
    f"""a.artist_name, a.verified, {user_ref_columns("u", "up", "artist_")}
FROM picked x JOIN artist_profiles a ON a.user_id = x.entity
JOIN users u ON u.id = a.user_id LEFT JOIN profiles up ON up.user_id = a.user_id""",
)

_QUERIES = {"room": _ROOMS, "playlist": _PLAYLISTS, "artist": _ARTISTS}


def reason(entity_type: str, kind: int, subject: str | None) -> str:
    """A signal in words: "Because you follow ana", "Because you like jazz", …"""
    if kind == FOLLOW:
        return f"Because you follow {subject}"
    if kind == COLISTEN:
        return f"Popular with people who listen in {subject}"
    if kind == PLAYED:
        return f"Played in {subject}"
    if kind == LIKE:
        return f"Because you liked {subject}"
    if kind == GENRE:
        return f"Because you like {subject}"
    return "Trending now" if entity_type == "room" else "Popular on seda.fm"


def _entity(entity_type: str, r: Record) -> dict[str, Any]:
    if entity_type == "room":
        return {
            "id": str(r["entity"]),
            "slug": r["slug"],
            "name": r["name"],
            "description": r["description"],
            "genres": list(r["genres"]),
            "owner": user_ref(r, "owner_"),
        }
    if entity_type == "playlist":
        return {
            "id": str(r["entity"]),
            "name": r["name"],
            "description": r["description"],
            "owner": user_ref(r, "owner_"),
            "items_count": r["items_count"],
        }
    return {"user": user_ref(r, "artist_"), "artist_name": r["artist_name"], "verified": r["verified"]}


class Recommendations:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def for_user(self, user_id: uuid.UUID, entity_type: str, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` recommendations of ``entity_type`` (room, playlist, artist), best first."""
        rows = await self._db.fetch(_QUERIES[entity_type], user_id, limit)
        return [
            {
                "id": recommendation_id(entity_type, str(r["entity"])),
                "entity_type": entity_type,
                "entity_id": str(r["entity"]),
                "entity": _entity(entity_type, r),
                "score": round(float(r["score"]), 4),
                "reason": reason(entity_type, r["kind"], r["subject"]),
            }
            for r in rows
        ]

    async def dismiss(self, user_id: uuid.UUID, entity_type: str, entity_id: uuid.UUID) -> None:
        """Never recommend the entity to the user again (again is a no-op)."""
        await self._db.execute(
            """INSERT INTO recommendation_dismissals (user_id, entity_type, entity_id)
               VALUES ($1, $2, $3) ON CONFLICT DO NOTHING""",
            user_id,
            entity_type,
            entity_id,
        )

    async def is_artist(self, user_id: uuid.UUID) -> bool:
        """Whether the user is an artist one could be recommended (profile and role)."""
        found = await self._db.fetchval(
            """SELECT true FROM artist_profiles a JOIN users u ON u.id = a.user_id
               WHERE a.user_id = $1 AND u.role = 'artist'""",
            user_id,
        )
        return bool(found)
