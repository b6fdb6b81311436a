"""kill -9 of the server's whole process group, five times in a row, under chat load in five rooms.

Each time at a random moment (a seeded number of acknowledged messages into the round); each
restart on the same data directory must answer ``/readyz`` within 10 s of the kill, and after
the last one every acknowledged message is in its room's history with the seq its ack gave,
with no seq gap and nothing stored twice. The worst restart is printed (``-s`` shows it).
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, HandshakeError

from tests.live_client import Live, history
from tests.process import START_TIMEOUT, SedaServer

pytestmark = pytest.mark.slow

SEED = 15
ROOMS = 5
KILLS = 5
READY_WITHIN_S = 10.0
IN_FLIGHT = 4  # chat.sends each room's client keeps unanswered
SERVER_ENV = {
    "SEDA_PG_FSYNC": "1",
    "SEDA_CHAT_RATE": "100000",
    "SEDA_CHAT_RATE_WINDOW_S": "1",
    "SEDA_OPS_PER_SECOND": "100000",
    "SEDA_AUTH_PER_MIN_PER_ADDR": "0",
}
_REST = re.compile(r"REST API listening on http://[^:]+:(\d+)")
_LIVE = re.compile(r"live gateway listening on ws://[^:]+:(\d+)")
DROPPED = (ConnectionClosed, HandshakeError, trio.BrokenResourceError, OSError)


class GroupServer(SedaServer):
    """``seda serve`` as the leader of a process group of its own, as a service manager or a
    terminal would run it: ``kill_group`` is ``kill -9 -- -PGID``."""

    async def spawn(self, nursery: trio.Nursery) -> None:
        self.lines.clear()
        self.process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "server.cli", "serve"],
            env=self.env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        nursery.start_soon(self._read_log, self.process)

    async def start(self, nursery: trio.Nursery, *, timeout: float = 60) -> None:
        await self.spawn(nursery)
        with trio.fail_after(timeout):
            rest = await self.wait_for(_REST)
            live = await self.wait_for(_LIVE)
        self.http_port, self.live_port = int(rest.group(1)), int(live.group(1))

    async def kill_group(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        with trio.fail_after(10):
            await self.process.wait()

    async def kill_group_at_exit(self) -> None:
        """Whatever happened, leave nothing running (the postmaster follows the server)."""
        process = self.process
        if process is not None and process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                await process.wait()


@dataclass
class Round:
    """One run of the server: how many acks end it, and the event that says they came."""

    kill_after: int
    acks: int = 0
    enough: trio.Event = field(default_factory=trio.Event)

    def acked(self) -> None:
        self.acks += 1
        if self.acks >= self.kill_after:
            self.enough.set()


@dataclass
class RoomLoad:
    room_id: str
    token: str
    acked: dict[str, tuple[str, int]] = field(default_factory=dict)  # text -> (message id, seq)
    sent: set[str] = field(default_factory=set)


async def chat_until_dropped(live: Live, load: RoomLoad, name: str, run: Round) -> None:
    """Keep IN_FLIGHT chat.sends going in one room until the server goes away."""
    texts: dict[int, str] = {}
    slots = trio.Semaphore(IN_FLIGHT)
    async with live.connect(load.room_id, load.token) as client, trio.open_nursery() as inner:

        async def read() -> None:
            try:
                while True:
                    message = await client.recv(timeout=30)
                    if message.get("type") != "reply":
                        continue
                    assert message["ok"], message
                    seq_of = message["data"]
                    load.acked[texts.pop(message["ref"])] = (seq_of["message_id"], seq_of["seq"])
                    slots.release()
                    run.acked()
            except DROPPED:
                pass
            finally:
                inner.cancel_scope.cancel()

        inner.start_soon(read)
        for n in range(1_000_000):
            await slots.acquire()
            text = f"{name} {n}"
            try:
                ref = await client.send("chat.send", {"text": text, "nonce": text})
            except DROPPED:
                return
            assert ref is not None
            texts[ref] = text
            load.sent.add(text)


async def chat_round(live: Live, loads: list[RoomLoad], name: str, run: Round, server: GroupServer) -> float:
    """Chat in every room until ``run`` has its acks, then kill the group; returns when it was."""
    with trio.fail_after(60):
        async with trio.open_nursery() as clients:
            for r, load in enumerate(loads):
                clients.start_soon(chat_until_dropped, live, load, f"r{r} {name}", run)
            await run.enough.wait()
            killed_at = trio.current_time()
            await server.kill_group()  # the clients see their sockets drop and end
            # All but a client still in its opening handshake: trio-websocket's client never
            # notices a connection lost before the 101 and would wait for ever (seen once in
            # ~40 runs, with a kill a few acks into a round). It acked nothing; it is let go.
            clients.cancel_scope.deadline = trio.current_time() + 5
    return killed_at


async def test_kill_the_process_group_five_times_under_chat_load(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    rng = random.Random(SEED)
    server = GroupServer(tmp_path / "data", **SERVER_ENV)
    restarts: list[float] = []
    found_leftovers = 0
    try:
        await server.start(nursery, timeout=START_TIMEOUT)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
            live = Live(http, server.live_port)
            loads = []
            for r in range(ROOMS):
                token, _ = await live.user(f"chatter{r}")
                loads.append(RoomLoad((await live.room(token))["id"], token))

        for kill in range(KILLS):
            run = Round(kill_after=rng.randint(1, 200))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
                killed_at = await chat_round(Live(http, server.live_port), loads, f"k{kill}", run, server)
            assert run.acks >= run.kill_after
            # Back on the same data directory, ready within the bound, counted from the kill.
            await server.start(nursery, timeout=READY_WITHIN_S)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
                assert (await http.get("/readyz")).status_code == 200
            restarts.append(trio.current_time() - killed_at)
            assert restarts[-1] < READY_WITHIN_S, restarts
            found_leftovers += "an earlier postgres" in server.log

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
            for load in loads:
                stored = await history(http, load.room_id)
                by_text = {m["text"]: m for m in stored}
                seqs = sorted(m["seq"] for m in stored)
                assert len(seqs) == len(set(seqs)) == len(by_text), "a seq or a message was stored twice"
                assert seqs == list(range(1, len(seqs) + 1)), "a seq gap"
                assert set(by_text) <= load.sent
                lost = {t: a for t, a in load.acked.items() if (by_text[t]["id"], by_text[t]["seq"]) != a}
                assert not lost, lost
        assert await server.stop(signal.SIGTERM) == 0
    except BaseException:
        print(f"server log:\n{server.log}")
        raise
    finally:
        await server.kill_group_at_exit()

    acked = sum(len(load.acked) for load in loads)
    print(
        f"\nrestart loop: {KILLS} kills of the process group, {acked} messages acked, none lost; "
        f"ready after each kill in {', '.join(f'{t:.2f}' for t in restarts)} s "
        f"(worst {max(restarts):.2f} s); {found_leftovers} restart(s) found the last run's "
        "postgres still exiting"
    )


async def test_kills_while_it_starts_still_come_back(tmp_path: Path, nursery: trio.Nursery) -> None:
    """Killed while initdb makes the cluster, while Postgres starts, right after migrating."""
    data = tmp_path / "data"
    server = GroupServer(data, **SERVER_ENV)
    moments = ("starting embedded postgres", r"embedded postgres \d+ started", "migrations: ")
    try:
        for moment in moments:
            await server.spawn(nursery)
            with trio.fail_after(START_TIMEOUT):
                await server.wait_for(re.compile(moment))
            killed_at = trio.current_time()
            await server.kill_group()
        await server.start(nursery, timeout=READY_WITHIN_S)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
            assert (await http.get("/readyz")).status_code == 200
        assert trio.current_time() - killed_at < READY_WITHIN_S
        assert "migrations: up to date" in server.log  # the same cluster the killed runs migrated
        assert not (data / "pg.initdb").exists()
        assert await server.stop(signal.SIGTERM) == 0
    except BaseException:
        print(f"server log:\n{server.log}")
        raise
    finally:
        await server.kill_group_at_exit()
