"""Notifications: written with their cause, pushed live to every socket of the user, read over REST."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from server.config import Settings
from storage.database import Database
from storage.progression import Award, Progress, apply_awards
from tests.conftest import BOTH
from tests.live_client import Client, Live, Message, is_event


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, feature_social=True)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def notices_before_pong(sock: Client) -> list[Message]:
    """Every ``notification`` the socket was sent so far: a ping's reply comes after them."""
    _, before = await sock.request("ping")
    return [m for m in before if is_event("notification")(m)]


@pytest.mark.parametrize("server_mode", BOTH, indirect=True)
async def test_mentions_and_replies_reach_the_user_in_another_room(
    http: httpx.AsyncClient, live: Live
) -> None:
    ana, ana_id = await live.user("ana")
    ben, ben_id = await live.user("ben")
    lounge = await live.room(ana, name="Lounge")
    elsewhere = await live.room(ben, name="Elsewhere")
    async with (
        live.connect(lounge["id"], ana) as a1,
        live.connect(elsewhere["id"], ana) as a2,
        live.connect(lounge["id"], ben) as b1,
        live.connect(elsewhere["id"], ben) as b2,
    ):
        sent = await a1.chat("hi @ben and @ana and @nobody_here")
        message_id = sent["data"]["message_id"]
        note, _ = await b2.until(is_event("notification"))  # ben listens in another room
        data = note["data"]
        assert data["type"] == "mention" and data["read_at"] is None
        assert data["actor"] == {"id": ana_id, "username": "ana", "display_name": None, "avatar_url": None}
        assert data["data"] == {"room_id": lounge["id"], "message_id": message_id}
        assert "seq" not in note  # private events carry no seq
        mention, _ = await b1.until(is_event("notification"))  # and on every socket of his
        assert mention["data"]["id"] == data["id"]
        assert (
            await notices_before_pong(a1) == [] and await notices_before_pong(a2) == []
        )  # not for her own act

        reply = await b1.chat("hello back", reply_to=message_id)
        replied, _ = await a2.until(is_event("notification"))
        assert replied["data"]["type"] == "reply" and replied["data"]["actor"]["id"] == ben_id
        assert replied["data"]["data"] == {
            "room_id": lounge["id"],
            "message_id": reply["data"]["message_id"],
            "parent_id": message_id,
        }
        assert await notices_before_pong(b2) == []

    listed = (await http.get("/api/v1/notifications", headers=bearer(ben))).json()
    assert [n["type"] for n in listed["items"]] == ["mention"]
    assert (await http.get("/api/v1/notifications/unread-count", headers=bearer(ben))).json() == {"count": 1}
    theirs = listed["items"][0]["id"]
    r = await http.post(f"/api/v1/notifications/{theirs}/read", headers=bearer(ana))  # someone else's
    assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "notification_id"
    assert (await http.post(f"/api/v1/notifications/{theirs}/read", headers=bearer(ben))).status_code == 204
    assert (await http.get("/api/v1/notifications/unread-count", headers=bearer(ben))).json() == {"count": 0}
    unread = (await http.get("/api/v1/notifications?unread_only=true", headers=bearer(ben))).json()
    assert unread["items"] == []
    assert (await http.post("/api/v1/notifications/read-all", headers=bearer(ana))).json() == {"updated": 1}
    assert (await http.post("/api/v1/notifications/read-all", headers=bearer(ana))).json() == {"updated": 0}
    assert (await http.get("/api/v1/notifications")).status_code == 401


async def test_preferences_suppress_a_type(http: httpx.AsyncClient, live: Live) -> None:
    ana, _ = await live.user("ana")
    ben, _ = await live.user("ben")
    room = await live.room(ana)
    prefs = (await http.get("/api/v1/notifications/preferences", headers=bearer(ben))).json()
    assert prefs["mention"] is True and set(prefs) >= {"follow", "reply", "level_up", "join_request"}
    r = await http.put("/api/v1/notifications/preferences", json={"mention": False}, headers=bearer(ben))
    assert r.status_code == 200 and r.json()["mention"] is False and r.json()["reply"] is True
    for body, field in (
        ({"mention": None}, "mention"),
        ({"shouting": True}, "shouting"),
        ({"reply": "no"}, "reply"),
    ):
        r = await http.put("/api/v1/notifications/preferences", json=body, headers=bearer(ben))
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == field, body
    async with live.connect(room["id"], ana) as a, live.connect(room["id"], ben) as b:
        await a.chat("@ben you there?")
        await b.until(is_event("chat.message"))
        assert await notices_before_pong(b) == []
    assert (await http.get("/api/v1/notifications", headers=bearer(ben))).json()["items"] == []
    await http.put("/api/v1/notifications/preferences", json={"mention": True}, headers=bearer(ben))
    async with live.connect(room["id"], ana) as a, live.connect(room["id"], ben) as b:
        await a.chat("@ben now?")
        note, _ = await b.until(is_event("notification"))
        assert note["data"]["type"] == "mention"


