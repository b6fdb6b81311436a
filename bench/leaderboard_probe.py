"""Probe: leaderboard reads with many ranked users.

    python -m bench.leaderboard_probe --http http://127.0.0.1:8000 \\
        --dsn 'postgresql://postgres@/postgres?host=.seda/pg' --users 100000

Seeds ``--users`` users with scores straight into the server's database (the
boards' own table, as awards would leave it; registering 100,000 users over the
API would cost hours of Argon2), then reads over REST like any client: the top
100 of the global board and single users' own ranks. Prints p50/p95/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time

import asyncpg
import httpx

from bench.stats import latency_summary


async def seed(dsn: str, users: int, tag: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await conn.execute(
            """INSERT INTO users (email, username, password_hash)
               SELECT $1 || n || '@example.com', $1 || n, 'seeded' FROM generate_series(1, $2) n""",
            tag,
            users,
        )
        await conn.execute(
            """INSERT INTO leaderboard_scores (board, scope, season, user_id, score, reached_at)
               SELECT 'global', '', '', id, 1 + (random() * 5000)::int,
                      now() - random() * interval '90 days'
               FROM users WHERE username LIKE $1 || '%'""",
            tag,
        )
        await conn.execute("VACUUM ANALYZE leaderboard_scores")  # as autovacuum would: index-only counts
        ids = [
            str(r["id"]) for r in await conn.fetch("SELECT id FROM users WHERE username LIKE $1 || '%'", tag)
        ]
        print(f"seeded {len(ids):,} ranked users in {time.perf_counter() - started:.1f} s")
        return ids
    finally:
        await conn.close()


async def probe(http: str, dsn: str, users: int, reads: int) -> dict[str, object]:
    tag = f"lb{int(time.time()) % 10**7}x"
    ids = await seed(dsn, users, tag)
    top: list[float] = []
    own: list[float] = []
    async with httpx.AsyncClient(base_url=http, timeout=60) as client:
        for _ in range(reads):
            t0 = time.perf_counter()
            r = await client.get("/api/v1/leaderboards/global", params={"limit": "100"})
            top.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            assert len(r.json()["items"]) == 100
            t0 = time.perf_counter()
            r = await client.get(f"/api/v1/leaderboards/global/users/{random.choice(ids)}")
            own.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
    return {"ranked_users": users, "top 100": latency_summary(top), "own rank": latency_summary(own)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--http", default="http://127.0.0.1:8000")
    parser.add_argument("--dsn", required=True, help="the server's database (embedded: ?host=DATA_DIR/pg)")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(probe(args.http, args.dsn, args.users, args.reads)), indent=2))


if __name__ == "__main__":
    main()
