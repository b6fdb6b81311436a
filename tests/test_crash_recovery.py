"""Crash and restart of a real ``seda serve`` (embedded Postgres, fsync on): what was acked survives.

SIGKILL mid-burst must lose nothing a client was told about, leave no seq gap or
reuse, and keep nonce retries exactly-once; SIGTERM closes sockets with 1001 and
they resume with ``since``.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed

from tests.live_client import Client, Live, Message, history, is_event
from tests.process import START_TIMEOUT, running

pytestmark = pytest.mark.slow

# Rate limits out of the way of the burst; a snapshot every few events, so recovery is
# snapshot + journal tail rather than the journal alone.
SERVER_ENV = {
    "SEDA_PG_FSYNC": "1",
    "SEDA_CHAT_RATE": "100000",
    "SEDA_CHAT_RATE_WINDOW_S": "1",
    "SEDA_OPS_PER_SECOND": "100000",
    "SEDA_SNAPSHOT_EVERY": "7",
}


async def until_dropped(client: Client, into: list[Message]) -> int:
    """Read until the socket is gone; everything read goes to ``into``. Returns the close code."""
    try:
        while True:
            into.append(await client.recv(timeout=30))
    except ConnectionClosed as closed:
        assert closed.reason is not None
        return closed.reason.code


async def test_sigkill_mid_burst_loses_nothing_acknowledged(tmp_path: Path, nursery: trio.Nursery) -> None:
    data = tmp_path / "data"
    async with running(data, nursery, **SERVER_ENV) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
            live = Live(http, server.live_port)
            token_a, _ = await live.user("alice")
            token_b, _ = await live.user("bob")
            room_id = (await live.room(token_a))["id"]

            acked: dict[int, tuple[str, int]] = {}  # burst index -> (message_id, seq)
            sent: list[int] = []
            watched: list[Message] = []  # everything bob saw
            window = 20
            kill_after = 40

            async with live.connect(room_id, token_a) as a, live.connect(room_id, token_b) as b:
                killed = trio.Event()
                drops: dict[str, int] = {}

                async def watch() -> None:
                    drops["b"] = await until_dropped(b, watched)

                async def burst() -> None:
                    """Keep ``window`` chat.sends in flight; SIGKILL once ``kill_after`` are acked."""
                    ref_of: dict[int, int] = {}
                    room_for_more = trio.Semaphore(window)

                    async def read_acks() -> None:
                        try:
                            while True:
                                message = await a.recv(timeout=30)
                                if message.get("type") != "reply":
                                    continue
                                assert message["ok"], message
                                index = ref_of[message["ref"]]
                                acked[index] = (message["data"]["message_id"], message["data"]["seq"])
                                room_for_more.release()
                                if len(acked) == kill_after and not killed.is_set():
                                    # Right now: `window` sends are out with no ack.
                                    assert await server.stop(signal.SIGKILL) == -signal.SIGKILL
                                    killed.set()
                        except ConnectionClosed as closed:
                            assert closed.reason is not None
                            drops["a"] = closed.reason.code
                            room_for_more.release()  # the sender may be waiting for a slot

                    async with trio.open_nursery() as inner:
                        inner.start_soon(read_acks)
                        for i in range(10_000):
                            await room_for_more.acquire()
                            if killed.is_set():
                                break
                            try:
                                ref = await a.send("chat.send", {"text": f"burst {i}", "nonce": f"n-{i}"})
                            except ConnectionClosed:
                                break
                            assert ref is not None
                            ref_of[ref] = i
                            sent.append(i)

                with trio.fail_after(60):
                    async with trio.open_nursery() as clients:
                        clients.start_soon(watch)
                        clients.start_soon(burst)

            assert killed.is_set()
            # The clients saw the socket drop, without a close frame (1006: abnormal closure).
            assert drops == {"a": 1006, "b": 1006}, drops
            unacked = [i for i in sent if i not in acked]
            assert len(acked) >= kill_after and unacked, (len(acked), unacked)
            last_acked = max(seq for _, seq in acked.values())
            assert sorted(seq for _, seq in acked.values()) == list(range(1, len(acked) + 1))
            seen_by_b = {m["seq"]: m["data"] for m in watched if is_event("chat.message")(m)}
            assert list(seen_by_b) == list(range(1, len(seen_by_b) + 1))

        # Same data directory: the same Postgres cluster, the same signing key.
        await server.start(nursery, timeout=START_TIMEOUT)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
            live = Live(http, server.live_port)
            stored = await history(http, room_id, limit=17)
            by_text = {m["text"]: m for m in stored}
            seqs = sorted(m["seq"] for m in stored)
            assert len(seqs) == len(set(seqs)) == len(by_text), "a seq or a message was stored twice"

            # Every acknowledged message is there, with the seq its ack gave.
            for i, (message_id, seq) in acked.items():
                assert (by_text[f"burst {i}"]["id"], by_text[f"burst {i}"]["seq"]) == (message_id, seq)
            # So is every event a listener saw (durable before visible).
            for seq, data in seen_by_b.items():
                assert by_text[data["text"]]["seq"] == seq and by_text[data["text"]]["id"] == data["id"]
            # Only what was sent, and the seqs have no gap.
            assert set(by_text) <= {f"burst {i}" for i in sent}
            room_seq = seqs[-1]
            assert seqs == list(range(1, room_seq + 1))
            assert room_seq >= last_acked

            async with live.connect(room_id, token_a, since=last_acked) as a:
                welcome = a.welcome["data"]
                assert welcome["seq"] == room_seq
                # The committed-but-unacked tail is replayed after the welcome, in order.
                assert welcome["resumed"] is True and welcome["replayed"] == room_seq - last_acked
                replayed = [await a.recv() for _ in range(welcome["replayed"])]
                assert [m["seq"] for m in replayed] == list(range(last_acked + 1, room_seq + 1))
                assert all(by_text[m["data"]["text"]]["id"] == m["data"]["id"] for m in replayed)

                fresh = await a.chat("after the crash")
                assert fresh["data"]["seq"] == room_seq + 1
                next_seq = room_seq + 2

                # Retrying each unacknowledged send with its nonce: the committed ones answer with the
                # stored message; the lost ones are created now, once each.
                for i in unacked:
                    text = f"burst {i}"
                    reply, before = await a.request("chat.send", {"text": text, "nonce": f"n-{i}"})
                    assert reply["ok"], reply
                    created = [m for m in before if is_event("chat.message")(m)]
                    if text in by_text:
                        assert reply["data"] == {
                            "message_id": by_text[text]["id"],
                            "seq": by_text[text]["seq"],
                        }
                        assert created == []
                    else:
                        assert reply["data"]["seq"] == next_seq
                        assert [(m["seq"], m["data"]["id"]) for m in created] == [
                            (next_seq, reply["data"]["message_id"])
                        ]
                        next_seq += 1
                # A second retry of every one of them creates nothing.
                for i in unacked:
                    reply, before = await a.request("chat.send", {"text": f"burst {i}", "nonce": f"n-{i}"})
                    assert reply["ok"] and not [m for m in before if is_event("chat.message")(m)]

            final = await history(http, room_id, limit=17)
            texts = [m["text"] for m in final]
            assert sorted(texts) == sorted({f"burst {i}" for i in sent} | {"after the crash"})
            assert sorted(m["seq"] for m in final) == list(range(1, next_seq))

        assert await server.stop(signal.SIGTERM) == 0


async def test_sigterm_closes_sockets_1001_and_they_resume(tmp_path: Path, nursery: trio.Nursery) -> None:
    data = tmp_path / "data"
    async with running(data, nursery, **SERVER_ENV) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
            live = Live(http, server.live_port)
            token_a, _ = await live.user("carol")
            token_b, _ = await live.user("dave")
            room_id = (await live.room(token_a))["id"]

            async with (
                live.connect(room_id, token_a) as a,
                live.connect(room_id, token_b, encoding="msgpack") as b,
            ):
                for n in range(3):
                    await a.chat(f"before {n}")
                event, _ = await b.until(lambda m: is_event("chat.message")(m) and m["seq"] == 3)
                last_seq = {"a": 3, "b": event["seq"]}

                process = server.process
                assert process is not None
                process.send_signal(signal.SIGTERM)
                codes: dict[str, int] = {}
                with trio.fail_after(30):
                    codes["a"] = await until_dropped(a, [])
                    codes["b"] = await until_dropped(b, [])
                    exit_code = await process.wait()
                assert codes == {"a": 1001, "b": 1001}
                assert exit_code == 0
                assert "stopped" in server.lines[-1]

        await server.start(nursery, timeout=START_TIMEOUT)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
            live = Live(http, server.live_port)
            async with (
                live.connect(room_id, token_a, since=last_seq["a"]) as a,
                live.connect(room_id, token_b, encoding="msgpack", since=last_seq["b"]) as b,
            ):
                for client in (a, b):
                    welcome = client.welcome["data"]
                    assert (welcome["resumed"], welcome["replayed"], welcome["seq"]) == (True, 0, 3)
                reply = await a.chat("after the restart")
                assert reply["data"]["seq"] == 4
                event, before = await b.until(is_event("chat.message"))
                assert event["seq"] == 4
                assert not [m for m in before if "seq" in m], "nothing durable before the new message"
            texts = sorted(m["text"] for m in await history(http, room_id, limit=17))
            assert texts == ["after the restart", "before 0", "before 1", "before 2"]
        assert await server.stop(signal.SIGTERM) == 0
