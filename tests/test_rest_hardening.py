"""REST against hostile and careless clients (issue 15): odd methods, closes, bans, history order,
what a response may show, over real sockets against a real server."""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx
import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from server.context import AppContext
from server.runtime import Bound
from tests.live_client import Live
from tests.test_reports import admin_auth, bearer


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
