"""Probe: global search latency over a large, realistically named world.

    python -m bench.search_probe --spawn                       # start a fresh server, seed, measure, stop
    python -m bench.search_probe --http http://127.0.0.1:8000 \\
        --dsn 'postgresql://postgres@/postgres?host=.seda/pg' --rooms 100000 --users 100000

Seeds rooms, users (with display names), artists, tracks and playlists straight into
the server's database with COPY (registering 100,000 users over the API would cost
hours of Argon2); the search columns and the vocabulary are kept by the tables
themselves, so seeding goes through the same generated columns and triggers as any
write. Names are drawn from word lists (genres, moods, places, first and last names,
real and made-up artists), so queries meet the mix of common and rare words a real
catalogue has; the reader is a member of 50 private rooms and collaborates on 50 private
playlists. A database an earlier run seeded is measured again, not seeded twice. After
``VACUUM ANALYZE`` (what autovacuum would soon do) it searches over REST like any client,
as a guest and signed in: grouped (``/search?q=``), typed (``&type=rooms`` …) and the
typed page after, for exact words, fragments and typos. Prints p50/p95/p99 per kind;
``--json FILE`` writes the same.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.stats import latency_summary
from bench.target import SpawnedServer, seda_command

SEEDED = "seeded-search"  # the seeded users' password hash: marks a world already seeded

GENRES = (
    "jazz", "soul", "funk", "house", "deep house", "techno", "ambient", "lo-fi", "hip-hop", "r&b",
    "disco", "reggae", "dub", "drum and bass", "jungle", "garage", "grime", "afrobeat", "amapiano",
    "bossa nova", "samba", "salsa", "cumbia", "k-pop", "city pop", "synthwave", "vaporwave", "indie",
    "rock", "punk", "metal", "shoegaze", "dream pop", "folk", "country", "blues", "gospel",
    "classical", "opera", "baroque", "trance", "dubstep", "trap", "drill", "electro", "breakbeat",
    "idm", "minimal", "acid", "krautrock", "psychedelic", "surf", "ska", "emo", "grunge", "bluegrass",
    "flamenco", "tango", "highlife", "zouk", "dancehall", "neo soul", "chillhop", "italo disco",
)  # fmt: skip
TIMES = (
    "late night", "early morning", "sunday morning", "midnight", "after hours", "sunset", "sunrise",
    "rainy day", "friday night", "weekend", "lazy afternoon", "twilight", "saturday night", "monday",
)  # fmt: skip
PLACES = (
    "cellar", "lounge", "basement", "rooftop", "garden", "club", "bar", "cafe", "attic", "warehouse",
    "bunker", "den", "loft", "kitchen", "terrace", "beach", "studio", "station", "corner", "hideout",
    "library", "balcony", "harbour", "arcade", "motel", "diner", "observatory", "greenhouse",
)  # fmt: skip
ADJECTIVES = (
    "deep", "smooth", "mellow", "chill", "dark", "bright", "golden", "cosmic", "electric", "velvet",
    "dusty", "warm", "cold", "neon", "analog", "hazy", "groovy", "soulful", "raw", "lush", "funky",
    "moody", "dreamy", "heavy", "sweet", "wild", "quiet", "loud", "lazy", "slow", "fresh", "vintage",
    "underground", "tropical", "frozen", "silver", "crimson", "lunar", "solar", "midnight", "hidden",
)  # fmt: skip
NOUNS = (
    "vibes", "sessions", "grooves", "beats", "tunes", "radio", "hour", "collective", "society",
    "sound system", "jams", "mixtape", "selects", "classics", "essentials", "frequencies", "waves",
    "records", "crates", "diggers", "dreams", "nights", "stories", "rhythms", "echoes", "signals",
    "rituals", "journeys", "moments", "gems", "cuts", "edits", "dubs", "tapes", "spins", "rotations",
)  # fmt: skip
FIRST = (
    "maria", "jose", "ana", "luis", "carlos", "sofia", "lucas", "emma", "noah", "olivia", "liam", "ava",
    "mia", "ethan", "amelia", "james", "isabella", "benjamin", "charlotte", "elijah", "harper", "mateo",
    "camila", "leo", "aria", "kenji", "yuki", "hana", "sora", "min", "jin", "wei", "li", "chen", "arjun",
    "priya", "ravi", "anika", "omar", "fatima", "yusuf", "aisha", "kwame", "ama", "kofi", "zara", "ines",
    "pedro", "joao", "beatriz", "tiago", "nina", "oskar", "freya", "astrid", "erik", "lena", "jonas",
    "mila", "felix", "clara", "hugo", "chloe", "louis", "jade", "theo", "manon", "nadia", "ivan", "olga",
    "dmitri", "katya", "pavel", "marta", "piotr", "zofia", "tomas", "eva", "sean", "niamh", "cian",
    "aoife", "rhys", "seren", "dylan", "megan", "kai", "leilani", "tane", "aroha", "mason", "lily",
    "jack", "grace", "oliver", "ruby", "henry", "ella", "samuel", "zoe", "daniel", "layla", "david",
)  # fmt: skip
LAST = (
    "garcia", "silva", "santos", "lopez", "martinez", "rodriguez", "smith", "johnson", "williams",
    "brown", "jones", "miller", "davis", "wilson", "anderson", "taylor", "thomas", "moore", "martin",
    "jackson", "white", "harris", "clark", "lewis", "walker", "hall", "young", "king", "wright", "scott",
    "green", "baker", "adams", "nelson", "hill", "campbell", "mitchell", "roberts", "carter", "phillips",
    "tanaka", "suzuki", "sato", "watanabe", "kim", "park", "lee", "wang", "zhang", "liu", "singh",
    "patel", "kumar", "sharma", "khan", "ali", "hassan", "mensah", "owusu", "okafor", "adeyemi",
    "nguyen", "tran", "pham", "muller", "schmidt", "schneider", "fischer", "weber", "meyer", "dubois",
    "moreau", "laurent", "bernard", "rossi", "russo", "ferrari", "esposito", "bianchi", "novak",
    "kowalski", "nowak", "ivanov", "petrov", "smirnov", "larsen", "hansen", "nielsen", "johansson",
    "murphy", "kelly", "obrien", "byrne", "jones", "evans", "davies", "morgan", "hughes", "costa",
)  # fmt: skip
REAL_ARTISTS = (
    "Kaytranada", "Floating Points", "Nils Frahm", "Bonobo", "Four Tet", "Khruangbin", "Little Simz",
    "Burna Boy", "Peggy Gou", "Caribou", "Jamie xx", "Moses Sumney", "Arooj Aftab", "Nubya Garcia",
    "Kamasi Washington", "Thundercat", "Anderson .Paak", "Erykah Badu", "Tems", "Rosalía", "Bad Bunny",
    "Fred again..", "Overmono", "Burial", "Aphex Twin", "Boards of Canada", "Sade", "Stereolab",
    "Massive Attack", "Portishead", "Daft Punk", "Air", "Röyksopp", "Sigur Rós", "Björk", "Mdou Moctar",
    "Tinariwen", "Fela Kuti", "Tony Allen", "Ali Farka Touré", "Fatoumata Diawara", "Mulatu Astatke",
    "Hiroshi Yoshimura", "Mariya Takeuchi", "Tatsuro Yamashita", "Ryuichi Sakamoto", "Yellow Magic Orchestra",
    "Cocteau Twins", "Slowdive", "My Bloody Valentine", "Beach House", "Tame Impala", "Men I Trust",
    "Alfa Mist", "Yussef Dayes", "Tom Misch", "Ezra Collective", "Sault", "Jorja Smith", "Cleo Sol",
)  # fmt: skip
ACTIVITIES = ("studying", "running", "cooking", "coding", "the commute", "sleeping", "rainy days", "dinner")
PROBE_QUERIES: dict[str, tuple[str, ...]] = {
    "exact": ("late night jazz", "deep house", "techno bunker", "bonobo", "maria garcia", "sunset", "soul"),
    "fragment": ("jaz", "late ni", "kaytra", "shoeg", "maria_g", "amapi", "rooft"),
    "typo": ("kaytranda", "late nite", "jazz celar", "techo", "bonbo", "shogaze", "marai"),
}  # fmt: skip


def _artist_name(rng: random.Random) -> str:
    first, last = rng.choice(FIRST).title(), rng.choice(LAST).title()
    adjective, noun = rng.choice(ADJECTIVES).title(), rng.choice(NOUNS).title()
    return rng.choice(
        (
            f"{first} {last}",
            f"DJ {first}",
            f"The {adjective} {noun}",
            f"{last} Quartet",
            f"MC {last}",
            f"{adjective}{rng.choice(PLACES)}",
            f"{first} & the {noun}",
        )
    )


def _room(rng: random.Random, artists: list[str]) -> tuple[str, str, list[str], list[str]]:
    """(name, description, genres, tags)"""
    genre, other = rng.choice(GENRES), rng.choice(GENRES)
    place, adjective, noun = rng.choice(PLACES), rng.choice(ADJECTIVES), rng.choice(NOUNS)
    name = rng.choice(
        (
            f"{rng.choice(TIMES)} {genre}",
            f"{genre} {place}",
            f"{adjective} {genre} {noun}",
            f"{rng.choice(FIRST)}'s {genre} {place}",
            f"{genre} & {other}",
            f"{adjective} {noun}",
            f"the {adjective} {place}",
        )
    ).title()
    if rng.random() < 0.2:
        name += rng.choice((f" #{rng.randint(1, 99)}", f" Vol. {rng.randint(1, 12)}", " Live", " Radio"))
    description = rng.choice(
        (
            f"{adjective} {genre} and {other} from the {place}. Come for the {noun}, stay for the company.",
            f"Spinning {rng.choice(artists)} and friends every {rng.choice(TIMES)}.",
            f"A {rng.choice(ADJECTIVES)} little {place} for {genre} heads.",
            "",
        )
    )
    return name[:100], description, sorted({genre, other}), sorted({adjective, rng.choice(ADJECTIVES)})


def _usernames(rng: random.Random, count: int) -> Iterator[tuple[str, str]]:
    """(username, display name): handles built from names, a number added when one is taken."""
    seen: set[str] = set()
    while len(seen) < count:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        handles = (f"{first}_{last}", f"{first}{last}", f"dj{first}", f"{first}{rng.randint(1, 999)}")
        base = rng.choice(handles)
        name = base if base not in seen else f"{base[:24]}{rng.randint(1, 99999)}"
        if name in seen:
            continue
        seen.add(name)
        yield name, rng.choice((f"{first.title()} {last.title()}", f"DJ {first.title()}", first.title(), ""))


def _track_title(rng: random.Random) -> str:
    return rng.choice(
        (
            f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
            rng.choice(TIMES),
            f"{rng.choice(NOUNS)} of the {rng.choice(PLACES)}",
            f"{rng.choice(FIRST)}'s {rng.choice(GENRES)}",
        )
    ).title()


def _playlist(rng: random.Random) -> tuple[str, str | None]:
    genre = rng.choice(GENRES)
    name = rng.choice(
        (
            f"{rng.choice(ADJECTIVES)} {genre}".title(),
            f"{rng.choice(FIRST).title()}'s {genre} picks",
            f"{genre} for {rng.choice(ACTIVITIES)}".capitalize(),
            f"{rng.choice(TIMES).title()} Mix {rng.randint(1, 20)}",
        )
    )
    return name, f"{rng.choice(ADJECTIVES)} {genre} {rng.choice(NOUNS)}" if rng.random() < 0.5 else None


async def _copy(
    conn: asyncpg.Connection, table: str, columns: list[str], rows: list[tuple[Any, ...]]
) -> None:
    await conn.copy_records_to_table(table, columns=columns, records=rows)


@dataclass(frozen=True)
class World:
    rooms: int
    users: int
    artists: int
    tracks: int
    playlists: int


async def seed(conn: asyncpg.Connection, world: World, reader: uuid.UUID) -> None:
    """The world, through COPY: the tables' generated columns and triggers index it as it lands.
    The reader is a member of some private rooms and collaborates on some private playlists."""
    rng = random.Random(1)
    tag = f"s{int(time.time()) % 10**6:x}"
    users = [(uuid.uuid4(), name, display) for name, display in _usernames(rng, world.users)]
    await _copy(
        conn,
        "users",
        ["id", "email", "username", "password_hash"],
        [(uid, f"{name}@{tag}.example.com", name, SEEDED) for uid, name, _ in users],
    )
    await _copy(conn, "profiles", ["user_id", "display_name"], [(uid, d or None) for uid, _, d in users])
    names = list(dict.fromkeys([*REAL_ARTISTS, *(_artist_name(rng) for _ in range(world.artists * 2))]))
    names = names[: world.artists]
    await _copy(
        conn,
        "artist_profiles",
        ["user_id", "artist_name", "verified"],
        [(users[i][0], name, rng.random() < 0.6) for i, name in enumerate(names)],
    )
    rooms = []
    for i in range(world.rooms):
        name, description, genres, tags = _room(rng, names)
        visibility = rng.choices(("public", "unlisted", "private"), (85, 8, 7))[0]
        kind = "private" if visibility == "private" else "public"
        owner = rng.choice(users)[0]
        rooms.append((f"{tag}-{i}", name, description or None, kind, visibility, owner, genres, tags))
    await _copy(
        conn,
        "rooms",
        ["slug", "name", "description", "type", "visibility", "owner_id", "genres", "tags"],
        rooms,
    )
    await _copy(
        conn,
        "track_refs",
        ["provider", "provider_id", "title", "artist", "duration_ms"],
        [
            ("spotify", f"{tag}-{i}", _track_title(rng), rng.choice(names), rng.randint(120_000, 400_000))
            for i in range(world.tracks)
        ],
    )
    await _copy(
        conn,
        "playlists",
        ["owner_id", "name", "description", "is_public"],
        [(rng.choice(users)[0], *_playlist(rng), rng.random() < 0.8) for _ in range(world.playlists)],
    )
    await conn.execute(
        """INSERT INTO room_memberships (room_id, user_id)
           SELECT id, $1 FROM rooms WHERE visibility = 'private' ORDER BY id LIMIT 50""",
        reader,
    )
    await conn.execute(
        """INSERT INTO playlist_collaborators (playlist_id, user_id)
           SELECT id, $1 FROM playlists WHERE NOT is_public ORDER BY id LIMIT 50""",
        reader,
    )


async def seeded(dsn: str, world: World, reader: uuid.UUID) -> dict[str, Any]:
    """Seed unless an earlier run did (then its world is measured again); vacuum and analyze, as
    autovacuum would soon, so plans are made for the tables' real sizes."""
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users WHERE password_hash = $1)", SEEDED):
            await seed(conn, world, reader)
        seeded_s = time.perf_counter() - started
        await conn.execute("VACUUM ANALYZE")
        counts = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM rooms) AS rooms, (SELECT count(*) FROM users) AS users,
                      (SELECT count(*) FROM artist_profiles) AS artists,
                      (SELECT count(*) FROM track_refs) AS tracks,
                      (SELECT count(*) FROM playlists) AS playlists,
                      (SELECT count(*) FROM search_words) AS words"""
        )
        assert counts is not None
        return {**dict(counts), "seed_s": round(seeded_s, 1)}
    finally:
        await conn.close()


async def _timed(client: httpx.AsyncClient, params: dict[str, str], token: str | None) -> tuple[float, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = time.perf_counter()
    r = await client.get("/api/v1/search", params=params, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    r.raise_for_status()
    return elapsed, r.json()


async def measure(client: httpx.AsyncClient, token: str, rounds: int) -> dict[str, dict[str, float]]:
    """Per kind of query (exact, fragment, typo): grouped searches, typed first pages, and the
    typed page after (its ``next_cursor``); half as a guest, half signed in. One round unmeasured."""
    times: dict[str, list[float]] = {}
    types = ("rooms", "users", "artists", "playlists", "tracks")
    for n in range(rounds + 1):
        for kind, queries in PROBE_QUERIES.items():
            for i, q in enumerate(queries):
                who = token if (n + i) % 2 else None
                grouped, _ = await _timed(client, {"q": q}, who)
                params = {"q": q, "type": types[(n + i) % len(types)], "limit": "20"}
                first, page = await _timed(client, params, who)
                later = None
                if page["next_cursor"]:
                    later, _ = await _timed(client, {**params, "cursor": page["next_cursor"]}, who)
                if n == 0:
                    continue  # warm-up
                for row, value in (("grouped", grouped), ("typed", first), ("typed next page", later)):
                    if value is not None:
                        times.setdefault(f"{row} / {kind}", []).append(value)
                        times.setdefault(f"{row} / all", []).append(value)
    return {row: latency_summary(values) for row, values in sorted(times.items())}


async def probe(http: str, dsn: str, world: World, rounds: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=http, timeout=60) as client:
        name = f"sp{int(time.time()) % 10**7}"
        r = await client.post(
            "/api/v1/auth/register",
            json={"email": f"{name}@example.com", "username": name, "password": "correct horse battery"},
        )
        r.raise_for_status()
        token, reader = r.json()["access_token"], uuid.UUID(r.json()["user"]["id"])
        world_seen = await seeded(dsn, world, reader)
        print(f"world: {world_seen}")
        return {"world": world_seen, "latency": await measure(client, token, rounds)}


def _table(result: dict[str, Any]) -> str:
    lines = [f"{'search':<28} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"]
    for row, s in result["latency"].items():
        lines.append(
            f"{row:<28} {s['n']:>5} {s['p50_ms']:>8} {s['p95_ms']:>8} {s['p99_ms']:>8} {s['max_ms']:>8}"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    world = World(args.rooms, args.users, args.artists, args.tracks, args.playlists)
    if not args.spawn:
        return await probe(args.http, args.dsn, world, args.rounds)
    server = SpawnedServer(seda_command(args.seda), data_dir=args.data_dir, env={})
    await server.start()
    try:
        dsn = f"postgresql://postgres@/postgres?host={server.data_dir / 'pg'}"
        return await probe(server.http, dsn, world, args.rounds)
    finally:
        await server.stop()
        server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spawn", action="store_true", help="start a fresh seda serve, measure it, stop it")
    parser.add_argument("--seda", default=None, help="how to run seda (with --spawn)")
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the spawned server's data here")
    parser.add_argument("--http", default="http://127.0.0.1:8000")
    parser.add_argument("--dsn", help="the server's database (embedded: ?host=DATA_DIR/pg)")
    parser.add_argument("--rooms", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--artists", type=int, default=3_000)
    parser.add_argument("--tracks", type=int, default=30_000)
    parser.add_argument("--playlists", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=10, help="measured rounds of the query mix")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()
    if not args.spawn and not args.dsn:
        parser.error("--dsn is required unless --spawn")
    result = asyncio.run(run(args))
    print(_table(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
