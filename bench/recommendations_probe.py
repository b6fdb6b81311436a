"""Probe: recommendation latency for a well-connected user over a large world.

    python -m bench.recommendations_probe --http http://127.0.0.1:8000 \\
        --dsn 'postgresql://postgres@/postgres?host=.seda/pg' --follows 500 --rooms 10000

The reader registers and reads over REST like any client. The world is seeded straight
into the server's database (registering thousands of users over the API would cost an
hour of Argon2, and what is measured is the read): ``--users`` people and ``--rooms``
rooms with 1-3 of 20 genres (a few unlisted, private or deleted), memberships, an hour's
stay or so in a handful of rooms each over the last 30 days, playlists with items and
likes, artists with tracks played in rooms and followers. The reader follows ``--follows``
of them, listened in 30 rooms (the busiest among them), likes 100 tracks and has favourite
and onboarding genres.
A second user with no signal at all reads the cold-start (trending) answer. Everything
is ANALYZEd, then each type is read ``--reads`` times; prints p50/p95/p99 per type and,
with ``--json FILE``, writes the same as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import asyncpg
import httpx

from bench.stats import latency_summary

_GENRES = [
    "jazz", "house", "techno", "ambient", "hip-hop", "soul", "funk", "disco", "rock", "indie",
    "punk", "metal", "folk", "blues", "reggae", "latin", "classical", "pop", "drum-and-bass", "grime",
]  # fmt: skip


async def seed(dsn: str, reader: uuid.UUID, tag: str, *, users: int, rooms: int, follows: int) -> None:
    """The world, in bulk SQL; the same ``tag`` keeps several runs apart in one database."""
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await conn.execute("SELECT setseed(0.42)")
        await conn.execute(
            """INSERT INTO users (email, username, password_hash, role)
               SELECT $1 || 'u' || n || '@example.com', $1 || 'u' || n, 'seeded',
                      CASE WHEN n % 10 = 0 THEN 'artist' ELSE 'user' END
               FROM generate_series(1, $2) n""",
            tag,
            users,
        )
        await conn.execute(
            "INSERT INTO profiles (user_id) SELECT id FROM users WHERE username LIKE $1 || 'u%'", tag
        )
        await conn.execute(
            """INSERT INTO artist_profiles (user_id, artist_name, verified)
               SELECT id, 'Artist ' || username, random() < 0.5
               FROM users WHERE username LIKE $1 || 'u%' AND role = 'artist'""",
            tag,
        )
        await conn.execute(
            # n: the number in the username (every tenth is an artist)
            "CREATE TEMP TABLE seeded_users AS SELECT substr(username, length($1) + 2)::bigint AS n, id "
            "FROM users WHERE username LIKE $1 || 'u%'",
            tag,
        )
        await conn.execute("CREATE INDEX ON seeded_users (n)")
        # rooms: 1-3 genres, the first of the list the most common; 4% private, 4% unlisted, 2% deleted
        await conn.execute(
            """INSERT INTO rooms (slug, name, type, visibility, owner_id, genres, deleted_at)
               SELECT $1 || '-' || n, 'Room ' || n,
                      CASE WHEN n % 25 = 0 THEN 'private' ELSE 'public' END,
                      CASE WHEN n % 25 = 0 THEN 'private' WHEN n % 25 = 1 THEN 'unlisted' ELSE 'public' END,
                      (SELECT id FROM seeded_users WHERE seeded_users.n = 1 + (x.n * 7919) % $3),
                      ARRAY(SELECT DISTINCT ($4::text[])[1 + floor(20 * random() ^ 2)::int]
                            FROM generate_series(1, 1 + x.n % 3)),
                      CASE WHEN n % 50 = 2 THEN now() END
               FROM generate_series(1, $2) AS x(n)""",
            tag,
            rooms,
            users,
            _GENRES,
        )
        await conn.execute(
            "CREATE TEMP TABLE seeded_rooms AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM rooms "
            "WHERE slug LIKE $1 || '-%'",
            tag,
        )
        await conn.execute("CREATE INDEX ON seeded_rooms (n)")
        await conn.execute(
            """INSERT INTO room_memberships (room_id, user_id, role)
               SELECT id, owner_id, 'owner' FROM rooms WHERE slug LIKE $1 || '-%'""",
            tag,
        )
        # each user a member of ~10 rooms and present for up to two hours in ~10 over the last 30
        # days; some rooms are far more popular than others (the lower numbers)
        await conn.execute(
            """INSERT INTO room_memberships (room_id, user_id)
               SELECT r.id, u.id FROM seeded_users u CROSS JOIN generate_series(1, 10) k
               CROSS JOIN LATERAL (SELECT 1 + floor($1 * random() ^ 2)::bigint + 0 * k * u.n AS pick) x
               JOIN seeded_rooms r ON r.n = x.pick
               ON CONFLICT DO NOTHING""",
            rooms,
        )
        await conn.execute(
            """INSERT INTO room_presence (room_id, user_id, joined_at, left_at)
               SELECT r.id, u.id, t.at, t.at + random() * interval '2 hours'
               FROM seeded_users u CROSS JOIN generate_series(1, 10) k
               CROSS JOIN LATERAL (SELECT 1 + floor($1 * random() ^ 3)::bigint + 0 * k * u.n AS pick) x
               JOIN seeded_rooms r ON r.n = x.pick
               CROSS JOIN LATERAL (
                   SELECT now() - random() * interval '30 days' + k * u.n * interval '0 s' AS at) t""",
            rooms,
        )
        # playlists, items and likes; tracks by the artists, played in rooms
        await conn.execute(
            """INSERT INTO playlists (owner_id, name, is_public, items_count)
               SELECT id, 'Mix ' || n, n % 5 <> 0, 10 FROM seeded_users"""
        )
        await conn.execute(
            """INSERT INTO track_refs (provider, provider_id, title, artist, duration_ms)
               SELECT 'deezer', $1 || g.k, 'Track ' || g.k, a.artist_name, 180000
               FROM generate_series(1, $2) AS g(k)
               JOIN seeded_users s ON s.n = 10 * (1 + (g.k * 7) % ($2 / 10))
               JOIN artist_profiles a ON a.user_id = s.id""",
            tag,
            users,
        )
        await conn.execute(
            "CREATE TEMP TABLE seeded_tracks AS SELECT row_number() OVER (ORDER BY id) AS n, id "
            "FROM track_refs WHERE provider_id LIKE $1 || '%'",
            tag,
        )
        await conn.execute("CREATE INDEX ON seeded_tracks (n)")
        await conn.execute(
            """INSERT INTO playlist_items (playlist_id, track_ref_id, rank)
               SELECT p.id, t.id, k * 1024
               FROM (SELECT row_number() OVER (ORDER BY id) AS n, id FROM playlists
                     WHERE owner_id IN (SELECT id FROM seeded_users)) p CROSS JOIN generate_series(1, 10) k
               JOIN LATERAL (SELECT id FROM seeded_tracks WHERE n = 1 + (p.n * 13 + k * 101) % $1) t
                    ON true""",
            users,
        )
        await conn.execute(
            """INSERT INTO track_plays (item_id, room_id, dj_id, track_ref_id, started_at)
               SELECT $1 || k, r.id, r.owner_id, t.id, now() - random() * interval '30 days'
               FROM generate_series(1::bigint, $2 * 5) k
               JOIN LATERAL (SELECT s.id, ro.owner_id FROM seeded_rooms s JOIN rooms ro ON ro.id = s.id
                             WHERE s.n = 1 + (k * 7919) % $2) r ON true
               JOIN LATERAL (SELECT id FROM seeded_tracks WHERE n = 1 + (k * 104729) % $3) t ON true""",
            tag,
            rooms,
            users,
        )
        await conn.execute(
            """INSERT INTO likes (user_id, entity_type, entity_id)
               SELECT u.id, 'playlist', p.id FROM seeded_users u CROSS JOIN generate_series(1, 5) k
               JOIN LATERAL (SELECT id FROM playlists
                             WHERE owner_id = (SELECT id FROM seeded_users
                                               WHERE n = 1 + (u.n * 37 + k * 1013) % $1)) p ON true
               ON CONFLICT DO NOTHING""",
            users,
        )
        # people follow people and artists (~10 each)
        await conn.execute(
            """INSERT INTO follows (follower_id, followee_id, followee_type)
               SELECT u.id, f.id, CASE WHEN k % 2 = 0 THEN 'artist' ELSE 'user' END
               FROM seeded_users u CROSS JOIN generate_series(1, 10) k
               JOIN LATERAL (SELECT id FROM seeded_users
                             WHERE n = CASE WHEN k % 2 = 0 THEN 10 * (1 + (u.n * 3 + k * 59) % ($1 / 10))
                                            ELSE 1 + (u.n * 41 + k * 613) % $1 END) f ON true
               WHERE f.id <> u.id
               ON CONFLICT DO NOTHING""",
            users,
        )
        await conn.execute(
            """INSERT INTO entity_stats (entity_type, entity_id, likes_count)
               SELECT 'playlist', entity_id, count(*) FROM likes WHERE entity_type = 'playlist'
               GROUP BY entity_id
               ON CONFLICT (entity_type, entity_id) DO UPDATE SET likes_count = excluded.likes_count"""
        )
        await conn.execute(
            """INSERT INTO entity_stats (entity_type, entity_id, follows_count)
               SELECT 'user', followee_id, count(*) FROM follows GROUP BY followee_id
               ON CONFLICT (entity_type, entity_id) DO UPDATE SET follows_count = excluded.follows_count"""
        )
        # the reader: follows, 30 rooms listened in, 100 liked tracks, genres
        await conn.execute(
            """INSERT INTO follows (follower_id, followee_id, followee_type)
               SELECT $1, id, 'user' FROM seeded_users WHERE (n + 3) % ($3::bigint / $2) = 0 LIMIT $2""",
            reader,
            follows,
            users,
        )
        await conn.execute(
            """INSERT INTO room_presence (room_id, user_id, joined_at, left_at)
               SELECT r.id, $1, now() - k * interval '20 hours',
                      now() - k * interval '20 hours' + interval '1 hour'
               FROM generate_series(0, 29) k JOIN seeded_rooms r ON r.n = 1 + (k * 331) % $2""",
            reader,
            rooms,
        )
        await conn.execute(
            """INSERT INTO likes (user_id, entity_type, entity_id)
               SELECT $1, 'track_ref', id FROM seeded_tracks WHERE n % ($2::bigint / 100) = 0 LIMIT 100""",
            reader,
            users,
        )
        await conn.execute(
            """UPDATE profiles SET favorite_genres = '{jazz,soul,funk}', onboarding_genres = '{house,disco}'
               WHERE user_id = $1""",
            reader,
        )
        await conn.execute("ANALYZE")  # as autovacuum would soon: plans for the tables' real sizes
        counts = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM rooms) AS rooms,
                      (SELECT count(*) FROM room_memberships) AS members,
                      (SELECT count(*) FROM room_presence) AS stays,
                      (SELECT count(*) FROM likes) AS likes,
                      (SELECT count(*) FROM follows) AS follows,
                      (SELECT count(*) FROM track_plays) AS plays"""
        )
        assert counts is not None
        print(
            f"seeded {counts['rooms']:,} rooms, {counts['members']:,} memberships, "
            f"{counts['stays']:,} stays, {counts['likes']:,} likes, {counts['follows']:,} follows, "
            f"{counts['plays']:,} plays "
            f"in {time.perf_counter() - started:.1f} s"
        )
    finally:
        await conn.close()


