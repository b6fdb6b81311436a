"""Faults on a running server: a client that stops reading, a journal connection killed under a room.

Real sockets, real Postgres, the in-process server of ``conftest``; nothing of ours is mocked.
Faults are injected from outside: a socket that stops reading, ``pg_terminate_backend`` on the
journal's connection, a table lock that holds a batch at its INSERT, a hole in a stored journal.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import socket
import struct
import uuid
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, HandshakeError

from server.config import Settings
from server.context import AppContext
from server.runtime import Bound
from storage.database import Database
from tests.live_client import Client, Live, Message, history, is_event

OUTBOX_LIMIT = 32 * 1024
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A small outbox so a stalled client overflows quickly; rate limits out of the way of the floods.
    return dataclasses.replace(
        settings,
        outbox_limit_bytes=OUTBOX_LIMIT,
        ops_per_second=1_000_000,
        chat_rate=1_000_000,
        chat_rate_window_s=1.0,
    )


def is_reply(ref: int | None) -> Any:
    return lambda m: m.get("type") == "reply" and m.get("ref") == ref


# ---- a hand-made WebSocket client that can stop reading ---------------------------------


class RawSocket:
    """A WebSocket opened by hand on a socket with a tiny receive buffer, read only when told."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream

    @classmethod
    async def open(cls, port: int, room_id: str, token: str, *, rcvbuf: int) -> RawSocket:
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Before connect, so the window the kernel advertises is small from the first byte.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        await sock.connect(("127.0.0.1", port))
        stream = trio.SocketStream(sock)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws/rooms/{room_id}?token={token} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "\r\n"
        )
        await stream.send_all(request.encode())
        head = b""
        with trio.fail_after(10):
            while b"\r\n\r\n" not in head:
                chunk = await stream.receive_some(1)  # byte by byte: leave every frame in the kernel
                assert chunk, f"connection closed during the handshake: {head!r}"
                head += chunk
        status, *header_lines = head.decode("latin-1").split("\r\n")
        assert status.startswith("HTTP/1.1 101"), head
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        assert headers["sec-websocket-accept"] == accept
        return cls(stream)

    async def read_to_end(self, timeout: float = 10) -> bytes:
        """Everything the server sends until it closes the TCP connection."""
        data = bytearray()
        with trio.fail_after(timeout):
            while chunk := await self.stream.receive_some(1 << 16):
                data += chunk
        return bytes(data)


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each server frame; server frames are unmasked and must parse exactly."""
    frames: list[tuple[int, bytes]] = []
    at = 0
    while at < len(data):
        assert len(data) - at >= 2, f"truncated frame header at byte {at}"
        first, second = data[at], data[at + 1]
        assert first & 0x80, "every server frame is final"
        assert not second & 0x80, "server frames are unmasked"
        size, at = second & 0x7F, at + 2
        if size == 126:
            (size,) = struct.unpack_from("!H", data, at)
            at += 2
        elif size == 127:
            (size,) = struct.unpack_from("!Q", data, at)
            at += 8
        assert at + size <= len(data), f"truncated frame payload at byte {at}"
        frames.append((first & 0x0F, data[at : at + size]))
        at += size
    return frames


# ---- 1. slow consumer --------------------------------------------------------------------


async def test_client_that_stops_reading_is_closed_4009_without_stalling_the_room(
    live: Live, server: Bound
) -> None:
    owner, _ = await live.user()
    listener_token, _ = await live.user()
    slow_token, slow_id = await live.user()
    room = await live.room(owner)
    room_id = room["id"]

    # The slow socket joins first, while the room is empty: its welcome is small.
    slow = await RawSocket.open(server.live_port, room_id, slow_token, rcvbuf=4096)
    text_size = 2000
    # ~200 KB: the slow socket's receive buffer, the server's send buffer and the 32 KiB outbox
    # several times over (measured on loopback: the outbox overflows at ~25 messages). Not much
    # more: the server gives an overflowed client only a short grace to take its close frame.
    count = 100

    async with (
        live.connect(room_id, owner) as sender,
        live.connect(room_id, listener_token, encoding="msgpack") as listener,
    ):
        received: list[Message] = []
        all_received = trio.Event()

        async def listen() -> None:
            while len(received) < count:
                message = await listener.recv()
                if is_event("chat.message")(message):
                    received.append(message)
            all_received.set()

        acks: list[Message] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listen)
            with trio.fail_after(30):
                window = 25
                for start in range(0, count, window):
                    refs = [
                        await sender.send("chat.send", {"text": f"{i:05d} " + "x" * (text_size - 6)})
                        for i in range(start, min(start + window, count))
                    ]
                    for ref in refs:
                        reply, _ = await sender.until(is_reply(ref))
                        assert reply["ok"], reply
                        acks.append(reply)
                # The overflow happened a few hundred ms ago at most; read the close frame now,
                # within the grace the server gives (server/live/connection.py CLOSE_GRACE_S).
                raw = await slow.read_to_end()
                await all_received.wait()

        # The room never waited for the slow socket: every message acked and delivered, in order.
        assert [a["data"]["seq"] for a in acks] == list(range(1, count + 1))
        assert [m["seq"] for m in received] == list(range(1, count + 1))
        assert [m["data"]["text"][:5] for m in received] == [f"{i:05d}" for i in range(count)]

        frames = parse_frames(raw)
        assert frames, "the slow socket got nothing at all"
        opcode, payload = frames[-1]
        assert opcode == 0x8, f"the stream must end with a close frame, got opcode {opcode}"
        (code,) = struct.unpack("!H", payload[:2])
        assert code == 4009, payload
        # What it did get before the close is a clean prefix of the room's stream.
        assert all(op == 0x1 for op, _ in frames[:-1]), [op for op, _ in frames]
        data_frames = [json.loads(p) for _, p in frames[:-1]]
        assert data_frames[0]["type"] == "welcome"
        seqs = [m["seq"] for m in data_frames if is_event("chat.message")(m)]
        assert seqs == list(range(1, len(seqs) + 1))
        assert len(seqs) < count, "the slow socket cannot have been sent everything"

        # The slow user is gone from the room, and the room still serves the others.
        await listener.until(lambda m: is_event("presence.leave")(m) and m["data"]["user_id"] == slow_id)
        reply = await sender.chat("still here")
        assert reply["data"]["seq"] == count + 1
        event, _ = await listener.until(is_event("chat.message"))
        assert event["seq"] == count + 1
    await slow.stream.aclose()


# ---- 2. a room actor crashed by a real fault --------------------------------------------


async def kill_journal_connection(db: Database) -> None:
    """Terminate the journal writer's Postgres backend and wait until it is gone."""
    rows = await db.fetch(
        """SELECT pid, pg_terminate_backend(pid, 5000) AS gone FROM pg_stat_activity
           WHERE application_name = 'seda-journal' AND datname = current_database()"""
    )
    assert len(rows) == 1, rows
    assert rows[0]["gone"], "the journal backend did not exit"


