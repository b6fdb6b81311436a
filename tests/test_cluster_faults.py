"""Two real ``seda serve`` nodes on one Postgres and one real NATS, and the faults a cluster meets:
kill -9 of a room's owner, an owner paused past its lease (SIGSTOP/SIGCONT), NATS killed and
back on its port, and the owner's journal connection terminated. Clients know which node they
talk to (each node has its own ports); every acknowledged seq must be seen exactly once, in
order, across reconnects with ``since``. ``-s`` shows the measured takeover times.
"""

from __future__ import annotations

import math
import os
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, HandshakeError

from server.cluster.nats_server import EmbeddedNats
from storage.database import Database
from tests.conftest import JWT_SECRET
from tests.live_client import PASSWORD, Client, Live, Message
from tests.process import SedaServer, run_seda, running

pytestmark = pytest.mark.slow

TTL_S = 1.5
# From the kill to the first welcome after reconnecting: the lease runs out within one TTL of the
# kill (the last renewal was at most TTL/3 before it); the edge notices at its next heartbeat (TTL/5)
# and the gateway retries every 0.2 s. The design bound is 2 x TTL; the allowance covers a
# reconnect (WebSocket handshake, token check), loading the room from Postgres and two busy CI cores.
TAKEOVER_ALLOWANCE_S = 1.0
TEST_DEADLINE_S = 120
DROPPED = (ConnectionClosed, HandshakeError, trio.BrokenResourceError, OSError)


def node_env(dsn: str, nats_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": dsn,
        "SEDA_NATS_URL": nats_url,
        "SEDA_LEASE_TTL_S": str(TTL_S),
        "SEDA_JWT_SECRET": JWT_SECRET,
        "SEDA_CHAT_RATE": "1000",
        "SEDA_CHAT_RATE_WINDOW_S": "1",
        "SEDA_OPS_PER_SECOND": "1000",
    }


@dataclass
class Node:
    name: str
    server: SedaServer
    http: httpx.AsyncClient
    live: Live


@dataclass
class Nodes:
    nats: EmbeddedNats
    a: Node
    b: Node
    a_journal_pids: list[int]
    peers: trio.Nursery  # the clients' reader tasks: cancelled when the test ends, however it ends


async def journal_pids(db: Database) -> list[int]:
    rows = await db.fetch(
        """SELECT pid FROM pg_stat_activity
           WHERE application_name = 'seda-journal' AND datname = current_database()"""
    )
    return sorted(r["pid"] for r in rows)


@asynccontextmanager
async def two_nodes(tmp_path: Path, dsn: str, db: Database, nursery: trio.Nursery) -> AsyncIterator[Nodes]:
    """NATS, then node A, then node B (so A's journal backend is known: the only one before B)."""
    nats = EmbeddedNats(tmp_path / "nats")
    url = nats.start()
    try:
        env = node_env(dsn, url)
        async with running(tmp_path / "a", nursery, **env) as a:
            pids = await journal_pids(db)
            assert len(pids) == 1, pids
            async with (
                running(tmp_path / "b", nursery, **env) as b,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{a.http_port}", timeout=15) as http_a,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{b.http_port}", timeout=15) as http_b,
                trio.open_nursery() as peers,
            ):
                try:
                    nodes = Nodes(
                        nats,
                        Node("A", a, http_a, Live(http_a, a.live_port)),
                        Node("B", b, http_b, Live(http_b, b.live_port)),
                        pids,
                        peers,
                    )
                    with trio.fail_after(TEST_DEADLINE_S):  # a hang fails the test, with its traceback
                        yield nodes
                    peers.cancel_scope.cancel()
                except BaseException:
                    peers.cancel_scope.cancel()
                    print(f"node B log:\n{b.log}")
                    raise
    finally:
        nats.stop()


def seqs(log: list[Message]) -> list[int]:
    """The seqs of the seq'd events in a client's log (durable events carry one; presence not)."""
    return [m["seq"] for m in log if m.get("type") == "event" and m.get("seq") is not None]


def assert_exactly_once_in_order(log: list[Message], since: int) -> list[int]:
    """Every seq after ``since`` (the first welcome's) exactly once, in order, with no gap."""
    seen = seqs(log)
    assert seen == list(range(since + 1, since + 1 + len(seen))), seen
    return seen