_KINDS = (
    ("Because you follow ", "follow"),
    ("Popular with people who listen in ", "co-listening"),
    ("Played in ", "played"),
    ("Because you liked ", "like"),
    ("Because you like ", "genre"),
)


def _kind(reason: str) -> str:
    """The signal a reason names ("Because you follow ana" -> follow)."""
    return next((kind for prefix, kind in _KINDS if reason.startswith(prefix)), reason)


async def _register(client: httpx.AsyncClient, name: str) -> tuple[str, uuid.UUID]:
    r = await client.post(
        "/api/v1/auth/register",
        json={"email": f"{name}@example.com", "username": name, "password": "correct horse battery"},
    )
    r.raise_for_status()
    return r.json()["access_token"], uuid.UUID(r.json()["user"]["id"])


async def probe(http: str, dsn: str, *, users: int, rooms: int, follows: int, reads: int) -> dict[str, Any]:
    tag = f"rp{int(time.time()) % 10**7}x"
    result: dict[str, Any] = {"world": {"users": users, "rooms": rooms, "follows": follows}}
    async with httpx.AsyncClient(base_url=http, timeout=60) as client:
        token, reader = await _register(client, f"{tag}r")
        cold_token, _ = await _register(client, f"{tag}c")
        await seed(dsn, reader, tag, users=users, rooms=rooms, follows=follows)
        for label, auth, kind in (
            ("rooms", token, "rooms"),
            ("playlists", token, "playlists"),
            ("artists", token, "artists"),
            ("rooms, cold start", cold_token, "rooms"),
        ):
            headers = {"Authorization": f"Bearer {auth}"}
            timings: list[float] = []
            reasons: dict[str, int] = {}
            for _ in range(reads):
                t0 = time.perf_counter()
                r = await client.get("/api/v1/recommendations", params={"type": kind}, headers=headers)
                timings.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
            for item in r.json()["items"]:
                kind = _kind(item["reason"])
                reasons[kind] = reasons.get(kind, 0) + 1
            result[label] = {**latency_summary(timings), "items": len(r.json()["items"]), "reasons": reasons}
    return result


def _table(result: dict[str, Any]) -> str:
    lines = [f"{'type':<20}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'items':>7}"]
    for label, row in result.items():
        if label != "world":
            lines.append(
                f"{label:<20}{row['n']:>6}{row['p50_ms']:>9}{row['p95_ms']:>9}{row['p99_ms']:>9}"
                f"{row['max_ms']:>9}{row['items']:>7}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--http", default="http://127.0.0.1:8000")
    parser.add_argument("--dsn", required=True, help="the server's database (embedded: ?host=DATA_DIR/pg)")
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--follows", type=int, default=500)
    parser.add_argument("--reads", type=int, default=200, help="reads per type")
    parser.add_argument("--json", help="write the result here as JSON too")
    args = parser.parse_args()
    result = asyncio.run(
        probe(args.http, args.dsn, users=args.users, rooms=args.rooms, follows=args.follows, reads=args.reads)
    )
    print(_table(result))
    for label, row in result.items():
        if label != "world":
            print(f"{label}: reasons of the last page {row['reasons']}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)


if __name__ == "__main__":
    main()
