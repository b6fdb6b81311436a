"""A small live-protocol client for tests, over real sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgpack
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

PASSWORD = "correct horse battery"
Message = dict[str, Any]


class Client:
    """One socket. ``recv`` reads the next message; ``until`` reads up to one that matches."""

    def __init__(self, ws: WebSocketConnection, encoding: str) -> None:
        self.ws = ws
        self.encoding = encoding
        self.welcome: Message = {}
        self._ref = 0

    async def send_raw(self, payload: str | bytes) -> None:
        await self.ws.send_message(payload)

    async def send(
        self, op: str, data: dict[str, Any] | None = None, *, ref: int | None = None
    ) -> int | None:
        message: Message = {"op": op}
        if ref is None:
            self._ref += 1
            ref = self._ref
        if ref != 0:
            message["ref"] = ref
        if data is not None:
            message["data"] = data
        await self.send_raw(json.dumps(message) if self.encoding == "json" else msgpack.packb(message))
        return ref if ref != 0 else None

    async def recv(self, timeout: float = 10) -> Message:
        with trio.fail_after(timeout):
            raw = await self.ws.get_message()
        if self.encoding == "json":
            assert isinstance(raw, str), "json connections get text frames"
            decoded: Message = json.loads(raw)
        else:
            assert isinstance(raw, bytes), "msgpack connections get binary frames"
            decoded = msgpack.unpackb(raw)
        return decoded

    async def until(
        self, pred: Callable[[Message], bool], timeout: float = 10
    ) -> tuple[Message, list[Message]]:
        """The first message matching ``pred`` and every message read before it."""
        seen: list[Message] = []
        with trio.fail_after(timeout):
            while True:
                message = await self.recv(timeout)
                if pred(message):
                    return message, seen
                seen.append(message)

    async def request(self, op: str, data: dict[str, Any] | None = None) -> tuple[Message, list[Message]]:
        """Send an op with a fresh ref; its reply and everything that came before it."""
        ref = await self.send(op, data)
        return await self.until(lambda m: m.get("type") == "reply" and m.get("ref") == ref)

    async def chat(self, text: str, **extra: Any) -> Message:
        reply, _ = await self.request("chat.send", {"text": text, **extra})
        assert reply["ok"], reply
        return reply


def is_event(name: str) -> Callable[[Message], bool]:
    return lambda m: m.get("type") == "event" and m.get("name") == name


class Live:
    """Users, rooms and sockets against one running server."""

    def __init__(self, http: httpx.AsyncClient, live_port: int) -> None:
        self.http = http
        self.live_port = live_port
        self._n = 0

    async def user(self, username: str | None = None) -> tuple[str, str]:
        """Register a user; returns (token, user id)."""
        self._n += 1
        name = username or f"user{self._n}"
        r = await self.http.post(
            "/api/v1/auth/register",
            json={"email": f"{name}@example.com", "username": name, "password": PASSWORD},
        )
        assert r.status_code == 201, r.text
        body = r.json()
        return body["access_token"], body["user"]["id"]

    async def room(self, token: str, **fields: Any) -> Message:
        self._n += 1
        r = await self.http.post(
            "/api/v1/rooms",
            json={"name": f"Room {self._n}", **fields},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
        room: Message = r.json()
        return room

    def url(self, room_id: str, token: str | None = None, since: int | None = None) -> str:
        query = []
        if token is not None:
            query.append(f"token={token}")
        if since is not None:
            query.append(f"since={since}")
        return f"ws://127.0.0.1:{self.live_port}/ws/rooms/{room_id}" + (
            "?" + "&".join(query) if query else ""
        )

    @asynccontextmanager
    async def connect(
        self,
        room_id: str,
        token: str | None = None,
        *,
        encoding: str = "json",
        since: int | None = None,
        read_welcome: bool = True,
    ) -> AsyncIterator[Client]:
        subprotocols = ["seda.v1.msgpack"] if encoding == "msgpack" else ["seda.v1.json"]
        async with open_websocket_url(
            self.url(room_id, token, since), subprotocols=subprotocols, message_queue_size=1024
        ) as ws:
            client = Client(ws, encoding)
            if read_welcome:
                client.welcome = await client.recv()
                assert client.welcome["type"] == "welcome", client.welcome
            yield client


async def history(http: httpx.AsyncClient, room_id: str, *, limit: int = 100) -> list[Message]:
    """Every message of the room over REST, newest first, following the cursor."""
    items: list[Message] = []
    cursor: str | None = None
    for _ in range(10_000):
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        r = await http.get(f"/api/v1/rooms/{room_id}/messages", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")