def assert_saw_every_ack(acked: list[int], *peers: tuple[Peer, Message]) -> None:
    """Each peer saw every seq after its first welcome exactly once, in order, acked ones among them."""
    for peer, first in peers:
        seen = assert_exactly_once_in_order(peer.log, first["data"]["seq"])
        assert set(acked) <= set(seen), (peer.name, acked, seen)


@dataclass
class Peer:
    """A user's socket to one room, reconnected at will to either node; one log across sockets.

    A reader task puts every message in ``log``; ops wait for their reply there."""

    name: str
    token: str
    room_id: str
    log: list[Message] = field(default_factory=list)
    client: Client | None = None
    close_code: int | None = None
    closed: trio.Event = field(default_factory=trio.Event)
    _changed: trio.Event = field(default_factory=trio.Event)

    def _note(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    @property
    def last_seq(self) -> int:
        welcomes = [m["data"]["seq"] for m in self.log if m.get("type") == "welcome"]
        return max([*welcomes, *seqs(self.log)], default=0)

    async def _run(self, live: Live, since: int | None, *, task_status: trio.TaskStatus[Message]) -> None:
        self.closed = trio.Event()
        self.close_code = None
        try:
            async with live.connect(self.room_id, self.token, since=since) as client:
                self.client = client
                self.log.append(client.welcome)
                self._note()
                task_status.started(client.welcome)
                while True:
                    self.log.append(await client.recv(timeout=math.inf))
                    self._note()
        except ConnectionClosed as exc:
            self.close_code = exc.reason.code if exc.reason is not None else None
            if self.client is None:
                raise
        finally:
            self.client = None
            self.closed.set()
            self._note()

    async def connect(self, nursery: trio.Nursery, live: Live, since: int | None = None) -> Message:
        welcome: Message = await nursery.start(self._run, live, since)
        return welcome

    async def reconnect(self, nursery: trio.Nursery, live: Live, timeout: float) -> tuple[Message, int]:
        """Connect with ``since`` = the last seq seen, again until welcomed; the welcome, attempts."""
        with trio.fail_after(timeout):
            for attempt in range(1, 1000):
                try:
                    return await self.connect(nursery, live, since=self.last_seq), attempt
                except DROPPED:
                    await trio.sleep(0.05)  # refused (1012: no owner yet): a client's backoff
        raise AssertionError("unreachable")

    async def wait(self, pred: Callable[[Message], bool], start: int = 0, timeout: float = 15) -> Message:
        """The first message from ``start`` on that matches; AssertionError if the socket closes
        first or nothing matches within ``timeout``."""
        with trio.move_on_after(timeout):
            while True:
                for message in self.log[start:]:
                    if pred(message):
                        return message
                start = len(self.log)
                if self.closed.is_set():
                    raise AssertionError(f"{self.name}: closed ({self.close_code}) before a match")
                await self._changed.wait()
        raise AssertionError(f"{self.name}: no match in {timeout} s; its log: {self.log}")

    async def op(self, op: str, data: dict[str, Any] | None = None, timeout: float = 15) -> Message:
        """Send an op; its reply (whatever it says)."""
        client = self.client
        assert client is not None, f"{self.name} is not connected"
        start = len(self.log)
        ref = await client.send(op, data)
        return await self.wait(lambda m: m.get("type") == "reply" and m.get("ref") == ref, start, timeout)

    async def chat(self, text: str) -> int:
        """An acknowledged chat: its seq; its event came before its reply."""
        start = len(self.log)
        reply = await self.op("chat.send", {"text": text})
        assert reply["ok"], reply
        seq: int = reply["data"]["seq"]
        at = self.log.index(reply, start)
        events = [m for m in self.log[:at] if m.get("type") == "event" and m.get("seq") == seq]
        assert len(events) == 1 and events[0]["name"] == "chat.message", (seq, self.log[start:])
        assert events[0]["data"]["text"] == text
        return seq

    async def reply_or_close(self, ref: int | None, start: int, timeout: float) -> Message | None:
        """The reply to ``ref`` (from ``start`` on), or None if the socket closes first."""
        with trio.fail_after(timeout):
            while True:
                for message in self.log[start:]:
                    if message.get("type") == "reply" and message.get("ref") == ref:
                        return message
                if self.closed.is_set():
                    return None
                await self._changed.wait()

    async def until_seq(self, seq: int, timeout: float = 15) -> None:
        await self.wait(lambda m: m.get("type") == "event" and (m.get("seq") or 0) >= seq, timeout=timeout)

    async def until_closed(self, timeout: float = 15) -> int | None:
        with trio.fail_after(timeout):
            await self.closed.wait()
        return self.close_code

    async def leave(self) -> None:
        client = self.client
        if client is not None:
            with trio.move_on_after(5) as slow:
                await client.ws.aclose()
            if slow.cancelled_caught:
                print(f"{self.name}: the close handshake got no answer within 5 s")
        with trio.fail_after(10):
            await self.closed.wait()


async def admin_token(nodes: Nodes) -> str:
    made = await run_seda(
        "user",
        "create",
        "--email",
        "root@example.com",
        "--username",
        "root",
        "--password",
        PASSWORD,
        "--role",
        "admin",
        env=nodes.a.server.env,
    )
    assert made.returncode == 0, made.stderr
    r = await nodes.b.http.post("/api/v1/auth/login", json={"username": "root", "password": PASSWORD})
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


async def room_on_a_with_a_user_on_each_node(
    nodes: Nodes,
) -> tuple[Message, tuple[Peer, Message], tuple[Peer, Message]]:
    """A room made on node A; user1 connected through A (its owner), user2 through B (an edge);
    with each one's welcome."""
    a, b = nodes.a, nodes.b
    token1, _ = await a.live.user("user1")
    token2, _ = await b.live.user("user2")
    room = await a.live.room(token1)
    p1, p2 = Peer("user1@A", token1, room["id"]), Peer("user2@B", token2, room["id"])
    w1 = await p1.connect(nodes.peers, a.live)
    w2 = await p2.connect(nodes.peers, b.live)
    return room, (p1, w1), (p2, w2)


async def owner_of(db: Database, room_id: str) -> tuple[str, int] | None:
    row = await db.fetchrow(
        "SELECT node_id::text, epoch FROM room_leases WHERE room_id = $1 AND expires_at > now()",
        uuid.UUID(room_id),
    )
    return (row[0], row[1]) if row is not None else None


def node_id(node: Node) -> str:
    match = re.search(r"node ([0-9a-f-]{36}) \(lease TTL", node.server.log)
    assert match is not None, node.server.log
    return match.group(1)


async def last_stored_seq(db: Database, room_id: str) -> int:
    value = await db.fetchval("SELECT max(seq) FROM room_events WHERE room_id = $1", uuid.UUID(room_id))
    return int(value or 0)


# ---- 1. an edge: a socket and REST calls on the node that does not own the room ---------------


async def test_edge_serves_a_room_owned_by_the_other_node(
    tmp_path: Path, dsn: str, db: Database, nursery: trio.Nursery
) -> None:
    async with two_nodes(tmp_path, dsn, db, nursery) as nodes:
        a, b = nodes.a, nodes.b
        token1, id1 = await a.live.user("user1")
        token2, id2 = await b.live.user("user2")
        room = await a.live.room(token1)
        p1, p2 = Peer("user1@A", token1, room["id"]), Peer("user2@B", token2, room["id"])

        w1 = await p1.connect(nodes.peers, a.live)
        assert await owner_of(db, room["id"]) == (node_id(a), 1)
        w2 = await p2.connect(nodes.peers, b.live)
        assert await owner_of(db, room["id"]) == (node_id(a), 1), "B serves it as an edge, no claim"
        # Presence both ways: user2's welcome lists user1; user1 is told user2 joined.
        assert {p["user_id"] for p in w2["data"]["presence"]} == {id1, id2}
        joined = await p1.wait(lambda m: m.get("name") == "presence.join")
        assert joined["data"]["user_id"] == id2

        # Room reads on the edge node count the listeners the owner has (from its lease renewal).
        with trio.fail_after(10):
            while (await b.http.get(f"/api/v1/rooms/{room['id']}")).json()["listeners"] != 2:  # noqa: ASYNC110
                await trio.sleep(TTL_S / 6)  # the owner writes its counts every TTL/3
        listed = (await b.http.get("/api/v1/rooms/trending")).json()["items"]
        assert [r["listeners"] for r in listed if r["id"] == room["id"]] == [2], listed

        acked = []
        for i in range(10):
            acked.append(await (p1 if i % 2 == 0 else p2).chat(f"m{i}"))
        await p1.until_seq(acked[-1])
        await p2.until_seq(acked[-1])
        senders = {m["data"]["text"]: m["data"]["user_id"] for m in p2.log if m.get("name") == "chat.message"}
        assert senders == {f"m{i}": id1 if i % 2 == 0 else id2 for i in range(10)}, senders
        s1 = assert_exactly_once_in_order(p1.log, w1["data"]["seq"])
        s2 = assert_exactly_once_in_order(p2.log, w2["data"]["seq"])
        assert s1 == s2 == acked

        # REST that needs the live room, made on the edge node.
        auth = {"Authorization": f"Bearer {token1}"}
        r = await b.http.post(f"/api/v1/rooms/{room['id']}/dj/start", json={"mode": "fan"}, headers=auth)
        assert r.status_code == 201, r.text
        session_id = r.json()["session_id"]
        started = [await p.wait(lambda m: m.get("name") == "session.started") for p in (p1, p2)]
        assert started[0]["seq"] == started[1]["seq"] == acked[-1] + 1
        on_a = (await a.http.get(f"/api/v1/rooms/{room['id']}/dj", headers=auth)).json()
        on_b = (await b.http.get(f"/api/v1/rooms/{room['id']}/dj", headers=auth)).json()
        assert on_a == on_b, (on_a, on_b)
        assert session_id in str(on_a)
        # A REST-only op (its body a REST model, not op data) crosses to the owner too; an
        # explicit null (clear the description) survives the crossing.
        r = await b.http.patch(
            f"/api/v1/rooms/{room['id']}", json={"name": "renamed on B", "description": None}, headers=auth
        )
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "renamed on B" and r.json()["description"] is None
        for p in (p1, p2):
            updated = await p.wait(lambda m: m.get("name") == "room.updated")
            assert updated["data"]["room"]["name"] == "renamed on B"

        # The operations view: both nodes alive, A owning the room.
        admin = {"Authorization": f"Bearer {await admin_token(nodes)}"}
        r = await b.http.get("/api/v1/admin/nodes", headers=admin)
        assert r.status_code == 200, r.text
        listed = {n["node_id"]: n for n in r.json()["items"]}
        assert set(listed) == {node_id(a), node_id(b)}, r.json()
        assert listed[node_id(a)]["rooms_owned"] == 1
        assert listed[node_id(b)]["rooms_owned"] == 0

        await p2.leave()
        await p1.leave()


# ---- 2. kill -9 of the owner ------------------------------------------------------------------


async def test_kill9_of_the_owner_the_edge_takes_the_room_within_two_ttls(
    tmp_path: Path, dsn: str, db: Database, nursery: trio.Nursery
) -> None:
    async with two_nodes(tmp_path, dsn, db, nursery) as nodes:
        a, b = nodes.a, nodes.b
        room, (p1, w1), (p2, w2) = await room_on_a_with_a_user_on_each_node(nodes)
        acked = [await p1.chat("a0"), await p2.chat("b0"), await p1.chat("a1")]

        # user2 chats through B without a pause; A is killed in the middle of it.
        kill_at: list[float] = []

        async def chatter() -> None:
            i = 1
            try:
                while True:
                    acked.append(await p2.chat(f"b{i}"))
                    i += 1
                    if i == 6:
                        assert a.server.process is not None
                        os.kill(a.server.process.pid, signal.SIGKILL)
                        kill_at.append(time.monotonic())
            except (AssertionError, *DROPPED):
                return  # its socket closed (an op then gets no reply)

        with trio.fail_after(30):
            await chatter()
        assert kill_at, "the chatter stopped before the kill"
        assert await p2.until_closed() == 1012, "the edge closes its sockets with 1012"
        assert await p1.until_closed() in (1006, None)  # A's sockets just drop

        welcome, attempts = await p2.reconnect(nodes.peers, b.live, timeout=10)
        took = time.monotonic() - kill_at[0]
        print(f"kill -9 of the owner: first welcome on B {took:.2f} s after it ({attempts} attempt(s))")
        assert took < 2 * TTL_S + TAKEOVER_ALLOWANCE_S
        assert welcome["data"]["resumed"] is True
        assert (await owner_of(db, room["id"]) or ("", 0))[0] == node_id(b)

        # The client that was on A comes to B and misses nothing.
        await p1.reconnect(nodes.peers, b.live, timeout=10)
        acked.append(await p2.chat("after"))
        acked.append(await p1.chat("after, from user1"))
        await p1.until_seq(acked[-1])
        await p2.until_seq(acked[-1])
        assert_saw_every_ack(acked, (p1, w1), (p2, w2))
        assert await last_stored_seq(db, room["id"]) == acked[-1]
        await p1.leave()
        await p2.leave()


# ---- 3. the owner paused past its lease ----------------------------------------------------------


async def test_owner_paused_past_its_lease_loses_the_room_and_commits_nothing(
    tmp_path: Path, dsn: str, db: Database, nursery: trio.Nursery
) -> None:
    async with two_nodes(tmp_path, dsn, db, nursery) as nodes:
        a, b = nodes.a, nodes.b
        room, (p1, w1), (p2, w2) = await room_on_a_with_a_user_on_each_node(nodes)
        acked = [await p1.chat("a0"), await p2.chat("b0")]
        epoch_a = await owner_of(db, room["id"])
        assert epoch_a is not None and epoch_a[0] == node_id(a)

        assert a.server.process is not None
        pid = a.server.process.pid
        os.kill(pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            # A chat from user1 waits in A's socket buffer: A reads it only after SIGCONT.
            assert p1.client is not None
            start1 = len(p1.log)
            stale_ref = await p1.client.send("chat.send", {"text": "sent to the paused owner"})

            # user2's op goes to the paused owner: no reply from it (an error once the request
            # times out) or the edge closes the socket; either way user2 reconnects to B.
            assert p2.client is not None
            start2 = len(p2.log)
            ref = await p2.client.send("chat.send", {"text": "to the paused owner"})
            got = await p2.reply_or_close(ref, start2, timeout=30)
            outcome = got if got is not None else f"closed {p2.close_code}"
            print(f"an edge op to a paused owner: {outcome} after {time.monotonic() - stopped_at:.2f} s")
            if isinstance(outcome, dict):
                assert not outcome["ok"] and outcome["error"]["code"] == "internal", outcome
                await p2.leave()
            else:
                assert p2.close_code == 1012
            welcome, _ = await p2.reconnect(nodes.peers, b.live, timeout=15)
            assert welcome["data"]["resumed"] is True
            owner = await owner_of(db, room["id"])
            assert owner is not None and owner[0] == node_id(b) and owner[1] > epoch_a[1]
            acked.append(await p2.chat("b1, B owns it now"))
            # Paused for at least 3 x TTL in all.
            await trio.sleep(max(0.0, 3 * TTL_S - (time.monotonic() - stopped_at)))
        finally:
            os.kill(pid, signal.SIGCONT)

        with trio.fail_after(15):
            await a.server.wait_for(re.compile(r"leases? lost"))
        assert await p1.until_closed() == 1012, "A's own sockets in the room resume elsewhere"
        stale = [m for m in p1.log[start1:] if m.get("type") == "reply" and m.get("ref") == stale_ref]
        assert not [m for m in stale if m["ok"]], stale
        acked.append(await p2.chat("b2, after A woke"))
        await p2.until_seq(acked[-1])

        await p1.reconnect(nodes.peers, b.live, timeout=15)
        acked.append(await p1.chat("a2, from user1 on B"))
        await p2.until_seq(acked[-1])
        await p1.until_seq(acked[-1])
        assert_saw_every_ack(acked, (p1, w1), (p2, w2))
        assert "sent to the paused owner" not in str(p2.log)
        assert await last_stored_seq(db, room["id"]) == p2.last_seq == acked[-1]
        await p1.leave()
        await p2.leave()


# ---- 4. NATS killed and back on its port -------------------------------------------------------


async def test_nats_killed_local_rooms_keep_working_and_edges_come_back(
    tmp_path: Path, dsn: str, db: Database, nursery: trio.Nursery
) -> None:
    async with two_nodes(tmp_path, dsn, db, nursery) as nodes:
        a, b = nodes.a, nodes.b
        token1, _ = await b.live.user("user1")
        token2, _ = await a.live.user("user2")
        token3, _ = await a.live.user("user3")
        room = await b.live.room(token1)
        owner = Peer("user1@B", token1, room["id"])
        edge = Peer("user2@A", token2, room["id"])
        w_owner = await owner.connect(nodes.peers, b.live)
        await edge.connect(nodes.peers, a.live)
        acked = [await owner.chat("o0"), await edge.chat("e0")]

        port = nodes.nats.port
        assert port is not None
        nodes.nats.kill()
        down_at = time.monotonic()

        # The room B owns keeps working for B's sockets.
        for i in range(1, 4):
            acked.append(await owner.chat(f"o{i} while NATS is down"))

        # An op from the edge on A: an `internal` error (retryable), or its socket closes 1012.
        assert edge.client is not None
        start = len(edge.log)
        ref = await edge.client.send("chat.send", {"text": "through a dead bus"})
        got = await edge.reply_or_close(ref, start, timeout=30)
        took = time.monotonic() - down_at
        if got is not None:
            print(f"edge op with NATS down: {got} after {took:.2f} s")
            assert not got["ok"] and got["error"]["code"] == "internal", got
        else:
            print(f"edge op with NATS down: socket closed {edge.close_code} after {took:.2f} s")
            assert edge.close_code == 1012
        acked.append(await owner.chat("o4, still"))

        url = await trio.to_thread.run_sync(lambda: nodes.nats.start(port=port))
        assert url.endswith(f":{port}")

        # A new client on A joins B's room (once A's bus is back) and its chat is acknowledged.
        newcomer = Peer("user3@A", token3, room["id"])
        with trio.fail_after(20):
            while True:
                await newcomer.reconnect(nodes.peers, a.live, timeout=20)
                reply = await newcomer.op("chat.send", {"text": "n0, bus back"})
                if reply["ok"]:
                    acked.append(reply["data"]["seq"])
                    break
                assert reply["error"]["code"] == "internal", reply
                await newcomer.leave()
        await owner.until_seq(acked[-1])
        await newcomer.until_seq(acked[-1])
        assert_saw_every_ack(acked, (owner, w_owner))
        assert await last_stored_seq(db, room["id"]) == acked[-1]
        await newcomer.leave()
        await edge.leave()
        await owner.leave()


# ---- 5. the owner's journal connection terminated ----------------------------------------------


async def test_owner_journal_connection_terminated_the_room_recovers(
    tmp_path: Path, dsn: str, db: Database, nursery: trio.Nursery
) -> None:
    async with two_nodes(tmp_path, dsn, db, nursery) as nodes:
        a, b = nodes.a, nodes.b
        room, (p1, w1), (p2, w2) = await room_on_a_with_a_user_on_each_node(nodes)
        acked = [await p1.chat("a0"), await p2.chat("b0")]

        rows = await db.fetch(
            "SELECT pid, pg_terminate_backend(pid, 5000) AS gone FROM unnest($1::int[]) AS pid",
            nodes.a_journal_pids,
        )
        assert [r["gone"] for r in rows] == [True], rows

        # The next batch fails on the dead connection: the room's actor restarts from Postgres,
        # its sockets close (1011 on A, 1012 through the edge) and resume with since.
        start1, start2 = len(p1.log), len(p2.log)
        assert p1.client is not None
        ref = await p1.client.send("chat.send", {"text": "into a dead connection"})
        assert await p1.until_closed() == 1011
        assert await p2.until_closed() in (1011, 1012)
        assert not [m for m in p1.log[start1:] if m.get("ref") == ref and m.get("ok")]
        assert "into a dead connection" not in str(p2.log[start2:])

        await p1.reconnect(nodes.peers, a.live, timeout=15)
        await p2.reconnect(nodes.peers, b.live, timeout=15)
        acked.append(await p1.chat("a1, after"))
        acked.append(await p2.chat("b1, after"))
        await p1.until_seq(acked[-1])
        await p2.until_seq(acked[-1])
        assert_saw_every_ack(acked, (p1, w1), (p2, w2))
        assert await last_stored_seq(db, room["id"]) == acked[-1]
        await p1.leave()
        await p2.leave()
