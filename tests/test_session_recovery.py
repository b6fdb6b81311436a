"""A live fan session survives SIGKILL of a real ``seda serve``.

The room's actor comes back at boot (nobody connected), recovered from Postgres: the
playing track keeps its original ``started_at``/``ends_at``, the rotation and the queue
are intact, clients resume with ``since`` and nothing is lost or invented; the session
then carries on (``mod.skip`` starts the next track with the next seq).
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed

from tests.live_client import Client, Live, Message, is_event
from tests.process import START_TIMEOUT, running

pytestmark = pytest.mark.slow

LONG_MS = 600_000  # ten minutes: it cannot end on its own during the test
SECOND_MS = 240_000


def spotify(track_id: str, title: str, duration_ms: int) -> dict[str, Any]:
    assert re.fullmatch(r"[A-Za-z0-9]{22}", track_id)
    return {
        "url": f"https://open.spotify.com/track/{track_id}",
        "title": title,
        "artist": "Recovery Test",
        "duration_ms": duration_ms,
    }


def durable(messages: list[Message]) -> list[Message]:
    return [m for m in messages if m.get("type") == "event" and "seq" in m]


async def read_until_dropped(client: Client) -> list[Message]:
    """Everything the socket still delivers before it drops."""
    rest: list[Message] = []
    with trio.fail_after(30):
        try:
            while True:
                rest.append(await client.recv(timeout=30))
        except ConnectionClosed:
            return rest


async def test_fan_session_resumes_after_sigkill_with_its_clock(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    data = tmp_path / "data"
    async with running(data, nursery) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
            live = Live(http, server.live_port)
            host_token, host_id = await live.user("host")
            dj_token, dj_id = await live.user("deejay")
            room_id = (await live.room(host_token))["id"]
            seen: list[Message] = []  # every durable event the host's socket saw, in order

            async with live.connect(room_id, host_token) as host, live.connect(room_id, dj_token) as dj:
                assert host.welcome["data"]["session"] is None
                base_seq = host.welcome["data"]["seq"]

                reply, before = await host.request("session.start", {"mode": "fan"})
                assert reply["ok"], reply
                session_id = reply["data"]["session_id"]
                seen += durable(before)
                reply, _ = await dj.request("dj.join")
                assert reply["ok"], reply
                reply, _ = await dj.request(
                    "queue.add", {"track": spotify("4uLU6hMCjMI75M1A2tKUQC", "Long One", LONG_MS)}
                )
                assert reply["ok"], reply
                first_id = reply["data"]["item_id"]
                reply, _ = await dj.request(
                    "queue.add", {"track": spotify("7ouMYWpwJ422jRcDASZB7P", "Second", SECOND_MS)}
                )
                assert reply["ok"], reply
                second_id = reply["data"]["item_id"]

                def second_queued(m: Message) -> bool:
                    return is_event("queue.updated")(m) and [i["item_id"] for i in m["data"]["queue"]] == [
                        second_id
                    ]

                last, before = await host.until(second_queued)
                seen += [*durable(before), last]
                names = [m["name"] for m in seen]
                assert names == [
                    "session.started",
                    "dj.rotation",
                    "queue.updated",
                    "track.started",
                    "queue.updated",
                ], names
                seqs = [m["seq"] for m in seen]
                assert seqs == list(range(base_seq + 1, base_seq + 1 + len(seen))), seqs
                started = seen[3]["data"]
                assert started["item"]["item_id"] == first_id and started["dj_id"] == dj_id
                assert started["ends_at"] - started["started_at"] == LONG_MS
                last_seq = seqs[-1]

                # Nothing else is waiting (a ping's reply comes after anything already sent).
                reply, before = await host.request("ping")
                assert reply["ok"] and durable(before) == [], before

                # SIGKILL with both sockets open: no close frame, no flush, no snapshot.
                assert await server.stop(signal.SIGKILL) == -signal.SIGKILL
                for client in (host, dj):
                    assert durable(await read_until_dropped(client)) == []

        # Same data directory: the orphaned Postgres is adopted; same signing key.
        await server.start(nursery, timeout=START_TIMEOUT)
        # The room came back at boot, before anyone connected, at the seq the clients last saw.
        assert "resuming 1 room(s) with a live DJ session" in server.log, server.log
        assert f"room {room_id} started at seq {last_seq}" in server.log, server.log

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
            live = Live(http, server.live_port)
            async with (
                live.connect(room_id, host_token, since=last_seq) as host,
                live.connect(room_id, dj_token, since=last_seq, encoding="msgpack") as dj,
            ):
                for client in (host, dj):
                    welcome = client.welcome["data"]
                    assert (welcome["resumed"], welcome["replayed"], welcome["seq"]) == (True, 0, last_seq)
                    session = welcome["session"]
                    assert session is not None
                    assert (session["session_id"], session["mode"], session["host_id"]) == (
                        session_id,
                        "fan",
                        host_id,
                    )
                    assert session["rotation"] == {"djs": [dj_id], "active": dj_id}
                    playing = session["now_playing"]
                    assert playing is not None
                    assert playing["item"]["item_id"] == first_id and playing["dj_id"] == dj_id
                    # The track resumes where it was: its clock did not restart.
                    assert (playing["started_at"], playing["ends_at"]) == (
                        started["started_at"],
                        started["ends_at"],
                    )
                    assert playing["item"]["track"] == started["item"]["track"]
                    assert [i["item_id"] for i in session["queue"]] == [second_id]
                    assert session["queue"][0]["track"]["duration_ms"] == SECOND_MS

                reply, before = await host.request("mod.skip")
                assert reply["ok"], reply
                after = durable(before)
                assert [(m["name"], m["seq"]) for m in after] == [
                    ("track.ended", last_seq + 1),
                    ("track.started", last_seq + 2),
                ], after
                ended, next_started = after[0]["data"], after[1]["data"]
                assert ended["item_id"] == first_id and ended["reason"] == "mod_skip"
                assert next_started["item"]["item_id"] == second_id and next_started["dj_id"] == dj_id
                assert next_started["ends_at"] - next_started["started_at"] == SECOND_MS
                assert next_started["started_at"] >= started["started_at"]

                # The DJ sees the same events with the same seqs, and nothing durable before them.
                mine, before = await dj.until(
                    lambda m: is_event("track.started")(m) and m["data"]["item"]["item_id"] == second_id
                )
                assert [(m["name"], m["seq"]) for m in [*durable(before), mine]] == [
                    ("track.ended", last_seq + 1),
                    ("track.started", last_seq + 2),
                ]

                seen += after
                all_seqs = [m["seq"] for m in seen]
                assert all_seqs == list(range(base_seq + 1, last_seq + 3)), all_seqs

        assert await server.stop(signal.SIGTERM) == 0
