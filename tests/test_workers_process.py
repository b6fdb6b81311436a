"""The real ``seda serve --workers 2``: a parent with Postgres, nats-server and two workers on the
shared ports; SIGTERM stops it all cleanly, and kill -9 of the parent takes every child with it
within about a second, after which the next start on the same data directory comes up."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psutil
import pytest
import trio

from server.cluster.nats_server import EmbeddedNats
from tests.process import START_TIMEOUT, SedaServer

pytestmark = pytest.mark.slow

WORKERS = 2
GONE_WITHIN_S = 2.0  # the design says one second; the rest is a loaded CI machine's noise
# The parent's own lines, once every worker listens (the workers' come prefixed with "[worker N]").
_REST = re.compile(r"^(?!\[worker ).*REST API listening on http://[^:]+:(\d+)")
_LIVE = re.compile(r"^(?!\[worker ).*live gateway listening on ws://[^:]+:(\d+)")


class WorkersServer(SedaServer):
    """``seda serve --workers 2``; ready once the parent says every worker listens."""

    async def start(self, nursery: trio.Nursery, *, timeout: float = START_TIMEOUT) -> None:
        self.lines.clear()
        self.process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "server.cli", "serve", "--workers", str(WORKERS)],
            env=self.env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        nursery.start_soon(self._read_log, self.process)
        with trio.fail_after(timeout):
            rest = await self.wait_for(_REST)
            live = await self.wait_for(_LIVE)
        self.http_port, self.live_port = int(rest.group(1)), int(live.group(1))

    def tree(self) -> list[psutil.Process]:
        """The parent's descendants now: workers, nats-server, the postmaster and its backends."""
        assert self.process is not None
        return psutil.Process(self.process.pid).children(recursive=True)

    def workers(self) -> list[psutil.Process]:
        assert self.process is not None
        children = psutil.Process(self.process.pid).children()
        return [p for p in children if "server.cli" in p.cmdline()]


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie (an orphan's zombie waits for whoever reaps it: it is gone for us)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def _all_gone(processes: list[psutil.Process]) -> None:
    """Poll (the caller sets the deadline): an orphan's exit is nothing we can wait on."""
    while True:
        if not any(_alive(p) for p in processes):
            return
        await trio.sleep(0.01)


@asynccontextmanager
async def workers_running(data_dir: Path, nursery: trio.Nursery) -> AsyncIterator[WorkersServer]:
    """A started ``seda serve --workers 2``; whatever happens, nothing of it is left running."""
    server = WorkersServer(data_dir)
    seen: list[psutil.Process] = []
    try:
        await server.start(nursery)
        seen = server.tree()
        yield server
    except BaseException:
        print(f"server log:\n{server.log}")  # shown with the failure
        raise
    finally:
        process = server.process
        with trio.CancelScope(shield=True):
            if process is not None and process.returncode is None:
                process.kill()
                with trio.move_on_after(10):
                    await process.wait()
            for child in seen:
                if _alive(child):
                    child.kill()


async def _healthy(port: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        for _ in range(2 * WORKERS):  # new connections: the kernel spreads them over the workers
            r = await http.get("/healthz", headers={"Connection": "close"})
            assert r.status_code == 200, r.text


async def test_workers_serve_and_stop_on_sigterm(tmp_path: Path, nursery: trio.Nursery) -> None:
    async with workers_running(tmp_path / "data", nursery) as server:
        await _healthy(server.http_port)
        workers = server.workers()
        assert len({w.pid for w in workers}) == WORKERS, [w.cmdline() for w in workers]
        assert server.process is not None
        children = psutil.Process(server.process.pid).children()
        assert any(p.name() == "nats-server" for p in children), [p.name() for p in children]
        assert any(p.name() == "postgres" for p in children), [p.name() for p in children]
        tree = server.tree()

        assert await server.stop(signal.SIGTERM) == 0
        assert "stopped" in server.lines[-1], server.log
        left = [p for p in tree if _alive(p)]
        assert not left, [(p.pid, p.name()) for p in left]


async def test_kill9_of_parent_takes_every_child_and_restarts(tmp_path: Path, nursery: trio.Nursery) -> None:
    data = tmp_path / "data"
    async with workers_running(data, nursery) as server:
        await _healthy(server.http_port)
        assert server.process is not None
        tree = server.tree()
        names = sorted({p.name() for p in tree})
        assert {"nats-server", "postgres"} <= set(names), names
        assert len(server.workers()) == WORKERS

        os.kill(server.process.pid, signal.SIGKILL)
        killed = time.monotonic()
        with trio.fail_after(30):
            await _all_gone(tree)
        took = time.monotonic() - killed
        print(f"kill -9 of the parent: all {len(tree)} descendants ({', '.join(names)}) gone in {took:.2f} s")
        assert took < GONE_WITHIN_S
        with trio.fail_after(10):
            await server.process.wait()

    async with workers_running(data, nursery) as again:
        await _healthy(again.http_port)
        assert len(again.workers()) == WORKERS
        assert await again.stop(signal.SIGTERM) == 0


def test_embedded_nats_comes_back_on_the_same_port(tmp_path: Path) -> None:
    nats = EmbeddedNats(tmp_path)
    url = nats.start()
    try:
        port = nats.port
        assert port is not None
        nats.kill()
        assert nats.start(port=port) == url
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            assert conn.recv(5) == b"INFO "
    finally:
        nats.stop()
    assert not list(tmp_path.glob("*.ports"))
