"""Probe: how soon an award shows on the boards, while awards stream in.

    python -m bench.award_probe --http http://127.0.0.1:8000 \\
        --dsn 'postgresql://postgres@/postgres?host=.seda/pg' --rate 200 --seconds 10

Writes awards at ``--rate`` per second through ``storage.progression.apply_awards``
(what the journal and the REST paths call, in its own transaction) for seeded
users, and for one award in ten polls the user's standing over REST until the
new score shows: award committed to score visible, p50/p95/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx

from storage.progression import Award, apply_awards


async def probe(http: str, dsn: str, rate: float, seconds: float, users: int) -> dict[str, object]:
    tag = f"aw{int(time.time()) % 10**7}x"
    pool = await asyncpg.create_pool(dsn, min_size=8, max_size=32)
    assert pool is not None
    await pool.execute(
        """INSERT INTO users (email, username, password_hash)
           SELECT $1 || n || '@example.com', $1 || n, 'seeded' FROM generate_series(1, $2) n""",
        tag,
        users,
    )
    ids = [str(r["id"]) for r in await pool.fetch("SELECT id FROM users WHERE username LIKE $1 || '%'", tag)]
    latencies: list[float] = []
    written = 0
    async with httpx.AsyncClient(base_url=http, timeout=30) as client:

        async def award(user_id: str, sample: bool) -> None:
            nonlocal written
            async with pool.acquire() as proxy, proxy.transaction():
                conn: asyncpg.Connection = proxy  # type: ignore[assignment]
                await apply_awards(
                    conn,
                    [Award(user_id, "playlist_add", 5, str(uuid.uuid4()), "probe")],
                    None,
                    datetime.now(UTC),
                )
                score = await conn.fetchval(
                    "SELECT score FROM leaderboard_scores WHERE board = 'global' AND user_id = $1",
                    uuid.UUID(user_id),
                )
            committed = time.perf_counter()
            written += 1
            if not sample:
                return
            while True:
                r = await client.get(f"/api/v1/leaderboards/global/users/{user_id}")
                if r.json()["score"] >= score:
                    latencies.append((time.perf_counter() - committed) * 1000)
                    return

        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < seconds:
            n += 1
            task = asyncio.create_task(award(random.choice(ids), n % 10 == 0))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    await pool.close()
    ordered = sorted(latencies)
    return {
        "awards": written,
        "awards_per_s": round(written / elapsed, 1),
        "award_to_visible_ms": {
            "n": len(ordered),
            "p50": round(statistics.median(ordered), 1),
            "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
            "p99": round(ordered[int(0.99 * (len(ordered) - 1))], 1),
            "max": round(ordered[-1], 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--http", default="http://127.0.0.1:8000")
    parser.add_argument("--dsn", required=True, help="the server's database (embedded: ?host=DATA_DIR/pg)")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(probe(args.http, args.dsn, args.rate, args.seconds, args.users)), indent=2))


if __name__ == "__main__":
    main()
