"""Global search over real HTTP: the REST.md examples, visibility, freshness, shapes and paging."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from server.context import AppContext
from server.http.pagination import encode_cursor
from storage.database import open_database
from storage.migrations import discover, migrate
from storage.search import Search
from tests.live_client import Live
from tests.pg import PgCluster

SEARCH = "/api/v1/search"
LINKS = ["https://bandcamp.com/someone"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def find(http: httpx.AsyncClient, q: str, token: str | None = None, **params: Any) -> dict[str, Any]:
    r = await http.get(SEARCH, params={"q": q, **params}, headers=bearer(token) if token else {})
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


def room_names(found: dict[str, Any]) -> list[str]:
    return [room["name"] for room in found["rooms"]]


async def artist(http: httpx.AsyncClient, live: Live, ctx: AppContext, username: str, name: str) -> str:
    """A user made an artist the real way: a verification request an admin approves."""
    token, user_id = await live.user(username)
    r = await http.post(
        "/api/v1/artist/verification/request",
        json={"artist_name": name, "links": LINKS},
        headers=bearer(token),
    )
    assert r.status_code == 201, r.text
    admin = await ctx.users.create(
        email=f"admin-{username}@example.com", username=f"admin_{username}", password_hash="x", role="admin"
    )
    r = await http.post(
        f"/api/v1/admin/verification/{r.json()['id']}/approve",
        headers=bearer(ctx.tokens.issue(admin.id, "admin")),
    )
    assert r.status_code == 200, r.text
    return user_id


async def test_the_rest_md_examples(http: httpx.AsyncClient, live: Live, ctx: AppContext) -> None:
    token, _ = await live.user("host")
    for name in ("Late Night Jazz", "Jazz Cellar", "Night Shift Techno", "Late Breakfast", "Bebop Den"):
        await live.room(token, name=name, genres=["jazz"] if "Jazz" in name or "Bebop" in name else [])
    kaytranada = await artist(http, live, ctx, "kay", "Kaytranada")
    await artist(http, live, ctx, "kayla", "Kay Tran Band")

    jaz = await find(http, "jaz")
    assert room_names(jaz)[:2] == ["Jazz Cellar", "Late Night Jazz"]  # the shorter name holds more of it
    assert "Night Shift Techno" not in room_names(jaz)
    late_nite = await find(http, "late nite")
    assert room_names(late_nite)[0] == "Late Night Jazz"
    assert set(room_names(late_nite)) <= {"Late Night Jazz", "Late Breakfast", "Night Shift Techno"}
    typo = await find(http, "kaytranda")
    assert typo["artists"][0]["artist_name"] == "Kaytranada"
    assert typo["artists"][0]["user"]["id"] == kaytranada and typo["artists"][0]["verified"] is True
    # every word in the name first; a word in the name above one only in the genres
    assert room_names(await find(http, "jazz cellar"))[0] == "Jazz Cellar"
    assert room_names(await find(http, "jazz")) == ["Jazz Cellar", "Late Night Jazz", "Bebop Den"]
    assert (await find(http, "kay tran band"))["artists"][0]["artist_name"] == "Kay Tran Band"


async def test_grouped_answer_shape(http: httpx.AsyncClient, live: Live) -> None:
    token, user_id = await live.user("selector")
    r = await http.patch(
        "/api/v1/profiles/me", json={"display_name": "Marimba Selector"}, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    for n in range(7):
        await live.room(token, name=f"Marimba Hour {n}", description="wooden keys", tags=["marimba"])
    r = await http.post(
        "/api/v1/playlists", json={"name": "Marimba Picks", "description": "soft"}, headers=bearer(token)
    )
    assert r.status_code == 201, r.text
    playlist_id = r.json()["id"]
    track = {"url": "https://www.deezer.com/en/track/77", "title": "Marimba Rain", "artist": "Ana"}
    r = await http.post(
        f"/api/v1/playlists/{playlist_id}/items",
        json={"track": {**track, "duration_ms": 200_000}},
        headers=bearer(token),
    )
    assert r.status_code == 201, r.text

    found = await find(http, "marimba")
    assert set(found) == {"rooms", "artists", "playlists", "tracks", "users"}
    assert len(found["rooms"]) == 5 and found["artists"] == []  # up to 5 each
    for hits in found.values():
        scores = [hit["score"] for hit in hits]
        assert all(isinstance(s, float) and 0 <= s <= 1 for s in scores)
        assert scores == sorted(scores, reverse=True)
    room = found["rooms"][0]
    assert set(room) == {"id", "slug", "name", "description", "genres", "tags", "visibility", "score"}
    assert room["tags"] == ["marimba"] and room["visibility"] == "public"
    assert found["playlists"] == [
        {
            "id": playlist_id,
            "name": "Marimba Picks",
            "description": "soft",
            "is_public": True,
            "items_count": 1,
            "owner": {
                "id": user_id,
                "username": "selector",
                "display_name": "Marimba Selector",
                "avatar_url": None,
            },
            "score": found["playlists"][0]["score"],
        }
    ]
    hit = found["tracks"][0]
    assert set(hit) == {"track", "score"} and hit["track"]["title"] == "Marimba Rain"
    assert hit["track"]["provider"] == "deezer" and hit["track"]["provider_id"] == "77"
    user = found["users"][0]  # found by display name
    assert user == {
        "id": user_id,
        "username": "selector",
        "display_name": "Marimba Selector",
        "avatar_url": None,
        "score": user["score"],
    }
    assert (await find(http, "selec"))["users"][0]["id"] == user_id  # and by username
    assert await find(http, "!!! ...") == {k: [] for k in found}  # no words, nothing found


async def test_what_each_caller_may_see(http: httpx.AsyncClient, live: Live) -> None:
    owner, _ = await live.user("owner")
    member, member_id = await live.user("member")
    helper, helper_id = await live.user("helper")
    stranger, _ = await live.user("stranger")
    public = await live.room(owner, name="Okapi Public")
    await live.room(owner, name="Okapi Unlisted", visibility="unlisted")
    private = await live.room(owner, name="Okapi Private", type="private")
    r = await http.post(
        f"/api/v1/rooms/{private['id']}/invite", json={"user_id": member_id}, headers=bearer(owner)
    )
    assert r.status_code == 201, r.text
    r = await http.post(
        "/api/v1/playlists", json={"name": "Okapi Secrets", "is_public": False}, headers=bearer(owner)
    )
    secret = r.json()["id"]
    r = await http.post(
        f"/api/v1/playlists/{secret}/collaborators", json={"user_id": helper_id}, headers=bearer(owner)
    )
    assert r.status_code == 201, r.text
    r = await http.post("/api/v1/playlists", json={"name": "Okapi Open"}, headers=bearer(owner))
    open_id = r.json()["id"]

    def seen(found: dict[str, Any]) -> tuple[set[str], set[str]]:
        return {h["id"] for h in found["rooms"]}, {h["id"] for h in found["playlists"]}

    everyone = ({public["id"]}, {open_id})
    assert seen(await find(http, "okapi")) == everyone
    assert seen(await find(http, "okapi", stranger)) == everyone
    assert seen(await find(http, "okapi", owner)) == ({public["id"], private["id"]}, {open_id, secret})
    assert seen(await find(http, "okapi", member)) == ({public["id"], private["id"]}, {open_id})
    assert seen(await find(http, "okapi", helper)) == ({public["id"]}, {open_id, secret})
    for token in (owner, member, None):  # unlisted never shows, not even to its owner
        typed = await find(http, "okapi unlisted", token, type="rooms")
        assert "Okapi Unlisted" not in {h["name"] for h in typed["items"]}
    r = await http.get(SEARCH, params={"q": "okapi"}, headers=bearer("not-a-token"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


async def test_new_renamed_and_deleted_rooms_show_at_once(http: httpx.AsyncClient, live: Live) -> None:
    token, _ = await live.user("builder")
    room = await live.room(token, name="Quokka Lounge", tags=["marsupial"])
    assert room_names(await find(http, "quokka")) == ["Quokka Lounge"]
    r = await http.patch(f"/api/v1/rooms/{room['id']}", json={"name": "Wombat Lounge"}, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert room_names(await find(http, "quokka")) == []
    assert room_names(await find(http, "wombat")) == ["Wombat Lounge"]
    assert room_names(await find(http, "marsupial")) == ["Wombat Lounge"]
    r = await http.delete(f"/api/v1/rooms/{room['id']}", headers=bearer(token))
    assert r.status_code == 204, r.text
    assert room_names(await find(http, "wombat")) == []


async def test_typed_pages_neither_repeat_nor_skip(http: httpx.AsyncClient, live: Live) -> None:
    token, _ = await live.user("pager")
    # Hits in all three tiers, with equal scores inside each (the same name), so pages cross
    # tiers and break ties by id.
    for _ in range(4):
        await live.room(token, name="Gecko Gecko Club")  # every word in the name
    for _ in range(3):
        await live.room(token, name="Gecko Night", tags=["club"])  # every word, not all in the name
    for _ in range(4):
        await live.room(token, name="Club Zero", description="a gecko or two")  # every word, elsewhere
    for _ in range(3):
        await live.room(token, name="Gecko Den")  # some word
    everything = await find(http, "gecko club", type="rooms", limit=100)
    assert everything["next_cursor"] is None and len(everything["items"]) == 14
    scores = [h["score"] for h in everything["items"]]
    assert scores == sorted(scores, reverse=True)
    assert [h["name"] for h in everything["items"]][:4] == ["Gecko Gecko Club"] * 4
    assert everything["items"][-1]["name"] == "Gecko Den"

    for limit in (1, 3, 5):
        seen: list[str] = []
        cursor = None
        for _ in range(15):  # 14 hits: a cursor that stands still fails here rather than loops
            params: dict[str, Any] = {"type": "rooms", "limit": limit}
            if cursor:
                params["cursor"] = cursor
            page = await find(http, "gecko club", None, **params)
            assert len(page["items"]) <= limit
            seen += [h["id"] for h in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [h["id"] for h in everything["items"]], limit
    users = await find(http, "pager", type="users")
    assert [u["username"] for u in users["items"]] == ["pager"] and users["next_cursor"] is None


async def test_refusals_name_their_field(http: httpx.AsyncClient) -> None:
    async def refused(params: dict[str, Any], status: int, field: str) -> None:
        r = await http.get(SEARCH, params=params)
        assert r.status_code == status, r.text
        assert r.json()["error"]["details"]["field"] == field, r.text

    await refused({}, 422, "q")
    await refused({"q": "   "}, 422, "q")
    await refused({"q": "x" * 201}, 422, "q")
    await refused({"q": "a\x00b"}, 422, "q")
    await refused({"q": "jazz", "type": "songs"}, 422, "type")
    await refused({"q": "jazz", "cursor": "abc"}, 422, "cursor")  # a cursor pages one type
    await refused({"q": "jazz", "limit": "5"}, 422, "limit")
    await refused({"q": "jazz", "type": "rooms", "cursor": "abc"}, 400, "cursor")
    not_a_number = encode_cursor([float("nan"), str(uuid.uuid4())])
    await refused({"q": "jazz", "type": "rooms", "cursor": not_a_number}, 400, "cursor")
    await refused({"q": "jazz", "type": "rooms", "limit": "0"}, 422, "limit")
    await refused({"q": "jazz", "sort": "new"}, 422, "sort")
    assert (await http.get(SEARCH, params={"q": f"  {'x' * 200}  "})).status_code == 200  # trimmed first


async def test_odd_text_is_searched_literally(http: httpx.AsyncClient, live: Live) -> None:
    token, _ = await live.user("oddity")
    await live.room(token, name="Rock 'n' Roll \\ Bar: 100% C++ & R&B!")
    for q in ("rock 'n' roll", "c++ & r&b", "bar:*", "\\", "100%", "'", "!(|&)", "a:* & b"):
        r = await http.get(SEARCH, params={"q": q})
        assert r.status_code == 200, (q, r.text)
    assert room_names(await find(http, "rock 'n' roll"))[0].startswith("Rock 'n' Roll")
    assert room_names(await find(http, "r&b"))[0].startswith("Rock 'n' Roll")


async def test_rows_from_before_the_migration_are_searchable(cluster: PgCluster, aio_loop: None) -> None:
    """Migration 016 fills the search columns and the vocabulary from the rows already there."""
    before = [m for m in discover() if m.version < 16]
    async with cluster.fresh_database(template=None) as dsn, open_database(dsn, max_size=2) as db:
        await migrate(db, before)
        owner = uuid.uuid4()
        await db.execute(
            "INSERT INTO users (id, email, username, password_hash) VALUES ($1, 'o@x.com', 'jazzlover', 'x')",
            owner,
        )
        await db.execute("INSERT INTO profiles (user_id, display_name) VALUES ($1, 'Late Nite Host')", owner)
        await db.execute(
            "INSERT INTO rooms (slug, name, owner_id) VALUES ('ljn', 'Late Night Jazz', $1)", owner
        )
        await migrate(db)
        for q in ("jaz", "late nite", "jazzlovr"):
            found = await Search(db).grouped(q, None, 5)
            assert [u["username"] for u in found["users"]] == ["jazzlover"], q
        assert [r["name"] for r in (await Search(db).grouped("late nite", None, 5))["rooms"]] == [
            "Late Night Jazz"
        ]


async def test_search_runs_on_pg_trgm_from_migration_018(cluster: PgCluster, aio_loop: None) -> None:
    """Rows written under 016's hand-made trigrams stay searchable once 018 moves search onto
    pg_trgm; its functions and columns are gone, and the vocabulary's index serves pg_trgm's %."""
    before = [m for m in discover() if m.version < 18]
    async with cluster.fresh_database(template=None) as dsn, open_database(dsn, max_size=2) as db:
        await migrate(db, before)
        owner = uuid.uuid4()
        await db.execute(
            "INSERT INTO users (id, email, username, password_hash) VALUES ($1, 'k@x.com', 'kaytranada', '')",
            owner,
        )
        await db.execute("INSERT INTO profiles (user_id, display_name) VALUES ($1, 'Louie Celestin')", owner)
        for slug, name in (("jc", "Jazz Cellar"), ("lnj", "Late Night Jazz")):
            sql = "INSERT INTO rooms (slug, name, owner_id) VALUES ($1, $2, $3)"
            await db.execute(sql, slug, name, owner)
        assert 18 in await migrate(db)

        assert await db.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'") == 1
        assert await db.fetchval("SELECT to_regproc('search_trigrams')") is None
        assert (
            await db.fetchval(
                "SELECT count(*) FROM information_schema.columns WHERE column_name = 'search_trgm'"
            )
            == 0
        )
        assert await db.fetchval("SELECT search_name FROM profiles WHERE user_id = $1", owner) == (
            "kaytranada Louie Celestin"
        )
        for q in ("kaytranda", "celestn", "louie"):  # a typo of the username, of the display name
            found = await Search(db).grouped(q, None, 5)
            assert [u["username"] for u in found["users"]] == ["kaytranada"], q
        rooms = await Search(db).grouped("jaz", None, 5)
        assert [r["name"] for r in rooms["rooms"]] == ["Jazz Cellar", "Late Night Jazz"]

        async def plan(sql: str) -> str:
            async with db.transaction() as conn:
                for scan in ("seqscan", "indexscan", "indexonlyscan"):  # a few rows: make it choose
                    await conn.execute(f"SET LOCAL enable_{scan} = off")
                return "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql))

        assert "search_words_trgm_idx" in await plan("SELECT word FROM search_words WHERE word % 'jaz'")


async def test_pages_of_a_crowded_word_are_the_full_ranking(cluster: PgCluster, aio_loop: None) -> None:
    """Only a page's worth of candidates is scored with pg_trgm (the rest are passed over by an
    upper bound of their score, migration 020): pages of a few, cursor after cursor, are exactly
    the ranking of every candidate scored (one page larger than them all), in every tier."""
    adjectives = ("Late", "Smooth", "Deep", "Dark", "Velvet", "Golden", "Lazy", "Late Night")
    genres = ("Jazz", "Jazz & Soul", "Soul", "Jazzy", "Acid Jazz", "Nu Jazz", "Jass", "Nite Jazz")
    places = ("", " Cellar", " Lounge", " Celler", " Basement Sessions", " Radio", " Club #2")
    async with cluster.fresh_database() as dsn, open_database(dsn, max_size=2) as db:
        owner = uuid.uuid4()
        await db.execute(
            "INSERT INTO users (id, email, username, password_hash) VALUES ($1, 'c@x.com', 'crowd', 'x')",
            owner,
        )
        await db.execute("INSERT INTO profiles (user_id, display_name) VALUES ($1, 'Crowd')", owner)
        names = {f"r{i}": f"{adjectives[i % 8]} {genres[i // 8 % 8]}{places[i % 7]}" for i in range(150)}
        names |= {f"x{i}": f"The {places[i % 7] or 'Room'} {i}" for i in range(20)}
        await db.execute(
            """INSERT INTO rooms (slug, name, owner_id)
               SELECT slug, name, $3 FROM unnest($1::text[], $2::text[]) AS r (slug, name)""",
            list(names),
            list(names.values()),
            owner,
        )
        await db.execute(  # words in the tags, genres and description only: the lower tiers
            """UPDATE rooms SET tags = ARRAY['jazz', 'late'], genres = ARRAY['soul'],
                                description = 'cellar jazz all night'
               WHERE slug LIKE 'x%'"""
        )
        titles = [f"{adjectives[i % 8]} {places[i % 7] or 'Tune'}" for i in range(90)]
        await db.execute(
            """INSERT INTO track_refs (provider, provider_id, title, artist, duration_ms)
               SELECT 'spotify', 't' || n, title, artist, 200000
               FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t (title, artist, n)""",
            titles,
            [genres[i // 3 % 8] for i in range(90)],
        )
        search = Search(db)
        for kind in ("rooms", "tracks"):
            for q in ("jazz", "jaz", "late nite jazz", "jazz celar", "soul", "night", "lounge radio"):
                everything = await search.page(kind, q, None, 1000, None)
                assert len(everything) < 1000
                paged: list[dict[str, Any]] = []
                after = None
                while True:
                    page = await search.page(kind, q, None, 4, after)
                    paged += page[:4]
                    if len(page) <= 4:
                        break
                    score, hit = page[3]["_key"]
                    after = (score, uuid.UUID(hit))
                assert [h["_key"] for h in paged] == [h["_key"] for h in everything], (kind, q)
                assert len(everything) > 8, (kind, q)
                grouped = (await search.grouped(q, None, 5))[kind]
                assert [h["score"] for h in grouped] == [h["score"] for h in everything[:5]], (kind, q)
