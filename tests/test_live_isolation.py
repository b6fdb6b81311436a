"""One client cannot take the server down (issue 15, item 1): real sockets, real server.

A fault while serving one socket closes that socket (1011), is logged with its room and
user, and never reaches the gateway: the room's other sockets, other rooms and the REST API
go on. Faults are injected by monkeypatching one step of the server for a marked input.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable
from typing import Any

import httpx
import msgpack
import pytest
import trio
import trio_websocket
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from server.live.connection import LiveConnection, LocalLink
from server.live.gateway import LiveGateway
from server.runtime import Bound
from tests.live_client import Client, Live, Message, is_event
from tests.test_live_close import OP_TEXT, RawClient

MARKER = "please fail here"
OP_PING = 0x9


async def closed_with(client: Client) -> int:
    """Read until the server closes the socket; its close code."""
    with trio.fail_after(10):
        try:
            while True:
                await client.recv()
        except ConnectionClosed as closed:
            assert closed.reason is not None
            return closed.reason.code


def leaves(user_id: str) -> Callable[[Message], bool]:
    return lambda m: is_event("presence.leave")(m) and m["data"]["user_id"] == user_id


async def others_go_on(live: Live, room_id: str, other: Client, elsewhere: Client) -> None:
    """The victim's room, another room and the REST API all still work."""
    assert (await other.chat("still here"))["ok"]
    assert (await elsewhere.request("ping"))[0]["ok"]
    r = await live.http.get(f"/api/v1/rooms/{room_id}")
    assert r.status_code == 200, r.text
    r = await live.http.get("/healthz")
    assert r.status_code == 200, r.text


def logged_failure(caplog: pytest.LogCaptureFixture, *ids: str) -> str:
    """The error logged for the failed socket; it names each of ``ids``."""
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "seda.live"]
    assert errors, "the fault was not logged"
    message = errors[0].getMessage()
    assert errors[0].exc_info is not None, "logged without its traceback"
    for wanted in ids:
        assert wanted in message, (wanted, message)
    return message


