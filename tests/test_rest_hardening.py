"""REST against hostile and careless clients (issue 15): odd methods, closes, bans, history order,
what a response may show, over real sockets against a real server."""

from __future__ import annotations

import itertools
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from protocol.events import Event
from server.config import Settings
from server.context import AppContext
from server.runtime import Bound
from storage.database import Database
from storage.journal import JournalWriter, Ticket
from tests.live_client import Client, Live, history, is_event
from tests.test_reports import admin_auth, bearer


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Chat bursts faster than a person types (the history test needs many messages at once)."""
    return replace(settings, chat_rate=1000, ops_per_second=1000)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection (EOF) within the wait


async def raw_http(port: int, head: str, *, wait: float = 3.0) -> RawResponse:
    """Send ``head`` as is on a fresh TCP connection; read what comes back until EOF or ``wait``."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(head.encode("latin-1"))
        received = b""
        closed = False
        with trio.move_on_after(wait):
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    closed = True
                    break
                received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    header_block, _, body = rest.partition(b"\r\n\r\n")
    headers = {}
    for line in header_block.split(b"\r\n"):
        name, _, value = line.decode("latin-1").partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    status = int(status_line.split()[1]) if status_line else 0
    return RawResponse(status, headers, body, closed)


@pytest.mark.parametrize(
    "method, version, extra",
    [
        ("TRACE", "HTTP/1.1", "Connection: close\r\n"),
        ("TRACE", "HTTP/1.0", ""),
        ("PROPFIND", "HTTP/1.1", "Connection: close\r\n"),
        ("CONNECT", "HTTP/1.1", "Connection: close\r\n"),
    ],
)
async def test_a_method_the_path_does_not_serve_is_405_at_once_and_the_connection_ends(
    server: Bound, method: str, version: str, extra: str
) -> None:
    head = f"{method} /api/v1/auth/register {version}\r\nHost: x\r\n{extra}\r\n"
    started = trio.current_time()
    r = await raw_http(server.http_port, head)
    assert r.status == 405, r
    error = json.loads(r.body)["error"]
    assert error["code"] == "bad_request" and error["details"]["allowed"] == ["OPTIONS", "POST"]
    assert r.headers["allow"] == "OPTIONS, POST"
    # The client asked for the connection to end with the response: it ends then, not 15 s later.
    assert r.closed and trio.current_time() - started < 2, r


