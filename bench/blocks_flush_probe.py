"""``python -m bench.blocks_flush_probe``: what personal blocks add to one room's flush, in process.

A :class:`actors.fanout.Fanout` with ``--sockets`` subscribers that only count bytes (no socket,
no write), and ``--hiders`` of them (0, then the number given) hiding the author; each message is
published to all and flushed alone, as at a light rate. Prints the server-side Python cost of
fan-out per message and per delivery, with and without hiders, alternating ``--reps`` times
(min and median). The end-to-end figure is ``fanout-blocks``; this isolates the part blocks
touch, which on a noisy machine the end-to-end runs cannot resolve.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from typing import Any

import trio

from actors.blocks import BlockIndex
from actors.fanout import Fanout
from protocol.codec import Encoding
from protocol.events import Event

AUTHOR = "author"


class CountingSocket:
    __slots__ = ("bytes", "conn_id", "encoding")

    def __init__(self, conn_id: int) -> None:
        self.conn_id = conn_id
        self.encoding = Encoding.JSON
        self.bytes = 0

    def send_frame(self, frame: bytes) -> None:
        self.bytes += len(frame)

    def close(self, code: int, reason: str = "") -> None:
        pass


def fanout(sockets: int, hiders: int) -> Fanout:
    blocks = BlockIndex()
    room = Fanout(0.005, blocks)
    step = sockets // hiders if hiders else 0
    for conn_id in range(sockets):
        room.subscribe(CountingSocket(conn_id), [])
        if step and conn_id % step == 0 and conn_id // step < hiders:
            blocks.assign(conn_id, frozenset({AUTHOR}))
    room.flush()
    return room


def chat(seq: int) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "user_id": AUTHOR,
        "username": "a",
        "text": "~1 " + "x" * 97,
        "reply_to": None,
        "track": None,
        "mentions": [],
        "at": 1,
        "reactions": {},
    }
    return Event("chat.message", data, at=1, seq=seq).wire()


async def measure(args: argparse.Namespace) -> dict[int, list[float]]:
    rooms = {hiders: fanout(args.sockets, hiders) for hiders in (0, args.hiders)}
    seq = 0
    per_message: dict[int, list[float]] = {hiders: [] for hiders in rooms}
    for _ in range(args.reps):
        for hiders, room in rooms.items():
            messages = [chat(seq + i) for i in range(args.messages)]
            seq += args.messages
            started = time.perf_counter_ns()
            for message in messages:
                room.to_all(message)
                room.flush()
            per_message[hiders].append((time.perf_counter_ns() - started) / args.messages / 1000)
    return per_message


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.blocks_flush_probe", description=__doc__)
    parser.add_argument("--sockets", type=int, default=1000, help="subscribers (1000)")
    parser.add_argument("--hiders", type=int, default=10, help="of them, hiding the author (10)")
    parser.add_argument("--messages", type=int, default=200, help="messages per rep (200)")
    parser.add_argument("--reps", type=int, default=30, help="alternating reps (30)")
    args = parser.parse_args()
    per_message = trio.run(measure, args)
    base = min(per_message[0])
    for hiders, values in per_message.items():
        best, median = min(values), statistics.median(values)
        print(
            f"hiders {hiders:>4}: min {best:7.1f} µs/message "
            f"({best / args.sockets * 1000:5.0f} ns/delivery), "
            f"median {median:7.1f}; min x{best / base:.3f} of no hiders, +{best - base:.1f} µs/message"
        )


if __name__ == "__main__":
    main()
