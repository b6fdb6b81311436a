"""Probe: acknowledged chat events per second through group commit (a precursor of the bench harness).

    python -m bench.probe_commit --http http://127.0.0.1:8000 --live ws://127.0.0.1:8765 \\
        --rooms 20 --messages 500 --window 20

One user, N rooms, one socket per room sending `chat.send` with at most
``--window`` unacknowledged at a time. Prints acks/s, ack latency and the
server's events per journal batch (from /metrics). Speaks only PROTOCOL.md and REST.
The server's own rate limits apply: raise SEDA_CHAT_RATE / SEDA_OPS_PER_SECOND for it.
"""

from __future__ import annotations

import argparse
import json
import re
import time

import httpx
import trio
from trio_websocket import open_websocket_url


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def probe(http: str, live: str, rooms: int, messages: int, window: int) -> str:
    async with httpx.AsyncClient(base_url=http, timeout=30) as client:
        tag = f"probe{int(time.time() * 1000) % 10**8}"
        r = await client.post(
            "/api/v1/auth/register",
            json={"email": f"{tag}@example.com", "username": tag, "password": "correct horse battery"},
        )
        token = r.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        room_ids = [
            (await client.post("/api/v1/rooms", json={"name": f"{tag} {i}"}, headers=auth)).json()["id"]
            for i in range(rooms)
        ]
        before = (await client.get("/metrics")).text
    latencies: list[float] = []

    async def sender(room_id: str) -> None:
        async with open_websocket_url(
            f"{live}/ws/rooms/{room_id}?token={token}", message_queue_size=100_000
        ) as ws:
            await ws.get_message()
            sent: dict[int, float] = {}
            slots = trio.Semaphore(window)

            async def reader() -> None:
                acked = 0
                while acked < messages:
                    m = json.loads(await ws.get_message())
                    if m.get("type") == "reply":
                        latencies.append(time.perf_counter() - sent.pop(m["ref"]))
                        acked += 1
                        slots.release()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                for ref in range(1, messages + 1):
                    await slots.acquire()
                    sent[ref] = time.perf_counter()
                    await ws.send_message(
                        json.dumps({"op": "chat.send", "ref": ref, "data": {"text": "x" * 100}})
                    )

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for room_id in room_ids:
            nursery.start_soon(sender, room_id)
    elapsed = time.perf_counter() - started
    async with httpx.AsyncClient(base_url=http) as client:
        after = (await client.get("/metrics")).text
    batches = _metric(after, "seda_journal_batches_total") - _metric(before, "seda_journal_batches_total")
    events = _metric(after, "seda_journal_events_total") - _metric(before, "seda_journal_events_total")
    latencies.sort()
    n = len(latencies)
    return (
        f"rooms={rooms} messages/room={messages} window={window}: "
        f"{n} acks in {elapsed:.2f}s = {n / elapsed:.0f}/s; "
        f"ack ms p50={latencies[n // 2] * 1000:.1f} p99={latencies[int(n * 0.99)] * 1000:.1f} "
        f"max={latencies[-1] * 1000:.1f}; {events / max(batches, 1):.1f} events/batch"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--http", default="http://127.0.0.1:8000")
    parser.add_argument("--live", default="ws://127.0.0.1:8765")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--window", type=int, default=20)
    args = parser.parse_args()
    print(
        trio.run(probe, args.http.rstrip("/"), args.live.rstrip("/"), args.rooms, args.messages, args.window)
    )


if __name__ == "__main__":
    main()