async def test_a_close_is_honoured_for_every_response(server: Bound) -> None:
    r = await raw_http(server.http_port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert r.status == 200 and json.loads(r.body) == {"status": "ok"}
    assert r.closed


async def test_a_garbage_method_is_400_and_the_connection_ends(server: Bound) -> None:
    r = await raw_http(server.http_port, "G(T /api/v1/auth/register HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 400 and r.closed, r


async def test_an_idle_keep_alive_connection_is_closed_by_the_server(server: Bound) -> None:
    # Hypercorn's keep-alive timeout is 5 s: an idle connection must not stay open for ever.
    r = await raw_http(server.http_port, "TRACE /api/v1/auth/register HTTP/1.1\r\nHost: x\r\n\r\n", wait=10)
    assert r.status == 405 and r.closed, r


# ---- item 7: every entry path takes the one entry rule ---------------------------------------


async def test_a_banned_member_cannot_join_again(
    http: httpx.AsyncClient, live: Live, ctx: AppContext
) -> None:
    owner, _ = await live.user("bouncer")
    member, member_id = await live.user("rowdy")
    stranger, stranger_id = await live.user("passerby")
    room = await live.room(owner)
    joined = await http.post(f"/api/v1/rooms/{room['id']}/join", headers=bearer(member))
    assert joined.json() == {"room_id": room["id"], "role": "member"}
    async with live.connect(room["id"], owner) as mod:
        for target in (member_id, stranger_id):
            reply, _ = await mod.request("mod.ban", {"user_id": target, "reason": "spam"})
            assert reply["ok"], reply

    for token in (member, stranger):  # a member before the ban, and someone who never was
        r = await http.post(f"/api/v1/rooms/{room['id']}/join", headers=bearer(token))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    # The socket door says the same.
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(live.url(room["id"], member)):
            pass
    assert rejected.value.status_code == 403

    admin, _ = await admin_auth(ctx)
    banned, banned_id = await live.user("sitebanned")
    r = await http.post(f"/api/v1/admin/users/{banned_id}/ban", json={"reason": "spam"}, headers=admin)
    assert r.status_code == 200, r.text
    r = await http.post(f"/api/v1/rooms/{room['id']}/join", headers=bearer(banned))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text


async def test_a_site_admin_does_not_join_a_private_room_by_looking(
    http: httpx.AsyncClient, live: Live, ctx: AppContext
) -> None:
    owner, _ = await live.user("keeper")
    private = await live.room(owner, type="private")
    admin, _ = await admin_auth(ctx)
    assert (await http.get(f"/api/v1/rooms/{private['id']}", headers=admin)).status_code == 200
    r = await http.post(f"/api/v1/rooms/{private['id']}/join", headers=admin)
    assert r.status_code == 403, r.text


# ---- item 5: chat history in the order everyone saw it live ---------------------------------


async def test_history_follows_the_rooms_seq_when_a_batch_shares_a_timestamp(
    http: httpx.AsyncClient, live: Live
) -> None:
    owner, _ = await live.user("host")
    room = await live.room(owner)
    talkers = [owner] + [(await live.user(f"talker{i}"))[0] for i in range(3)]
    per_socket = 25
    total = per_socket * len(talkers)

    async def burst(sock: Client, n: int) -> None:
        for k in range(per_socket):  # back to back, no waiting for replies: they share batches
            await sock.send("chat.send", {"text": f"{n}-{k}"})

    async with (
        live.connect(room["id"]) as listener,
        live.connect(room["id"], talkers[0]) as a,
        live.connect(room["id"], talkers[1]) as b,
        live.connect(room["id"], talkers[2]) as c,
        live.connect(room["id"], talkers[3]) as d,
    ):
        async with trio.open_nursery() as nursery:
            for n, sock in enumerate((a, b, c, d)):
                nursery.start_soon(burst, sock, n)
        seen: list[dict[str, object]] = []
        while len(seen) < total:
            message, _ = await listener.until(is_event("chat.message"))
            seen.append(message)

    live_order = [m["data"]["id"] for m in seen]  # type: ignore[index]
    assert [m["seq"] for m in seen] == sorted(m["seq"] for m in seen)  # type: ignore[type-var]
    stored = await history(http, room["id"], limit=7)  # small pages: the cursor follows seq too
    assert [m["id"] for m in stored] == live_order[::-1]
    seqs = [m["seq"] for m in stored]
    assert all(newer > older for newer, older in itertools.pairwise(seqs))
    # What made the old order (created_at, id) wrong: messages of one moment share a timestamp.
    shared = sum(n - 1 for n in Counter(m["at"] for m in stored).values())
    assert shared > 0, "the burst should put several messages on one timestamp"


# ---- item 6: a REST response shows its own op's committed result -----------------------------


@dataclass
class _Held:
    """A room.updated whose journal submission is held back: decided and applied by the actor,
    not yet handed to the journal (so not committed: a crash now would undo it)."""

    submitted: trio.Event = field(default_factory=trio.Event)
    release: trio.Event = field(default_factory=trio.Event)


class _HeldTicket:
    """The actor's ticket for a held submission: settles once released and really committed."""

    def __init__(self) -> None:
        self.handed = trio.Event()
        self.real: Ticket | None = None

    @property
    def settled(self) -> bool:
        return self.real is not None and self.real.settled

    async def wait(self) -> None:
        await self.handed.wait()
        assert self.real is not None
        await self.real.wait()

    def results_for(self, room_id: str, seq: int) -> list[Any]:
        return self.real.results_for(room_id, seq) if self.real is not None else []

    def notes_for(self, room_id: str, seq: int) -> list[tuple[str, dict[str, Any]]]:
        return self.real.notes_for(room_id, seq) if self.real is not None else []


async def test_a_response_shows_its_own_op_and_nothing_uncommitted(
    http: httpx.AsyncClient, live: Live, db: Database, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, _ = await live.user("steward")
    room = await live.room(owner, description="before")
    held = {"first": _Held(), "second": _Held()}
    submit = JournalWriter.submit

    def holding_submit(writer: JournalWriter, room_id: str, events: list[Event], snapshot: Any = None) -> Any:
        marks = [e.data["room"].get("description") for e in events if e.name == "room.updated"]
        gate = held.get(marks[-1]) if marks else None
        if gate is None:
            return submit(writer, room_id, events, snapshot)
        ticket = _HeldTicket()

        async def hand_over() -> None:
            await gate.release.wait()
            ticket.real = submit(writer, room_id, events, snapshot)
            ticket.handed.set()

        nursery.start_soon(hand_over)
        gate.submitted.set()
        return ticket

    monkeypatch.setattr(JournalWriter, "submit", holding_submit)
    responses: dict[str, httpx.Response] = {}
    answered = {name: trio.Event() for name in held}

    async def patch(description: str) -> None:
        responses[description] = await http.patch(
            f"/api/v1/rooms/{room['id']}", json={"description": description}, headers=bearer(owner)
        )
        answered[description].set()

    async def stored() -> str:
        value: str = await db.fetchval("SELECT description FROM rooms WHERE id = $1", uuid.UUID(room["id"]))
        return value

    with trio.fail_after(10):
        nursery.start_soon(patch, "first")
        await held["first"].submitted.wait()  # the first update is applied, its commit pending
        nursery.start_soon(patch, "second")
        await held["second"].submitted.wait()  # the second is applied on top, not committed
        held["first"].release.set()
        await answered["first"].wait()
        # The first update committed and answered while the second is still only in memory:
        # its response shows its own result, not the second's (which a crash would undo).
        assert await stored() == "first"
        assert responses["first"].status_code == 200, responses["first"].text
        assert responses["first"].json()["description"] == "first"
        held["second"].release.set()
        await answered["second"].wait()
    assert responses["second"].json()["description"] == "second"
    assert await stored() == "second"
    assert (await http.get(f"/api/v1/rooms/{room['id']}")).json()["description"] == "second"