async def expect_closed(client: Client, code: int) -> list[Message]:
    """Read until the socket closes; it must close with ``code``. Returns what came before."""
    seen: list[Message] = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            seen.append(await client.recv())
    reason = closed.value.reason
    assert reason is not None and reason.code == code, reason
    return seen


async def test_journal_connection_killed_crashes_only_that_room_which_resumes_without_gaps(
    live: Live, http: httpx.AsyncClient, db: Database
) -> None:
    token_a, _ = await live.user()
    token_b, _ = await live.user()
    room = await live.room(token_a)
    other = await live.room(token_b)

    async with live.connect(other["id"], token_b) as bystander:
        before = await bystander.chat("other room, before")
        assert before["data"]["seq"] == 1

        async with live.connect(room["id"], token_a) as a:
            m1 = await a.chat("m1")
            last_acked = m1["data"]["seq"]
            assert last_acked == 1

            await kill_journal_connection(db)

            # The journal's connection is already closed, so the batch holding this message fails
            # before a byte of it reaches Postgres: it cannot have committed. No ack; the room's
            # actor crashes and its sockets close 1011.
            ref = await a.send("chat.send", {"text": "never acknowledged"})
            seen = await expect_closed(a, 1011)
            assert not [m for m in seen if m.get("type") == "reply" and m.get("ref") == ref], seen
            assert not [m for m in seen if is_event("chat.message")(m)], seen

        # A fresh actor, loaded from Postgres, where the failed batch does not exist.
        async with live.connect(room["id"], token_a, since=last_acked) as a:
            welcome = a.welcome["data"]
            assert welcome["seq"] == last_acked
            assert welcome["resumed"] is True and welcome["replayed"] == 0
            m2 = await a.chat("m2 after the crash")
            assert m2["data"]["seq"] == last_acked + 1

        # History: m1 and m2 with their acked ids and seqs; the unacknowledged message is not there.
        texts = {m["text"]: m for m in await history(http, room["id"])}
        assert set(texts) == {"m1", "m2 after the crash"}
        assert texts["m1"]["seq"] == 1 and texts["m1"]["id"] == m1["data"]["message_id"]
        assert texts["m2 after the crash"]["seq"] == 2
        assert texts["m2 after the crash"]["id"] == m2["data"]["message_id"]

        # The other room's socket stayed open through all of it (an ack on it) and its seq goes on.
        after = await bystander.chat("other room, after")
        assert after["data"]["seq"] == 2