async def test_mentions_are_capped_and_only_for_those_who_can_see_the_room(
    live: Live, http: httpx.AsyncClient
) -> None:
    owner, _ = await live.user("owner")
    outsider, outsider_id = await live.user("outsider")
    names = [f"fan{n:02d}" for n in range(12)]
    ids = [(await live.user(name))[1] for name in names]
    club = await live.room(owner, type="private")
    for user_id in ids:
        r = await http.post(
            f"/api/v1/rooms/{club['id']}/invite", json={"user_id": user_id}, headers=bearer(owner)
        )
        assert r.status_code in (200, 201), r.text
    async with live.connect(club["id"], owner) as sock:
        reply, before = await sock.request(
            "chat.send", {"text": "@outsider " + " ".join(f"@{n}" for n in names)}
        )
        assert reply["ok"], reply
        message = next(m for m in before if is_event("chat.message")(m))
    assert outsider_id not in message["data"]["mentions"]  # cannot see the private room
    assert message["data"]["mentions"] == ids[:9]  # ten names in all, the outsider's among them
    assert (await http.get("/api/v1/notifications", headers=bearer(outsider))).json()["items"] == []


async def test_follows_and_join_requests_notify(http: httpx.AsyncClient, live: Live) -> None:
    ana, ana_id = await live.user("ana")
    ben, ben_id = await live.user("ben")
    mod, mod_id = await live.user("mod")
    room = await live.room(ana, name="Hangout")
    club = await live.room(ana, type="private", name="Club")
    await http.post(f"/api/v1/rooms/{club['id']}/invite", json={"user_id": mod_id}, headers=bearer(ana))
    r = await http.patch(
        f"/api/v1/rooms/{club['id']}/members/{mod_id}", json={"role": "moderator"}, headers=bearer(ana)
    )
    assert r.status_code == 200, r.text
    async with live.connect(room["id"], ana) as a, live.connect(room["id"], ben) as b:
        r = await http.post(
            "/api/v1/social/follow", json={"target_id": ben_id, "target_type": "user"}, headers=bearer(ana)
        )
        assert r.status_code == 201
        followed, _ = await b.until(is_event("notification"))
        assert followed["data"]["type"] == "follow" and followed["data"]["actor"]["id"] == ana_id
        assert followed["data"]["data"] == {}

        r = await http.post(
            f"/api/v1/rooms/{club['id']}/requests", json={"message": "hi"}, headers=bearer(ben)
        )
        assert r.status_code == 201, r.text
        asked, _ = await a.until(is_event("notification"))
        assert asked["data"]["type"] == "join_request" and asked["data"]["data"] == {"room_id": club["id"]}
        assert await notices_before_pong(b) == []
        r = await http.post(
            f"/api/v1/rooms/{club['id']}/requests/{r.json()['id']}/approve", headers=bearer(mod)
        )
        assert r.status_code == 200, r.text
        decided, _ = await b.until(is_event("notification"))
        assert decided["data"]["type"] == "join_request_decision"
        assert decided["data"]["data"] == {"room_id": club["id"], "approved": True}
        assert decided["data"]["actor"]["id"] == mod_id
    mods = (await http.get("/api/v1/notifications", headers=bearer(mod))).json()["items"]
    assert [n["type"] for n in mods] == ["join_request"]  # the owner and the moderators are told


async def test_a_level_up_writes_its_notification_with_the_award(db: Database, live: Live) -> None:
    _, user_id = await live.user("climber")

    async def award(conn: asyncpg.Connection) -> list[Progress]:
        return await apply_awards(
            conn, [Award(user_id, "track_played", 100, "item-1")], None, datetime.now(UTC)
        )

    (progress,) = await db.run(award)
    assert progress.level_ups == [2]
    notices = progress.notices(0)
    note = next(n for n in notices if n["name"] == "notification")["data"]
    assert note["type"] == "level_up" and note["data"] == {"level": 2, "credits": 2} and note["actor"] is None
    stored = await db.fetch(
        "SELECT type, data FROM notifications WHERE user_id = $1 ORDER BY type DESC", uuid.UUID(user_id)
    )
    assert [(r["type"], r["data"]) for r in stored] == [
        ("level_up", {"level": 2, "credits": 2}),
        ("badge", {"badge_code": "FIRST_PLAY"}),  # a first completed play is a milestone too
    ]
