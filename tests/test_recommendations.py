"""Recommendations over real HTTP on real Postgres (REST.md "Recommendations and linked accounts").

Worlds are built with the repositories and plain SQL (follows, likes, presence stays at chosen
times): what is tested is what the one query per type makes of them. Co-listening from real
sockets, and the presence stays the journal writes, are in tests/test_presence_log.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from server.context import AppContext
from storage.database import Database


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def person(ctx: AppContext, name: str, role: str = "user") -> tuple[str, uuid.UUID]:
    """A user without the Argon2 cost of registering; (token, id)."""
    user = await ctx.users.create(email=f"{name}@example.com", username=name, password_hash="x", role=role)
    return ctx.tokens.issue(user.id, role), user.id


async def artist(ctx: AppContext, db: Database, name: str, artist_name: str) -> uuid.UUID:
    _, user_id = await person(ctx, name, role="artist")
    await db.execute(
        "INSERT INTO artist_profiles (user_id, artist_name, verified) VALUES ($1, $2, true)",
        user_id,
        artist_name,
    )
    return user_id


async def room(
    ctx: AppContext,
    owner: uuid.UUID,
    name: str,
    *,
    genres: list[str] | None = None,
    type: str = "public",
    visibility: str = "public",
) -> uuid.UUID:
    made = await ctx.rooms.create(owner, name=name, type=type, visibility=visibility, genres=genres or [])
    return uuid.UUID(made["id"])


async def playlist(ctx: AppContext, owner: uuid.UUID, name: str, *, public: bool = True) -> uuid.UUID:
    made = await ctx.playlists.create(owner, name, None, public)
    return uuid.UUID(made["id"])


async def follow(ctx: AppContext, follower: uuid.UUID, *followees: uuid.UUID) -> None:
    for followee in followees:
        await ctx.social.follow(follower, followee, "user")


async def like(ctx: AppContext, user: uuid.UUID, entity_type: str, entity_id: uuid.UUID) -> None:
    await ctx.social.like(user, entity_type, entity_id)


async def member(db: Database, room_id: uuid.UUID, user: uuid.UUID) -> None:
    await db.execute("INSERT INTO room_memberships (room_id, user_id) VALUES ($1, $2)", room_id, user)


async def present(db: Database, room_id: uuid.UUID, user: uuid.UUID, *, days_ago: float = 1) -> None:
    """A stay of an hour, ``days_ago`` days ago."""
    await db.execute(
        """INSERT INTO room_presence (room_id, user_id, joined_at, left_at)
           VALUES ($1, $2, now() - make_interval(secs => $3 * 86400),
                   now() - make_interval(secs => $3 * 86400) + interval '1 hour')""",
        room_id,
        user,
        days_ago,
    )


async def track(db: Database, title: str, artist_name: str) -> uuid.UUID:
    found: uuid.UUID = await db.fetchval(
        """INSERT INTO track_refs (provider, provider_id, title, artist, duration_ms)
           VALUES ('deezer', $1, $2, $3, 180000) RETURNING id""",
        uuid.uuid4().hex,
        title,
        artist_name,
    )
    return found


async def played(db: Database, room_id: uuid.UUID, dj: uuid.UUID, track_id: uuid.UUID) -> None:
    await db.execute(
        """INSERT INTO track_plays (item_id, room_id, dj_id, track_ref_id, started_at)
           VALUES ($1, $2, $3, $4, now() - interval '1 day')""",
        uuid.uuid4().hex,
        room_id,
        dj,
        track_id,
    )


async def tastes(db: Database, user: uuid.UUID, favorite: list[str], onboarding: list[str]) -> None:
    await db.execute(
        "UPDATE profiles SET favorite_genres = $2, onboarding_genres = $3 WHERE user_id = $1",
        user,
        favorite,
        onboarding,
    )


async def recs(
    http: httpx.AsyncClient, token: str, kind: str = "rooms", limit: int = 20
) -> list[dict[str, Any]]:
    r = await http.get(
        "/api/v1/recommendations", params={"type": kind, "limit": limit}, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def table(items: list[dict[str, Any]]) -> list[tuple[str, float, str]]:
    """(name, score, reason) of each item, in order."""
    out = []
    for item in items:
        entity = item["entity"]
        name = entity.get("artist_name") or entity["name"]
        out.append((name, item["score"], item["reason"]))
    return out


# ---- the query string ----------------------------------------------------------------------


async def test_a_token_and_a_well_formed_query_are_needed(http: httpx.AsyncClient, ctx: AppContext) -> None:
    token, _ = await person(ctx, "mira")
    assert (await http.get("/api/v1/recommendations")).status_code == 401
    for params, field in (
        ({"type": "tracks"}, "type"),
        ({"limit": "0"}, "limit"),
        ({"limit": "51"}, "limit"),
        ({"kind": "rooms"}, "kind"),
    ):
        r = await http.get("/api/v1/recommendations", params=params, headers=bearer(token))
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["details"]["field"] == field, r.text
    # no type: rooms
    r = await http.get("/api/v1/recommendations", headers=bearer(token))
    assert r.status_code == 200 and r.json() == {"items": []}


# ---- each reason, in words, and the order of the signals -------------------------------------


async def test_rooms_each_signal_gives_its_reason(
    http: httpx.AsyncClient, ctx: AppContext, db: Database
) -> None:
    token, me = await person(ctx, "mira")
    _, ana = await person(ctx, "ana")
    _, bob = await person(ctx, "bob")
    _, carl = await person(ctx, "carl")
    _, dana = await person(ctx, "dana")
    await tastes(db, me, ["jazz"], [])
    await follow(ctx, me, ana)

    ana_jazz = await room(ctx, ana, "Ana Jazz", genres=["jazz"])  # follow + genre
    await room(ctx, ana, "Ana Room")  # ana owns it
    hangout = await room(ctx, dana, "Hangout")
    await member(db, hangout, ana)  # ana is a member
    late_night = await room(ctx, carl, "Late Night Jazz")
    spot = await room(ctx, dana, "Bob Spot")
    for who in (me, bob):
        await present(db, late_night, who)
    await present(db, spot, bob)
    deep_cuts = await room(ctx, dana, "Deep Cuts")
    song = await track(db, "Blue in Green", "Miles")
    await played(db, deep_cuts, dana, song)
    await like(ctx, me, "track_ref", song)
    await room(ctx, dana, "Jazz Cellar", genres=["jazz"])
    await room(ctx, dana, "Polka Place", genres=["polka"])  # no signal, nobody there: not shown

    items = await recs(http, token)
    assert table(items) == [
        ("Ana Jazz", 12.0, "Because you follow ana"),  # its strongest signal names it
        ("Ana Room", 10.0, "Because you follow ana"),
        ("Hangout", 8.0, "Because you follow ana"),
        ("Bob Spot", 4.0, "Popular with people who listen in Late Night Jazz"),
        ("Deep Cuts", 3.0, "Because you liked Blue in Green by Miles"),
        ("Jazz Cellar", 2.0, "Because you like jazz"),
    ]
    first = items[0]
    assert first["id"] == f"room:{ana_jazz}" and first["entity_type"] == "room"
    assert first["entity_id"] == str(ana_jazz)
    entity = first["entity"]
    assert entity["id"] == str(ana_jazz) and entity["genres"] == ["jazz"] and entity["slug"] == "ana-jazz"
    assert entity["owner"]["id"] == str(ana) and entity["owner"]["username"] == "ana"
    # the room you listened in is not recommended back to you
    assert str(late_night) not in {i["entity_id"] for i in items}
    assert [i["entity_id"] for i in await recs(http, token, limit=2)] == [i["entity_id"] for i in items[:2]]
    assert str(spot) == items[3]["entity_id"]


async def test_playlists_each_signal_gives_its_reason_and_what_is_yours_stays_out(
    http: httpx.AsyncClient, ctx: AppContext, db: Database
) -> None:
    token, me = await person(ctx, "mira")
    _, ana = await person(ctx, "ana")
    _, bob = await person(ctx, "bob")
    _, carl = await person(ctx, "carl")
    await follow(ctx, me, ana)
    late_night = await room(ctx, carl, "Late Night Jazz")
    for who in (me, bob):
        await present(db, late_night, who)

    await playlist(ctx, ana, "Ana Mix")  # owned by ana
    await playlist(ctx, ana, "Ana Secret", public=False)  # private: never
    carl_mix = await playlist(ctx, carl, "Carl Mix")
    await like(ctx, ana, "playlist", carl_mix)  # liked by ana
    dana_mix = await playlist(ctx, carl, "Dana Mix")
    await like(ctx, bob, "playlist", dana_mix)  # liked by a co-listener
    eve_mix = await playlist(ctx, carl, "Eve Mix")
    song = await track(db, "Blue in Green", "Miles")
    await db.execute(
        "INSERT INTO playlist_items (playlist_id, track_ref_id, added_by, rank) VALUES ($1, $2, $3, 0)",
        eve_mix,
        song,
        carl,
    )
    await like(ctx, me, "track_ref", song)  # holds a track you like
    mine = await playlist(ctx, me, "My Mix")
    await like(ctx, ana, "playlist", mine)  # yours: never
    shared = await playlist(ctx, ana, "Shared Mix")
    await ctx.playlists.add_collaborator(shared, me, ana)  # you collaborate on it: never
    liked = await playlist(ctx, ana, "Liked Mix")
    await like(ctx, me, "playlist", liked)  # you like it already: never

    items = await recs(http, token, "playlists")
    assert table(items) == [
        ("Ana Mix", 10.0, "Because you follow ana"),
        ("Carl Mix", 6.0, "Because you follow ana"),
        ("Dana Mix", 4.0, "Popular with people who listen in Late Night Jazz"),
        ("Eve Mix", 3.0, "Because you liked Blue in Green by Miles"),
    ]
    assert items[0]["id"].startswith("playlist:") and items[0]["entity_type"] == "playlist"
    assert items[0]["entity"]["owner"]["username"] == "ana" and items[0]["entity"]["items_count"] == 0


async def test_artists_each_signal_gives_its_reason_and_followed_ones_stay_out(
    http: httpx.AsyncClient, ctx: AppContext, db: Database
) -> None:
    token, me = await person(ctx, "mira")
    _, ana = await person(ctx, "ana")
    _, bob = await person(ctx, "bob")
    _, carl = await person(ctx, "carl")
    await tastes(db, me, [], ["jazz"])
    await follow(ctx, me, ana)
    late_night = await room(ctx, carl, "Late Night Jazz")
    for who in (me, bob):
        await present(db, late_night, who)

    star1 = await artist(ctx, db, "star1", "Star One")
    await ctx.social.follow(ana, star1, "artist")  # followed by ana
    star2 = await artist(ctx, db, "star2", "Star Two")
    await ctx.social.follow(bob, star2, "artist")  # followed by a co-listener
    await artist(ctx, db, "star3", "Star Three")
    await played(db, late_night, carl, await track(db, "Third Song", "star three"))  # played where you were
    await artist(ctx, db, "star4", "Star Four")
    await like(
        ctx, me, "track_ref", await track(db, "Fourth Song", "Star Four")
    )  # a track of theirs you like
    star5 = await artist(ctx, db, "star5", "Star Five")
    await room(ctx, star5, "Star Five Live", genres=["jazz"])  # their room has your genre
    star6 = await artist(ctx, db, "star6", "Star Six")
    await ctx.social.follow(ana, star6, "artist")
    await ctx.social.follow(me, star6, "artist")  # you follow them: never

    items = await recs(http, token, "artists")
    assert table(items) == [
        ("Star One", 10.0, "Because you follow ana"),
        ("Star Three", 5.0, "Played in Late Night Jazz"),
        ("Star Two", 4.0, "Popular with people who listen in Late Night Jazz"),
        ("Star Four", 3.0, "Because you liked Fourth Song by Star Four"),
        ("Star Five", 1.0, "Because you like jazz"),
    ]
    assert items[0]["id"] == f"artist:{star1}" and items[0]["entity_id"] == str(star1)
    assert items[0]["entity"]["user"]["username"] == "star1" and items[0]["entity"]["verified"] is True

    # an artist is never recommended themselves
    star_token = ctx.tokens.issue(star6, "artist")
    await follow(ctx, star6, ana)  # ana follows them: "Because you follow ana" would name themselves
    assert str(star6) not in {i["entity_id"] for i in await recs(http, star_token, "artists")}
    assert "Star One" in [n for n, _, _ in table(await recs(http, star_token, "artists"))]


# ---- what is never recommended -------------------------------------------------------------


async def test_rooms_never_recommended(http: httpx.AsyncClient, ctx: AppContext, db: Database) -> None:
    token, me = await person(ctx, "mira")
    _, ana = await person(ctx, "ana")
    _, carl = await person(ctx, "carl")
    await follow(ctx, me, ana)
    visible = await room(ctx, ana, "Visible")
    hidden = [
        await room(ctx, ana, "Private Den", type="private", visibility="private"),
        await room(ctx, ana, "Private Type", type="private"),
        await room(ctx, ana, "Private Visibility", visibility="private"),
        await room(ctx, ana, "Unlisted Nook", visibility="unlisted"),
    ]
    gone = await room(ctx, ana, "Gone Room")
    await db.execute("UPDATE rooms SET deleted_at = now() WHERE id = $1", gone)
    joined = await room(ctx, ana, "Joined Room")
    await member(db, joined, me)
    own = await room(ctx, me, "My Room")
    await member(db, own, ana)
    dismissed = await room(ctx, ana, "Dismissed Room")
    r = await http.post(f"/api/v1/recommendations/room:{dismissed}/dismiss", headers=bearer(token))
    assert r.status_code == 204, r.text
    # trending would bring them back as fillers if it did not apply the same rules
    for room_id in (visible, *hidden, gone, joined, own, dismissed):
        await present(db, room_id, carl)

    items = await recs(http, token)
    assert [(i["entity_id"], i["reason"]) for i in items] == [(str(visible), "Because you follow ana")]


# ---- dismissing ----------------------------------------------------------------------------


async def test_dismiss_is_permanent_even_as_the_signal_grows(
    http: httpx.AsyncClient, ctx: AppContext, db: Database
) -> None:
    token, me = await person(ctx, "mira")
    _, ana = await person(ctx, "ana")
    _, bob = await person(ctx, "bob")
    _, carl = await person(ctx, "carl")
    await follow(ctx, me, ana)
    ana_room = await room(ctx, ana, "Ana Room")
    other = await room(ctx, ana, "Other Room")
    ana_mix = await playlist(ctx, ana, "Ana Mix")
    star = await artist(ctx, db, "star1", "Star One")
    await ctx.social.follow(ana, star, "artist")

    first = await recs(http, token)
    assert [i["id"] for i in first] == sorted([f"room:{ana_room}", f"room:{other}"])
    for rec_id in (f"room:{ana_room}", f"room:{ana_room}", f"playlist:{ana_mix}", f"artist:{star}"):
        r = await http.post(f"/api/v1/recommendations/{rec_id}/dismiss", headers=bearer(token))
        assert r.status_code == 204 and r.content == b"", (rec_id, r.text)  # twice is fine

    # the signal grows: more people you follow are in it, it has your genre, people are there
    await follow(ctx, me, bob, carl)
    for who in (bob, carl):
        await member(db, ana_room, who)
        await ctx.social.follow(who, star, "artist")
        await like(ctx, who, "playlist", ana_mix)
        await present(db, ana_room, who)
    await tastes(db, me, ["jazz"], [])
    await db.execute("UPDATE rooms SET genres = '{jazz}' WHERE id = $1", ana_room)
    assert [i["entity_id"] for i in await recs(http, token)] == [str(other)]
    assert await recs(http, token, "playlists") == []
    assert await recs(http, token, "artists") == []


async def test_dismiss_refuses_what_is_not_there_or_not_yours_to_see(
    http: httpx.AsyncClient, ctx: AppContext, db: Database
) -> None:
    token, me = await person(ctx, "mira")
    _, ana = await person(ctx, "ana")
    private = await room(ctx, ana, "Private Den", type="private", visibility="private")
    secret = await playlist(ctx, ana, "Ana Secret", public=False)
    unlisted = await room(ctx, ana, "Unlisted Nook", visibility="unlisted")
    gone = await room(ctx, ana, "Gone Room")
    await db.execute("UPDATE rooms SET deleted_at = now() WHERE id = $1", gone)
    for rec_id in (
        "nonsense",
        "room:",
        "room:not-a-uuid",
        f"track:{uuid.uuid4()}",
        f"Room:{private}",
        f"room:{str(unlisted).upper()}",  # the id, but not as it was given out
        f"room:{unlisted.hex}",
        f"room:{uuid.uuid4()}",
        f"room:{private}",  # private, and you are not in it
        f"room:{gone}",
        f"playlist:{secret}",
        f"playlist:{uuid.uuid4()}",
        f"artist:{ana}",  # not an artist
    ):
        r = await http.post(f"/api/v1/recommendations/{rec_id}/dismiss", headers=bearer(token))
        assert r.status_code == 404, (rec_id, r.text)
        assert r.json()["error"]["details"]["field"] == "recommendation_id", r.text
    r = await http.post(f"/api/v1/recommendations/room:{unlisted}/dismiss")
    assert r.status_code == 401
    # what you may see you may dismiss, recommendable or not (an unlisted room, a private one you are in)
    await member(db, private, me)
    for room_id in (unlisted, private):
        r = await http.post(f"/api/v1/recommendations/room:{room_id}/dismiss", headers=bearer(token))
        assert r.status_code == 204, r.text
    assert await db.fetchval("SELECT count(*) FROM recommendation_dismissals WHERE user_id = $1", me) == 2


# ---- the same data, the same answer ---------------------------------------------------------


async def test_the_same_data_gives_the_same_answer(
    http: httpx.AsyncClient, ctx: AppContext, db: Database
) -> None:
    token, me = await person(ctx, "mira")
    _, ana = await person(ctx, "ana")
    _, bob = await person(ctx, "bob")
    await tastes(db, me, ["jazz"], ["house"])
    await follow(ctx, me, ana)
    late_night = await room(ctx, bob, "Late Night Jazz")
    await present(db, late_night, me)
    for n in range(12):  # many ties: genre rooms of equal score, rooms a co-listener was in
        await room(ctx, bob, f"Jazz {n}", genres=["jazz"])
        await room(ctx, bob, f"House {n}", genres=["house", "jazz"] if n % 3 == 0 else ["house"])
        listened = await room(ctx, bob, f"Listened {n}")
        await present(db, listened, bob)
    await present(db, late_night, bob)
    for n in range(3):
        await room(ctx, ana, f"Ana {n}")

    first = await recs(http, token, limit=50)
    assert first == await recs(http, token, limit=50)
    assert len(first) == 3 + 12 + 12 + 12
    keys = [(-i["score"], i["entity_id"]) for i in first]
    assert keys == sorted(keys)  # best first, ties by id
    assert len({i["score"] for i in first}) < len(first)  # there were ties to break
    # a shorter page is the start of the longer one
    assert await recs(http, token, limit=7) == first[:7]


# ---- cold start ---------------------------------------------------------------------------


async def test_cold_start_onboarding_genres_then_trending(
    http: httpx.AsyncClient, ctx: AppContext, db: Database
) -> None:
    newbie_token, newbie = await person(ctx, "newbie")
    blank_token, _ = await person(ctx, "blank")
    _, dj = await person(ctx, "djay")
    listeners = [(await person(ctx, f"fan{n}"))[1] for n in range(3)]
    await tastes(db, newbie, [], ["house"])
    await room(ctx, dj, "House Party", genres=["house"])
    busy = await room(ctx, dj, "Busy Room")
    quiet = await room(ctx, dj, "Quiet Room")
    stale = await room(ctx, dj, "Last Month")
    for who in listeners:
        await present(db, busy, who)
    await present(db, quiet, listeners[0])
    await present(db, stale, listeners[1], days_ago=10)  # not in the last 7 days: not trending

    assert table(await recs(http, newbie_token)) == [
        ("House Party", 1.0, "Because you like house"),
        ("Busy Room", 0.75, "Trending now"),
        ("Quiet Room", 0.5, "Trending now"),
    ]
    assert table(await recs(http, blank_token)) == [
        ("Busy Room", 0.75, "Trending now"),
        ("Quiet Room", 0.5, "Trending now"),
    ]
    # trending fills only what the signals leave: a page the signals fill has none
    assert table(await recs(http, newbie_token, limit=1)) == [("House Party", 1.0, "Because you like house")]
    assert str(quiet) not in {i["entity_id"] for i in await recs(http, newbie_token, limit=2)}

    # playlists and artists have their own popular ones
    mix = await playlist(ctx, dj, "Popular Mix")
    for who in listeners:
        await like(ctx, who, "playlist", mix)
    star = await artist(ctx, db, "star1", "Star One")
    await ctx.social.follow(listeners[0], star, "artist")
    assert table(await recs(http, blank_token, "playlists")) == [("Popular Mix", 0.75, "Popular on seda.fm")]
    assert table(await recs(http, blank_token, "artists")) == [("Star One", 0.5, "Popular on seda.fm")]
