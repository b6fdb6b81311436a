"""Probe: feed page latency for a user who follows many people, over a large feed.

    python -m bench.feed_probe --http http://127.0.0.1:8000 \\
        --dsn 'postgresql://postgres@/postgres?host=.seda/pg' --follows 1000 --events 200000

The reader registers and reads over REST like any client. The world it reads is
seeded straight into the server's database (users, rooms and feed events through
the same ``feed_add`` function the triggers use, at times spread over 30 days):
building 200,000 events through the API would take the better part of an hour
of Argon2 and requests, and what is measured here is the read. Prints p50/p95/p99
of the first page and of deep pages (following ``next_cursor``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid

import asyncpg
import httpx

_SEED_ROOMS = 2000


async def seed(dsn: str, reader_id: uuid.UUID, follows: int, events: int, tag: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await conn.execute(
            """INSERT INTO users (email, username, password_hash)
               SELECT $1 || 'u' || n || '@example.com', $1 || 'u' || n, 'seeded'
               FROM generate_series(1, $2) n""",
            tag,
            follows,
        )
        await conn.execute(
            """INSERT INTO follows (follower_id, followee_id, followee_type)
               SELECT $1, id, 'user' FROM users WHERE username LIKE $2 || 'u%'""",
            reader_id,
            tag,
        )
        await conn.execute(
            """INSERT INTO rooms (slug, name, type, visibility, owner_id)
               SELECT $1 || '-' || n, 'Seeded ' || n, 'public', 'public',
                      (SELECT id FROM users WHERE username = $1 || 'u' || (1 + n % $3))
               FROM generate_series(1, $2) n""",
            tag,
            _SEED_ROOMS,
            follows,
        )
        # feed_add keeps groups by time order: seed oldest first.
        await conn.execute(
            """SELECT feed_add('user_joined_room', u.id, r.id, NULL, NULL, NULL, NULL, r.id::text, x.at)
               FROM (SELECT n, now() - interval '30 days' + (n * interval '30 days') / $2 AS at
                     FROM generate_series(1::bigint, $2::bigint) n) x
               JOIN users u ON u.username = $1 || 'u' || (1 + (x.n * 7919) % $3)
               JOIN rooms r ON r.slug = $1 || '-' || (1 + (x.n * 104729) % $4)
               ORDER BY x.n""",
            tag,
            events,
            follows,
            _SEED_ROOMS,
        )
        await conn.execute("ANALYZE")  # as autovacuum would soon: plans for the tables' real sizes
        count = await conn.fetchval("SELECT count(*) FROM feed_events")
        print(f"seeded {follows} follows, {count:,} feed events in {time.perf_counter() - started:.1f} s")
    finally:
        await conn.close()


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def probe(http: str, dsn: str, follows: int, events: int, pages: int, deep: int) -> dict[str, object]:
    tag = f"fp{int(time.time()) % 10**7}x"
    async with httpx.AsyncClient(base_url=http, timeout=60) as client:
        r = await client.post(
            "/api/v1/auth/register",
            json={"email": f"{tag}@example.com", "username": f"{tag}r", "password": "correct horse battery"},
        )
        r.raise_for_status()
        token, reader = r.json()["access_token"], uuid.UUID(r.json()["user"]["id"])
        await seed(dsn, reader, follows, events, tag)
        auth = {"Authorization": f"Bearer {token}"}
        first: list[float] = []
        later: list[float] = []
        shown = 0
        for _ in range(pages):
            cursor = None
            for depth in range(deep):
                params = {"limit": "20", **({"cursor": cursor} if cursor else {})}
                t0 = time.perf_counter()
                r = await client.get("/api/v1/feed", params=params, headers=auth)
                elapsed = (time.perf_counter() - t0) * 1000
                r.raise_for_status()
                body = r.json()
                shown += len(body["items"])
                (first if depth == 0 else later).append(elapsed)
                cursor = body["next_cursor"]
                if cursor is None:
                    break
    result: dict[str, object] = {"follows": follows, "events": events, "items_shown": shown}
    for name, values in (("first page", first), ("deeper pages", later)):
        if values:
            result[name] = {
                "n": len(values),
                "p50_ms": round(statistics.median(values), 1),
                "p95_ms": round(_percentile(values, 95), 1),
                "p99_ms": round(_percentile(values, 99), 1),
                "max_ms": round(max(values), 1),
            }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--http", default="http://127.0.0.1:8000")
    parser.add_argument("--dsn", required=True, help="the server's database (embedded: ?host=DATA_DIR/pg)")
    parser.add_argument("--follows", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--pages", type=int, default=20, help="paging sessions from the first page")
    parser.add_argument("--deep", type=int, default=10, help="pages per session")
    args = parser.parse_args()
    result = asyncio.run(probe(args.http, args.dsn, args.follows, args.events, args.pages, args.deep))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