async def test_a_fault_serving_one_socket_closes_it_1011_and_nothing_else(
    live: Live, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    submit = LocalLink.submit

    async def failing(
        self: LocalLink, conn: LiveConnection, op: str, data: Any, raw: Any, ref: int | None, rate_key: str
    ) -> bool:
        if getattr(data, "text", None) == MARKER:
            raise RuntimeError("injected fault")
        return await submit(self, conn, op, data, raw, ref, rate_key)

    monkeypatch.setattr(LocalLink, "submit", failing)
    owner, _ = await live.user()
    victim_token, victim_id = await live.user()
    room_id = (await live.room(owner))["id"]
    lobby_id = (await live.room(owner))["id"]
    async with (
        live.connect(room_id, owner) as other,
        live.connect(lobby_id, owner, encoding="msgpack") as elsewhere,
        live.connect(room_id, victim_token) as victim,
    ):
        await victim.send("chat.send", {"text": MARKER})
        assert await closed_with(victim) == 1011
        left, _ = await other.until(
            lambda m: is_event("presence.leave")(m) and m["data"]["user_id"] == victim_id
        )
        assert left["data"]["user_id"] == victim_id
        await others_go_on(live, room_id, other, elsewhere)
    logged_failure(caplog, room_id, victim_id)


async def test_a_fault_in_the_websocket_reader_closes_only_that_socket_1011(
    live: Live, server: Bound, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """trio-websocket's reader is a task of the socket's own nursery: a fault there too."""

    async def failing(self: trio_websocket.WebSocketConnection, event: Any) -> None:
        raise RuntimeError("injected fault in the reader")

    monkeypatch.setattr(trio_websocket.WebSocketConnection, "_handle_ping_event", failing)
    owner, _ = await live.user()
    victim_token, victim_id = await live.user()
    room_id = (await live.room(owner))["id"]
    lobby_id = (await live.room(owner))["id"]
    async with live.connect(room_id, owner) as other, live.connect(lobby_id, owner) as elsewhere:
        victim = await RawClient.open(server.live_port, room_id, victim_token)
        assert (await victim.message())["type"] == "welcome"
        await victim.send(OP_PING, b"are you there")
        data, code, after = await victim.until_close()
        assert code == 1011 and after == b""
        assert all(json.loads(p)["type"] == "event" for p in data)
        await other.until(leaves(victim_id))
        await others_go_on(live, room_id, other, elsewhere)
    logged_failure(caplog, room_id, victim_id)


async def test_a_fault_admitting_a_socket_is_a_500_and_nothing_else(
    live: Live, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    admit = LiveGateway._admit

    async def failing(self: LiveGateway, request: trio_websocket.WebSocketRequest) -> Any:
        if "fail=1" in request.path:
            raise RuntimeError("injected fault in admission")
        return await admit(self, request)

    monkeypatch.setattr(LiveGateway, "_admit", failing)
    owner, _ = await live.user()
    room_id = (await live.room(owner))["id"]
    async with live.connect(room_id, owner) as other, live.connect(room_id, owner) as elsewhere:
        with pytest.raises(ConnectionRejected) as refused:
            async with open_websocket_url(live.url(room_id, owner) + "&fail=1"):
                pass
        assert refused.value.status_code == 500
        await others_go_on(live, room_id, other, elsewhere)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "seda.live"]


# ---- the frame that took the whole process down, and its kin -------------------------------------

DEEP_JSON = "[" * 10_000 + "]" * 10_000


@pytest.mark.parametrize(
    ("encoding", "payload"),
    [
        ("json", DEEP_JSON),
        ("json", '{"op": "ping", "ref": 1, "data": {"x": NaN}}'),
        ("json", '{"op": "ping", "ref": 1, "data": {"x": 1' + "0" * 40 + "}}"),
        ("msgpack", b"\x91" * 10_000 + b"\x01"),
        ("msgpack", msgpack.packb({"op": "ping", "ref": 1, "data": msgpack.ExtType(7, b"x")})),
        ("msgpack", msgpack.packb({"op": "ping", "ref": 1, "data": {1: 2}}, strict_types=False)),
    ],
)
async def test_a_hostile_frame_is_a_bad_request_and_the_socket_stays_open(
    live: Live, encoding: str, payload: str | bytes
) -> None:
    owner, _ = await live.user()
    guest_room = (await live.room(owner))["id"]
    async with live.connect(guest_room, encoding=encoding) as guest, live.connect(guest_room, owner) as other:
        await guest.send_raw(payload)
        reply, _ = await guest.until(lambda m: m.get("type") == "reply")
        assert reply["ok"] is False and reply["error"]["code"] == "bad_request", reply
        assert reply["error"]["details"]["field"] == "frame", reply
        # The same socket goes on, and so does everything else.
        pong, _ = await guest.request("ping")
        assert pong["ok"], pong
        assert (await other.chat("unharmed"))["ok"]


async def test_a_deep_frame_from_a_raw_socket_leaves_the_server_up(live: Live, server: Bound) -> None:
    """The issue's exact attack: one guest, one text frame of 10,000 nested arrays."""
    owner, _ = await live.user()
    room_id = (await live.room(owner))["id"]
    raw = await RawClient.open(server.live_port, room_id)
    assert (await raw.message())["type"] == "welcome"
    await raw.send(OP_TEXT, DEEP_JSON.encode())
    reply = await raw.message()
    assert reply["error"]["code"] == "bad_request" and reply["ref"] is None
    await raw.send(OP_TEXT, json.dumps({"op": "ping", "ref": 5}).encode())
    assert (await raw.message())["ref"] == 5
    async with httpx.AsyncClient(base_url=str(live.http.base_url)) as fresh:
        assert (await fresh.get("/healthz")).status_code == 200
    await raw.send(0x8, struct.pack("!H", 1000))
    _, code, _ = await raw.until_close()
    assert code == 1000