async def wait_journal_blocked_on_lock(db: Database) -> None:
    """Until the journal's backend waits on a lock (no event exists for this: bounded polling)."""
    with trio.fail_after(10):
        while True:
            waiting = await db.fetchval(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE application_name = 'seda-journal' AND datname = current_database()
                     AND wait_event_type = 'Lock'"""
            )
            if waiting == 1:
                return


async def test_socket_that_joins_while_a_commit_fails_is_closed_1011_too(
    live: Live, http: httpx.AsyncClient, db: Database
) -> None:
    token_a, _ = await live.user()
    token_c, _ = await live.user()
    room = await live.room(token_a)

    async with live.connect(room["id"], token_a) as a:
        m1 = await a.chat("m1")
        async with db.transaction() as tx:
            # Hold the journal's next batch at its INSERT, so the room has an uncommitted event ...
            await tx.execute("LOCK TABLE room_events IN SHARE ROW EXCLUSIVE MODE")
            blocked_ref = await a.send("chat.send", {"text": "in the failing batch"})
            await wait_journal_blocked_on_lock(db)
            # ... while another socket enters: its join is decided after that event, so its welcome
            # waits behind the commit, which then fails.
            async with live.connect(room["id"], token_c, read_welcome=False) as c:
                await kill_journal_connection(db)
                seen_a = await expect_closed(a, 1011)
                assert not [m for m in seen_a if m.get("ref") == blocked_ref], seen_a
                # Every socket of the crashed room closes 1011 so it reconnects; this one was
                # never welcomed, so it has nothing else to go on.
                with trio.fail_after(5):
                    seen_c = await expect_closed(c, 1011)
                assert not [m for m in seen_c if m.get("type") == "welcome"], seen_c

    async with live.connect(room["id"], token_c) as c:
        assert c.welcome["data"]["seq"] == m1["data"]["seq"]
    assert [m["text"] for m in await history(http, room["id"])] == ["m1"]


async def test_a_row_postgres_refuses_fails_only_its_own_room(
    live: Live, http: httpx.AsyncClient, db: Database, ctx: AppContext
) -> None:
    token, _ = await live.user()
    blocker, poisoned, healthy = [await live.room(token) for _ in range(3)]
    # A rule only this test has, standing in for any row Postgres might refuse.
    await db.execute("ALTER TABLE messages ADD CONSTRAINT test_poison CHECK (text <> 'poison') NOT VALID")
    async with (
        live.connect(blocker["id"], token) as c,
        live.connect(poisoned["id"], token) as a,
        live.connect(healthy["id"], token) as b,
    ):
        async with db.transaction() as tx:
            await tx.execute("LOCK TABLE room_events IN SHARE ROW EXCLUSIVE MODE")
            await c.send("chat.send", {"text": "holds the journal at its INSERT"})
            await wait_journal_blocked_on_lock(db)
            # Both of these wait for the next batch, together.
            bad_ref = await a.send("chat.send", {"text": "poison"})
            good_ref = await b.send("chat.send", {"text": "fine"})
            # Once every task here is blocked, both rooms have decided their message and wait
            # for the journal's next batch.
            with trio.fail_after(5):
                await trio.testing.wait_all_tasks_blocked(cushion=0.05)
            assert ctx.registry is not None
            actors = [await ctx.registry.get(room["id"]) for room in (poisoned, healthy)]
            assert [actor.state.seq if actor else None for actor in actors] == [1, 1]
        good, _ = await b.until(lambda m: m.get("type") == "reply" and m.get("ref") == good_ref)
        assert good["ok"], good  # the healthy room's message is acknowledged
        seen = await expect_closed(a, 1011)  # the poisoned room restarts
        assert not [m for m in seen if m.get("ref") == bad_ref and m.get("ok")], seen
    assert [m["text"] for m in await history(http, healthy["id"])] == ["fine"]
    assert [m["text"] for m in await history(http, poisoned["id"])] == []


async def test_a_rest_op_whose_commit_fails_is_answered_503_not_left_waiting(
    live: Live, http: httpx.AsyncClient, db: Database
) -> None:
    token, _ = await live.user()
    room = await live.room(token)
    answer: list[httpx.Response] = []

    async def pin() -> None:
        track = {"provider": "deezer", "provider_id": "1", "title": "T", "artist": "A", "duration_ms": 60_000}
        answer.append(
            await http.post(
                f"/api/v1/rooms/{room['id']}/pin-track",
                json={"track": track},
                headers={"Authorization": f"Bearer {token}"},
            )
        )

    async with live.connect(room["id"], token) as a:
        async with db.transaction() as tx, trio.open_nursery() as nursery:
            await tx.execute("LOCK TABLE room_events IN SHARE ROW EXCLUSIVE MODE")
            nursery.start_soon(pin)  # its room.updated waits in the blocked batch
            await wait_journal_blocked_on_lock(db)
            await kill_journal_connection(db)
        await expect_closed(a, 1011)
    (response,) = answer
    assert response.status_code == 503, response.text
    async with live.connect(room["id"], token) as again:
        assert again.welcome["data"]["room"]["pinned_track"] is None  # nothing half-written


async def test_events_pipelined_behind_a_failed_batch_are_not_committed(
    live: Live, http: httpx.AsyncClient, db: Database
) -> None:
    token_a, _ = await live.user()
    token_b, _ = await live.user()
    room = await live.room(token_a)
    other = await live.room(token_b)

    async with live.connect(other["id"], token_b) as bystander, live.connect(room["id"], token_a) as a:
        assert (await bystander.chat("other room, before"))["data"]["seq"] == 1
        m1 = await a.chat("m1")
        assert m1["data"]["seq"] == 1
        async with db.transaction() as tx:
            await tx.execute("LOCK TABLE room_events IN SHARE ROW EXCLUSIVE MODE")
            await a.send("chat.send", {"text": "x2 in the failing batch"})
            await wait_journal_blocked_on_lock(db)
            # Decided while x2 commits (the actor pipelines), so it waits in the journal's next batch.
            await a.send("chat.send", {"text": "x3 pipelined behind it"})
            # The socket's reader handles frames in order and answers a bad one itself: once this
            # error is back, x3 has been handed to the actor.
            await a.send_raw("not json")
            bad, _ = await a.until(lambda m: m.get("type") == "reply" and m.get("ok") is False)
            assert bad["error"]["code"] == "bad_request"
            await kill_journal_connection(db)
            seen = await expect_closed(a, 1011)
            assert not [m for m in seen if is_event("chat.message")(m)], seen
        # This ack comes from a batch opened no earlier than x3's: the journal has written x3's by now.
        after = await bystander.chat("other room, after")
        assert after["data"]["seq"] == 2

    stored = await db.fetch(
        "SELECT seq FROM room_events WHERE room_id = $1 ORDER BY seq", uuid.UUID(room["id"])
    )
    assert [r["seq"] for r in stored] == [1], "only what was acknowledged may be in the journal"
    assert [m["text"] for m in await history(http, room["id"])] == ["m1"]


async def test_a_room_that_cannot_be_loaded_fails_alone(
    live: Live, http: httpx.AsyncClient, db: Database
) -> None:
    token_a, _ = await live.user()
    token_b, _ = await live.user()
    broken = await live.room(token_a)
    other = await live.room(token_b)
    # A journal with a hole, as the pipelined-batch fault above leaves behind: seq 2 after nothing.
    await db.execute(
        """INSERT INTO room_events (room_id, seq, name, payload, at)
           VALUES ($1, 2, 'chat.message', '{"data": {}}'::jsonb, now())""",
        uuid.UUID(broken["id"]),
    )
    async with live.connect(other["id"], token_b) as bystander:
        assert (await bystander.chat("before"))["data"]["seq"] == 1
        # That room may refuse the upgrade or accept and close 1011; either way without a welcome.
        with trio.fail_after(10), contextlib.suppress(HandshakeError):
            async with live.connect(broken["id"], token_a, read_welcome=False) as a:
                seen = await expect_closed(a, 1011)
                assert not [m for m in seen if m.get("type") == "welcome"], seen
        # The rest of the server goes on: this socket stays open, the room works, REST answers.
        assert (await bystander.chat("after"))["data"]["seq"] == 2
        assert (await http.get("/readyz")).status_code == 200
