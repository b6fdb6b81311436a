"""Personal blocks over REST (REST.md "Blocks"): the list, its limit, and what a block keeps from
the blocker (notifications, followers, the blocked user's messages in the chat history)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import httpx
import pytest
import trio

from server.config import Settings
from server.context import AppContext
from storage.blocks import MAX_BLOCKS
from storage.database import Database
from tests.conftest import BOTH
from tests.live_client import Live, is_event
from tests.test_notifications import notices_before_pong


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, feature_social=True)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused(r: httpx.Response, status: int, code: str, field: str | None = None) -> bool:
    error = r.json()["error"]
    return (
        r.status_code == status
        and error["code"] == code
        and (field is None or error["details"]["field"] == field)
    )


async def test_block_unblock_and_the_list(http: httpx.AsyncClient, live: Live) -> None:
    ana, ana_id = await live.user("ana")
    ben, ben_id = await live.user("ben")
    others = [await live.user(f"other{n}") for n in range(3)]

    r = await http.post("/api/v1/me/blocks", json={"user_id": ben_id}, headers=bearer(ana))
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["user"] == {"id": ben_id, "username": "ben", "display_name": None, "avatar_url": None}
    r = await http.post("/api/v1/me/blocks", json={"user_id": ben_id}, headers=bearer(ana))
    assert r.status_code == 200 and r.json() == first  # again: the first block, unchanged

    r = await http.post("/api/v1/me/blocks", json={"user_id": ana_id}, headers=bearer(ana))
    assert refused(r, 422, "bad_request", "user_id"), r.text
    r = await http.post("/api/v1/me/blocks", json={"user_id": str(uuid.uuid4())}, headers=bearer(ana))
    assert refused(r, 404, "not_found", "user_id"), r.text
    for body in ({"user_id": "nobody"}, {}, {"user_id": ben_id, "extra": 1}):
        r = await http.post("/api/v1/me/blocks", json=body, headers=bearer(ana))
        assert r.status_code == 422 and r.json()["error"]["details"]["field"], (body, r.text)

    for _, other_id in others:
        r = await http.post("/api/v1/me/blocks", json={"user_id": other_id}, headers=bearer(ana))
        assert r.status_code == 201, r.text
    newest_first = [other_id for _, other_id in reversed(others)] + [ben_id]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(3):
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/api/v1/me/blocks", params=params, headers=bearer(ana))).json()
        seen += [entry["user"]["id"] for entry in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first and cursor is None
    assert all(
        set(entry) == {"user", "created_at"}
        for entry in (await http.get("/api/v1/me/blocks", headers=bearer(ana))).json()["items"]
    )
    r = await http.get("/api/v1/me/blocks", params={"cursor": "not-ours"}, headers=bearer(ana))
    assert refused(r, 400, "bad_request", "cursor"), r.text
    r = await http.get("/api/v1/me/blocks", params={"limit": 0}, headers=bearer(ana))
    assert refused(r, 422, "bad_request", "limit"), r.text
    # Nobody else reads them: each caller lists their own.
    assert (await http.get("/api/v1/me/blocks", headers=bearer(ben))).json()["items"] == []

    assert (await http.delete(f"/api/v1/me/blocks/{ben_id}", headers=bearer(ana))).status_code == 204
    r = await http.delete(f"/api/v1/me/blocks/{ben_id}", headers=bearer(ana))
    assert refused(r, 404, "not_found", "user_id"), r.text
    r = await http.delete("/api/v1/me/blocks/not-an-id", headers=bearer(ana))
    assert refused(r, 404, "not_found", "user_id"), r.text
    r = await http.delete(f"/api/v1/me/blocks/{others[0][1]}", headers=bearer(ben))  # not ben's block
    assert refused(r, 404, "not_found", "user_id"), r.text
    left = (await http.get("/api/v1/me/blocks", headers=bearer(ana))).json()["items"]
    assert [entry["user"]["id"] for entry in left] == newest_first[:3]

    for r in (
        await http.get("/api/v1/me/blocks"),
        await http.post("/api/v1/me/blocks", json={"user_id": ben_id}),
        await http.delete(f"/api/v1/me/blocks/{ben_id}"),
        await http.get("/api/v1/me/blocks", headers={"Authorization": "Bearer nonsense"}),
    ):
        assert refused(r, 401, "unauthorized"), r.text


async def test_at_most_a_thousand_blocks(http: httpx.AsyncClient, live: Live, db: Database) -> None:
    ana, ana_id = await live.user("ana")
    rows = await db.fetch(
        """INSERT INTO users (email, username, password_hash)
           SELECT 'many' || g || '@example.com', 'many' || g, 'not-a-hash'
           FROM generate_series(1, $1::int) g RETURNING id""",
        MAX_BLOCKS + 4,
    )
    ids = [str(r["id"]) for r in rows]
    already, racing = ids[: MAX_BLOCKS - 2], ids[MAX_BLOCKS - 2 :]
    await db.execute(
        "INSERT INTO user_blocks (blocker_id, blocked_id) SELECT $1, unnest($2::uuid[])",
        uuid.UUID(ana_id),
        [uuid.UUID(i) for i in already],
    )
    statuses: list[int] = []

    async def block(user_id: str) -> None:
        r = await http.post("/api/v1/me/blocks", json={"user_id": user_id}, headers=bearer(ana))
        assert r.status_code == 201 or refused(r, 409, "conflict", "user_id"), r.text
        statuses.append(r.status_code)

    async with trio.open_nursery() as nursery:  # six at once for the last two places
        for user_id in racing:
            nursery.start_soon(block, user_id)
    assert sorted(statuses) == [201, 201, 409, 409, 409, 409]
    count = "SELECT count(*) FROM user_blocks WHERE blocker_id = $1"
    assert await db.fetchval(count, uuid.UUID(ana_id)) == MAX_BLOCKS
    r = await http.post("/api/v1/me/blocks", json={"user_id": already[0]}, headers=bearer(ana))
    assert r.status_code == 200, r.text  # one already blocked is still 200 at the limit
    listed = (await http.get("/api/v1/me/blocks", params={"limit": 100}, headers=bearer(ana))).json()
    newest = {entry["user"]["id"] for entry in listed["items"][:2]}
    assert newest <= set(racing) and len(newest) == 2 and listed["next_cursor"] is not None

    assert (await http.delete(f"/api/v1/me/blocks/{already[0]}", headers=bearer(ana))).status_code == 204
    left_out = [user_id for user_id in racing if user_id not in newest]
    r = await http.post("/api/v1/me/blocks", json={"user_id": left_out[0]}, headers=bearer(ana))
    assert r.status_code == 201, r.text  # room again after an unblock
    r = await http.post("/api/v1/me/blocks", json={"user_id": left_out[1]}, headers=bearer(ana))
    assert refused(r, 409, "conflict", "user_id"), r.text


async def test_a_blocked_user_cannot_follow_the_blocker(http: httpx.AsyncClient, live: Live) -> None:
    ana, ana_id = await live.user("ana")
    ben, ben_id = await live.user("ben")

    async def follow(token: str, target_id: str) -> httpx.Response:
        return await http.post(
            "/api/v1/social/follow",
            json={"target_id": target_id, "target_type": "user"},
            headers=bearer(token),
        )

    async def followers_of(user_id: str) -> list[str]:
        page = (await http.get(f"/api/v1/social/followers/{user_id}", headers=bearer(ana))).json()
        return [entry["user"]["id"] for entry in page["items"]]

    async def follows_count(user_id: str) -> int:
        stats = (await http.get(f"/api/v1/social/stats/user/{user_id}", headers=bearer(ana))).json()
        count: int = stats["follows_count"]
        return count

    assert (await follow(ben, ana_id)).status_code == 201
    assert await followers_of(ana_id) == [ben_id] and await follows_count(ana_id) == 1
    assert (await follow(ana, ben_id)).status_code == 201

    assert (
        await http.post("/api/v1/me/blocks", json={"user_id": ben_id}, headers=bearer(ana))
    ).status_code == 201
    assert await followers_of(ana_id) == [] and await follows_count(ana_id) == 0  # his follow ended
    r = await follow(ben, ana_id)
    assert refused(r, 403, "forbidden", "target_id"), r.text
    assert await follows_count(ana_id) == 0
    assert await followers_of(ben_id) == [ana_id]  # the blocker's own follow stays
    r = await http.delete(f"/api/v1/social/follow/{ana_id}", headers=bearer(ben))
    assert refused(r, 404, "not_found", "target_id"), r.text

    assert (await http.delete(f"/api/v1/me/blocks/{ben_id}", headers=bearer(ana))).status_code == 204
    assert (await follow(ben, ana_id)).status_code == 201
    assert await follows_count(ana_id) == 1


@pytest.mark.parametrize("server_mode", BOTH, indirect=True)
async def test_a_blocked_users_mentions_and_replies_do_not_notify(
    http: httpx.AsyncClient, live: Live
) -> None:
    ana, ana_id = await live.user("ana")
    ben, ben_id = await live.user("ben")
    cara, cara_id = await live.user("cara")
    room = await live.room(ana)
    r = await http.post("/api/v1/me/blocks", json={"user_id": ben_id}, headers=bearer(ana))
    assert r.status_code == 201
    async with (
        live.connect(room["id"], ana) as a,
        live.connect(room["id"], ben) as b,
        live.connect(room["id"], cara) as c,
    ):
        mine = (await a.chat("anyone about? @ben @cara"))["data"]["message_id"]
        await b.chat("@ana hello")
        await b.chat("a reply", reply_to=mine)
        assert await notices_before_pong(a) == []  # ana blocks ben: neither reached her
        note, _ = await c.until(is_event("notification"))  # ana does not block cara: she is told
        assert note["data"]["type"] == "mention" and note["data"]["actor"]["id"] == ana_id
        await c.chat("@ana me too", reply_to=mine)
        told, _ = await a.until(is_event("notification"))
        assert told["data"]["actor"]["id"] == cara_id
    listed = (await http.get("/api/v1/notifications", headers=bearer(ana))).json()["items"]
    assert [(n["type"], n["actor"]["id"]) for n in listed] == [("reply", cara_id), ("mention", cara_id)]
    bens = (await http.get("/api/v1/notifications", headers=bearer(ben))).json()["items"]
    assert [(n["type"], n["actor"]["id"]) for n in bens] == [("mention", ana_id)]  # a block is one way


async def test_chat_history_hides_blocked_authors_from_the_blocker_only(
    http: httpx.AsyncClient, live: Live
) -> None:
    ana, _ = await live.user("ana")
    ben, ben_id = await live.user("ben")
    cara, cara_id = await live.user("cara")
    room = await live.room(ana)
    async with live.connect(room["id"], ben) as b, live.connect(room["id"], cara) as c:
        said = (await b.chat("from ben"))["data"]
        asked = (await c.chat("from cara"))["data"]
        for sock in (b, c):
            reply, _ = await sock.request("chat.react", {"message_id": asked["message_id"], "emoji": "fire"})
            assert reply["ok"], reply
    r = await http.post("/api/v1/me/blocks", json={"user_id": ben_id}, headers=bearer(ana))
    assert r.status_code == 201
    path = f"/api/v1/rooms/{room['id']}/messages"

    as_ana = (await http.get(path, headers=bearer(ana))).json()["items"]
    assert as_ana[1] == {"id": said["message_id"], "user_id": ben_id, "hidden": True, "seq": said["seq"]}
    assert as_ana[0]["user_id"] == cara_id and as_ana[0]["text"] == "from cara"
    assert as_ana[0]["reactions"] == {"fire": 1}  # ben's reaction is left out for her
    for headers in (bearer(cara), bearer(ben), {}):  # everyone else, and anonymous readers, see it all
        items = (await http.get(path, headers=headers)).json()["items"]
        assert [m["text"] for m in items] == ["from cara", "from ben"] and "hidden" not in items[1]
        assert items[0]["reactions"] == {"fire": 2}
    # The stub keeps its place in the pages: the cursor follows seq through it.
    page = (await http.get(path, params={"limit": 1}, headers=bearer(ana))).json()
    rest = (await http.get(path, params={"cursor": page["next_cursor"]}, headers=bearer(ana))).json()
    assert [m.get("hidden", False) for m in page["items"] + rest["items"]] == [False, True]

    assert (await http.delete(f"/api/v1/me/blocks/{ben_id}", headers=bearer(ana))).status_code == 204
    items = (await http.get(path, headers=bearer(ana))).json()["items"]
    assert items[1]["text"] == "from ben" and items[0]["reactions"] == {"fire": 2}


async def test_a_block_is_handed_to_the_blockers_open_sockets_at_once(
    http: httpx.AsyncClient, live: Live, ctx: AppContext
) -> None:
    """What the REST side owes the live side: each committed change, at once, to the index of the
    sockets (``Cluster.blocks_changed``) that the fan-out consults."""
    ana, _ = await live.user("ana")
    ben, ben_id = await live.user("ben")
    _, cara_id = await live.user("cara")
    room = await live.room(ana)
    assert ctx.user_sockets is not None
    index = ctx.user_sockets.blocks
    async with (
        live.connect(room["id"], ana) as a,
        live.connect(room["id"], ana),
        live.connect(room["id"], ben),
    ):
        await a.request("ping")  # both of ana's sockets are in
        assert index.hiders(ben_id) is None
        for user_id in (ben_id, cara_id):
            r = await http.post("/api/v1/me/blocks", json={"user_id": user_id}, headers=bearer(ana))
            assert r.status_code == 201
        hiders = index.hiders(ben_id)
        assert hiders is not None and len(hiders) == 2  # each of her sockets, none of his
        assert all(index.blocks_of(conn_id) == {ben_id, cara_id} for conn_id in hiders)
        assert (await http.delete(f"/api/v1/me/blocks/{ben_id}", headers=bearer(ana))).status_code == 204
        assert index.hiders(ben_id) is None
        assert all(index.blocks_of(conn_id) == {cara_id} for conn_id in index.hiders(cara_id) or ())


async def test_a_block_takes_effect_on_open_sockets_without_a_reconnect(
    http: httpx.AsyncClient, live: Live
) -> None:
    """In one process the sockets have the new set before the REST answer. (With several nodes,
    the others reload it from the bus after the answer: not asserted here.)"""
    ana, _ = await live.user("ana")
    ben, ben_id = await live.user("ben")
    room = await live.room(ana)
    async with live.connect(room["id"], ana) as a, live.connect(room["id"], ben) as b:
        await b.chat("before")
        before, _ = await a.until(is_event("chat.message"))
        assert before["data"]["text"] == "before"
        r = await http.post("/api/v1/me/blocks", json={"user_id": ben_id}, headers=bearer(ana))
        assert r.status_code == 201
        sent = (await b.chat("after"))["data"]
        hidden, _ = await a.until(is_event("chat.message"))
        assert hidden["seq"] == sent["seq"] == before["seq"] + 1  # no gap
        assert hidden["data"] == {"id": sent["message_id"], "user_id": ben_id, "hidden": True}
        assert (await http.delete(f"/api/v1/me/blocks/{ben_id}", headers=bearer(ana))).status_code == 204
        await b.chat("again")
        shown, _ = await a.until(is_event("chat.message"))
        assert shown["data"]["text"] == "again"
