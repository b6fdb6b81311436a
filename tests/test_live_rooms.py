"""The live protocol over real sockets, both encodings, against a real database."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from server.config import Settings
from tests.conftest import BOTH
from tests.live_client import Client, Live, Message, is_event

WELCOME_KEYS = {
    "room",
    "seq",
    "you",
    "presence",
    "guests",
    "session",
    "recent_messages",
    "resumed",
    "replayed",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A long chat window makes the rate-limit test independent of how fast it runs.
    return replace(settings, chat_rate=20, chat_rate_window_s=500.0, ops_per_second=1000, room_idle_s=0.5)


def is_reply(ref: int | None) -> object:
    return lambda m: m.get("type") == "reply" and m.get("ref") == ref


async def test_welcome_for_owner_member_and_guest(live: Live) -> None:
    owner, owner_id = await live.user("owner1")
    member, member_id = await live.user("member1")
    room = await live.room(owner, genres=["jazz"])
    async with live.connect(room["id"], owner) as a:
        w = a.welcome["data"]
        assert set(w) >= WELCOME_KEYS
        assert w["room"]["id"] == room["id"] and w["room"]["pinned_message_ids"] == []
        assert w["you"] == {"user_id": owner_id, "username": "owner1", "role": "owner", "muted_until": None}
        assert w["seq"] == 0 and w["session"] is None and w["resumed"] is False and w["replayed"] == 0
        await a.chat("first")
        async with (
            live.connect(room["id"], member, encoding="msgpack") as b,
            live.connect(room["id"]) as guest,
        ):
            assert b.welcome["data"]["you"]["role"] == "member"
            assert [m["text"] for m in b.welcome["data"]["recent_messages"]] == ["first"]
            g = guest.welcome["data"]
            assert g["you"] == {"user_id": None, "username": None, "role": "guest", "muted_until": None}
            assert {p["user_id"] for p in g["presence"]} == {owner_id, member_id}
            assert g["guests"] == 1
            joined, _ = await a.until(is_event("presence.join"))
            assert joined["data"] == {"user_id": member_id, "username": "member1"} and "seq" not in joined


@pytest.mark.parametrize("server_mode", BOTH, indirect=True)
async def test_seq_order_across_concurrent_senders_in_both_encodings(live: Live) -> None:
    tokens = [await live.user() for _ in range(3)]
    room = await live.room(tokens[0][0])
    per_sender = 15
    async with (
        live.connect(room["id"], tokens[0][0]) as a,
        live.connect(room["id"], tokens[1][0], encoding="msgpack") as b,
        live.connect(room["id"], tokens[2][0]) as c,
    ):
        clients = [a, b, c]
        seen: dict[int, list[Message]] = {i: [] for i in range(3)}

        async def sender(i: int, client: Client) -> None:
            for n in range(per_sender):
                await client.send("chat.send", {"text": f"{i}-{n}"}, ref=n + 1)
            # read until all replies and all events have arrived
            replies = 0
            while (
                replies < per_sender
                or len([m for m in seen[i] if m.get("name") == "chat.message"]) < 3 * per_sender
            ):
                m = await client.recv()
                seen[i].append(m)
                if m["type"] == "reply":
                    replies += 1

        async with trio.open_nursery() as nursery:
            for i, client in enumerate(clients):
                nursery.start_soon(sender, i, client)

    orders = []
    for i in range(3):
        events = [m for m in seen[i] if m.get("name") == "chat.message"]
        assert [e["seq"] for e in events] == list(range(1, 3 * per_sender + 1))
        orders.append([e["data"]["id"] for e in events])
        # each reply comes after the event it acknowledges
        position = {id(m): k for k, m in enumerate(seen[i])}
        by_seq = {e["seq"]: position[id(e)] for e in events}
        for m in seen[i]:
            if m["type"] == "reply":
                assert m["ok"] is True
                assert position[id(m)] > by_seq[m["data"]["seq"]]
    assert orders[0] == orders[1] == orders[2]


async def test_guests_listen_but_may_only_ping(live: Live) -> None:
    owner, _ = await live.user()
    room = await live.room(owner)
    async with live.connect(room["id"]) as guest, live.connect(room["id"], owner) as a:
        reply, _ = await guest.request("ping")
        assert reply["ok"] is True and isinstance(reply["data"]["ts"], int)
        reply, _ = await guest.request("chat.send", {"text": "hi"})
        assert reply["ok"] is False and reply["error"]["code"] == "unauthorized"
        await a.chat("for the guest")
        event, _ = await guest.until(is_event("chat.message"))
        assert event["data"]["text"] == "for the guest"


async def test_upgrade_refusals(live: Live) -> None:
    owner, _ = await live.user()
    outsider, _ = await live.user()
    public = await live.room(owner)
    private = await live.room(owner, type="private")

    async def status_of(url: str) -> int:
        with pytest.raises(ConnectionRejected) as info:
            async with open_websocket_url(url):
                pass
        return info.value.status_code

    assert await status_of(live.url(public["id"], "not-a-token")) == 401
    assert await status_of(live.url(private["id"], outsider)) == 403
    assert await status_of(live.url(private["id"])) == 403
    assert await status_of(live.url("00000000-0000-0000-0000-000000000000", owner)) == 404
    assert await status_of(live.url("not-a-uuid", owner)) == 404
    assert await status_of(f"ws://127.0.0.1:{live.live_port}/elsewhere") == 404
    # header auth works as well as the query token, and a bad header is 401
    async with open_websocket_url(
        live.url(private["id"]), extra_headers=[(b"Authorization", f"Bearer {owner}".encode())]
    ) as ws:
        assert json.loads(await ws.get_message())["data"]["you"]["role"] == "owner"
    with pytest.raises(ConnectionRejected) as info:
        async with open_websocket_url(live.url(public["id"]), extra_headers=[(b"Authorization", b"Basic x")]):
            pass
    assert info.value.status_code == 401


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
async def test_malformed_frames_get_errors_and_the_socket_stays(live: Live, encoding: str) -> None:
    owner, _ = await live.user()
    room = await live.room(owner)
    async with live.connect(room["id"], owner, encoding=encoding) as a:
        wrong_kind = b"\xff\x00garbage" if encoding == "json" else "text frame"
        garbage = "{not json" if encoding == "json" else b"\xc1\xc1\xc1"
        await a.send_raw(wrong_kind)
        reply, _ = await a.until(lambda m: m["type"] == "reply")
        assert reply == {"type": "reply", "ref": None, "ok": False, "error": reply["error"]}
        assert reply["error"]["code"] == "bad_request"
        await a.send_raw(garbage)
        reply, _ = await a.until(lambda m: m["type"] == "reply")
        assert reply["ok"] is False and reply["ref"] is None
        cases: list[tuple[dict[str, object], str]] = [
            ({"op": "chat.send", "ref": 7, "data": {"text": 5}}, "text"),
            ({"op": "chat.send", "ref": 8, "data": {"text": "   "}}, "text"),
            ({"op": "no.such.op", "ref": 9}, "op"),
            ({"op": "chat.send", "ref": 10, "data": "text"}, "data"),
            ({"op": "chat.react", "ref": 11, "data": {"message_id": "nope", "emoji": "fire"}}, "message_id"),
            (
                {
                    "op": "chat.react",
                    "ref": 12,
                    "data": {"message_id": "00000000-0000-0000-0000-000000000001", "emoji": "poop"},
                },
                "emoji",
            ),
            ({"op": 5, "ref": 13}, "op"),
            ({"op": "chat.send", "ref": 14, "data": {"text": "x", "nonce": "n" * 65}}, "nonce"),
            (
                {
                    "op": "chat.send",
                    "ref": 15,
                    "data": {
                        "text": "x",
                        "track": {
                            "url": "https://example.com/a",
                            "title": "t",
                            "artist": "a",
                            "duration_ms": 5000,
                        },
                    },
                },
                "track",
            ),
            # text Postgres cannot store: refused here, never a crash of the room at commit
            ({"op": "chat.send", "ref": 16, "data": {"text": "nul \u0000 inside"}}, "text"),
            # (msgpack cannot carry a lone surrogate in a str: the same bytes as bin)
            (
                {
                    "op": "chat.send",
                    "ref": 17,
                    "data": {"text": "lone \ud800" if encoding == "json" else b"lone \xed\xa0\x80"},
                },
                "text",
            ),
            ({"op": "chat.send", "ref": 18, "data": {"text": "x", "nonce": "\u0000"}}, "nonce"),
        ]
        for message, field in cases:
            await a.send_raw(
                json.dumps(message) if encoding == "json" else __import__("msgpack").packb(message)
            )
            reply, _ = await a.until(lambda m: m["type"] == "reply")
            assert reply["ok"] is False, message
            assert reply["ref"] == message["ref"], message
            assert reply["error"]["code"] == "bad_request", message
            assert reply["error"]["details"]["field"].split(".")[0] == field, (message, reply)
        await a.send_raw(
            json.dumps({"op": "ping", "ref": 0})
            if encoding == "json"
            else __import__("msgpack").packb({"op": "ping", "ref": 0})
        )
        reply, _ = await a.until(lambda m: m["type"] == "reply")
        assert reply["ref"] is None and reply["error"]["details"]["field"] == "ref"
        # still open and working, with nothing created by the bad frames
        ok = await a.chat("still here")
        assert ok["data"]["seq"] == 1


async def test_a_huge_frame_closes_1009(live: Live) -> None:
    owner, _ = await live.user()
    room = await live.room(owner)
    async with live.connect(room["id"], owner) as a:
        await a.send_raw(json.dumps({"op": "chat.send", "data": {"text": "x" * (70 * 1024)}}))
        with pytest.raises(ConnectionClosed) as info:
            await a.recv()
        assert info.value.reason is not None and info.value.reason.code == 1009


async def test_too_many_invalid_frames_close_1008(live: Live) -> None:
    owner, _ = await live.user()
    room = await live.room(owner)
    async with live.connect(room["id"], owner) as a:
        for _ in range(21):
            await a.send_raw("garbage")
        codes = []
        with pytest.raises(ConnectionClosed) as info:
            while True:
                codes.append((await a.recv())["error"]["code"])
        assert info.value.reason is not None and info.value.reason.code == 1008
        assert codes == ["bad_request"] * 21


async def test_chat_rate_limit(live: Live) -> None:
    owner, _ = await live.user()
    room = await live.room(owner)
    async with live.connect(room["id"], owner) as a:
        for n in range(20):
            await a.chat(f"m{n}")
        reply, _ = await a.request("chat.send", {"text": "one too many"})
        assert reply["ok"] is False and reply["error"]["code"] == "rate_limited"
        assert reply["error"]["retry_after_ms"] > 0
        # the limit is per user per room: a second socket of the same user is limited too
        async with live.connect(room["id"], owner) as again:
            reply, _ = await again.request("chat.send", {"text": "still too many"})
            assert reply["error"]["code"] == "rate_limited"
        reply, _ = await a.request("ping")
        assert reply["ok"] is True


async def test_nonce_retry_returns_the_first_message(live: Live) -> None:
    owner, _ = await live.user()
    room = await live.room(owner)
    async with live.connect(room["id"], owner) as a:
        first = await a.chat("once", nonce="abc")
        again = await a.chat("once", nonce="abc")
        assert again["data"] == first["data"]
    r = await live.http.get(f"/api/v1/rooms/{room['id']}/messages")
    assert [m["text"] for m in r.json()["items"]] == ["once"]


async def test_reply_react_pin_delete_and_history(live: Live) -> None:
    owner, owner_id = await live.user("olga")
    member, member_id = await live.user("mika")
    room = await live.room(owner)
    async with live.connect(room["id"], owner) as a, live.connect(room["id"], member) as b:
        parent = (await b.chat("parent @olga and @nobody_here"))["data"]
        child = (await a.chat("child", reply_to=parent["message_id"]))["data"]
        reply, events = await a.request("chat.react", {"message_id": parent["message_id"], "emoji": "fire"})
        assert reply["ok"] is True
        reaction = next(e for e in events if e.get("name") == "chat.reaction")
        assert reaction["data"] == {
            "message_id": parent["message_id"],
            "emoji": "fire",
            "user_id": owner_id,
            "count": 1,
            "added": True,
        }
        reply, _ = await b.request("chat.pin", {"message_id": parent["message_id"]})
        assert reply["error"]["code"] == "forbidden"
        reply, events = await a.request("chat.pin", {"message_id": parent["message_id"]})
        assert reply["ok"] and any(e.get("name") == "chat.pinned" for e in events)
        reply, _ = await b.request("chat.delete", {"message_id": child["message_id"]})
        assert reply["error"]["code"] == "forbidden"
        reply, events = await a.request("chat.delete", {"message_id": child["message_id"]})
        deleted = next(e for e in events if e.get("name") == "chat.deleted")
        assert deleted["data"] == {"id": child["message_id"], "by": owner_id}
        reply, _ = await a.request(
            "chat.send", {"text": "to a ghost", "reply_to": "00000000-0000-0000-0000-000000000001"}
        )
        assert reply["error"]["code"] == "not_found" and reply["error"]["details"]["field"] == "reply_to"
        track = {
            "url": "https://youtu.be/dQw4w9WgXcQ?si=x",
            "title": "Song",
            "artist": "Band",
            "duration_ms": 213000,
        }
        reply, events = await a.request("room.pin_track", {"track": track})
        updated = next(e for e in events if e.get("name") == "room.updated")
        assert updated["data"]["room"]["pinned_track"]["provider"] == "youtube"
        assert updated["data"]["room"]["pinned_track"]["provider_id"] == "dQw4w9WgXcQ"
        seqs = [e["seq"] for e in events if "seq" in e]
        assert seqs == [6]  # message, reply, reaction, pin, delete, then this
    history = (await live.http.get(f"/api/v1/rooms/{room['id']}/messages")).json()
    assert [m["text"] for m in history["items"]] == ["parent @olga and @nobody_here"]
    only = history["items"][0]
    assert (
        only["reactions"] == {"fire": 1} and only["mentions"] == [owner_id] and only["user_id"] == member_id
    )
    got = (await live.http.get(f"/api/v1/rooms/{room['id']}")).json()
    assert got["pinned_message_ids"] == [parent["message_id"]] and got["pinned_track"]["title"] == "Song"


async def test_history_pages_newest_first_with_stable_cursors(live: Live) -> None:
    owner, _ = await live.user()
    room = await live.room(owner)
    async with live.connect(room["id"], owner) as a:
        for n in range(5):
            await a.chat(f"m{n}")
        texts: list[str] = []
        cursor = None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await live.http.get(f"/api/v1/rooms/{room['id']}/messages", params=params)).json()
            texts.extend(m["text"] for m in page["items"])
            if len(texts) == 2:
                await a.chat("arrives while paging")  # must not shift later pages
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert texts == ["m4", "m3", "m2", "m1", "m0"]
    bad = await live.http.get(f"/api/v1/rooms/{room['id']}/messages", params={"cursor": "garbage!"})
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "cursor"
    bad = await live.http.get(f"/api/v1/rooms/{room['id']}/messages", params={"limit": 0})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "limit"


async def test_resume_from_memory_and_from_postgres(live: Live, ctx: object) -> None:
    owner, _ = await live.user()
    member, _ = await live.user()
    room = await live.room(owner)
    async with live.connect(room["id"], owner) as a:
        await a.chat("before")
        async with live.connect(room["id"], member) as b:
            last = b.welcome["data"]["seq"]
        await a.chat("missed 1")
        await a.chat("missed 2")
        async with live.connect(room["id"], member, since=last) as b:
            w = b.welcome["data"]
            assert w["resumed"] is True and w["replayed"] == 2
            replay = [await b.recv(), await b.recv()]
            assert [m["seq"] for m in replay] == [last + 1, last + 2]
            assert [m["data"]["text"] for m in replay] == ["missed 1", "missed 2"]
        async with live.connect(room["id"], member, since=0) as b:
            assert b.welcome["data"]["replayed"] == 3
    # with everyone gone the room stops after a snapshot; its ring is gone with it
    registry = ctx.registry  # type: ignore[attr-defined]
    actor = registry.running(room["id"])
    assert actor is not None
    with trio.fail_after(10):
        await actor.finished.wait()
    assert registry.running(room["id"]) is None
    async with live.connect(room["id"], member, since=1) as b:
        w = b.welcome["data"]
        assert w["resumed"] is True and w["replayed"] == 2 and w["seq"] == 3
        assert [(await b.recv())["seq"] for _ in range(2)] == [2, 3]
        reply = await b.chat("after restart")
        assert reply["data"]["seq"] == 4
    async with live.connect(room["id"], member, since=99, read_welcome=False) as b:
        with pytest.raises(ConnectionClosed) as info:
            await b.recv()
        assert info.value.reason is not None and info.value.reason.code == 1008
