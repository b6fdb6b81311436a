"""``seda serve --workers N``: one parent process, N worker nodes sharing the two listening ports.

The parent holds the data-dir lock and runs what the workers share, once: the embedded Postgres
(migrated, before any worker starts), the secrets in the data directory, and an embedded
``nats-server``. Each worker is ``seda serve`` with ``DATABASE_URL`` and ``SEDA_NATS_URL``
pointing at them, binding the same HTTP and live ports with SO_REUSEPORT (the kernel spreads
connections over them). Workers are spawned from the main thread with PR_SET_PDEATHSIG, so
the kernel tells them (SIGTERM) the moment the parent dies, even by SIGKILL; Postgres and NATS
die with it the same way. A worker that exits on its own is started again after a pause.

The parent reads each worker's log and passes it on, line by line, to its own stderr; that is
how it knows when every worker listens.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import trio
import trio_asyncio

from server.auth import load_or_create_secret
from server.cluster.nats_server import EmbeddedNats
from server.cluster.node import stored_node_id
from server.cluster.sockets import reuse_port_socket
from server.config import Settings
from server.runtime import open_postgres
from storage.embedded import lock_data_dir, signalled_when_parent_dies
from storage.migrations import migrate
from storage.sealing import new_key_text

log = logging.getLogger("seda")

RESTART_BACKOFF_S = 1.0
STOP_TIMEOUT_S = 30.0  # how long workers get to flush their rooms before SIGKILL
LOG_DRAIN_S = 2.0  # how long a worker's log is read after it exited (a grandchild may hold it)

_REST = re.compile(rb"REST API listening on http://\S+:(\d+)")
_LIVE = re.compile(rb"live gateway listening on ws://\S+:(\d+)")


async def serve_workers(settings: Settings) -> None:
    """Run Postgres, NATS and ``settings.workers`` worker processes until SIGINT/SIGTERM."""
    # Open from the start, as in a single server: a signal during start-up is kept until asked for.
    with (
        trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals,
        lock_data_dir(settings.data_dir),
    ):
        log.info("starting %d workers on %s", settings.workers, settings.data_dir)
        # The parent only migrates through its pool: one connection is plenty.
        own = replace(settings, db_pool_size=1)
        async with trio_asyncio.open_loop(), open_postgres(own, data_dir_locked=True) as db:
            applied = await migrate(db)
            log.info("migrations: %s", f"applied {applied}" if applied else "up to date")
            # Made once here, so that workers starting together do not each make their own.
            load_or_create_secret(settings.jwt_secret, settings.data_dir)
            load_or_create_secret(
                settings.encryption_key, settings.data_dir, name="encryption_key", make=new_key_text
            )
            log.info("secrets ready in %s", settings.data_dir)
            async with _open_nats(settings) as (nats, nats_url):
                with _reserve_ports(settings) as ports:
                    group = WorkerGroup(settings, db.dsn, nats_url, ports)
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(group.run)
                        if nats is not None:
                            nursery.start_soon(_keep_nats, nats, group.stopping)
                        async for signum in signals:
                            log.info("received %s, shutting down", signal.Signals(signum).name)
                            break
                        await group.stop()
                        nursery.cancel_scope.cancel()
    log.info("stopped")


@asynccontextmanager
async def _open_nats(settings: Settings) -> AsyncIterator[tuple[EmbeddedNats | None, str]]:
    """SEDA_NATS_URL's NATS, or an embedded nats-server for the life of the block."""
    if settings.nats_url is not None:
        log.info("using SEDA_NATS_URL")
        yield None, settings.nats_url
        return
    nats = EmbeddedNats(settings.data_dir)
    log.info("starting embedded nats-server")
    try:
        nats.spawn()  # from the main thread: the kernel kills it when we die
        await trio.to_thread.run_sync(nats.wait_ready)
        yield nats, nats.url
    finally:
        log.info("stopping embedded nats-server")
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(nats.stop)


@dataclass
class Ports:
    """The HTTP and live ports the workers share, and the sockets that hold them meanwhile."""

    http: int
    live: int
    holders: ExitStack

    def release(self) -> None:
        """Close the placeholders (once the workers' listeners hold the ports)."""
        self.holders.close()


@contextmanager
def _reserve_ports(settings: Settings) -> Iterator[Ports]:
    """A port 0 becomes a concrete free port, held by a bound (not listening, so it takes no
    connections) SO_REUSEPORT socket until the workers listen on it too."""
    with ExitStack() as holders:
        ports = []
        for port in (settings.http_port, settings.live_port):
            if port == 0:
                sock = holders.enter_context(reuse_port_socket(settings.host, 0, listen=False))
                port = sock.getsockname()[1]
            ports.append(port)
        log.info("workers will share ports %d (REST) and %d (live)", ports[0], ports[1])
        yield Ports(ports[0], ports[1], holders)


async def _wait_exited(process: subprocess.Popen[bytes]) -> int:
    """Wait for a child we spawned to exit (and reap it); its exit status."""
    if process.returncode is not None:
        return process.returncode
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # no pidfd (not Linux, or an old kernel): a thread waits
        return await trio.to_thread.run_sync(process.wait, abandon_on_cancel=True)
    try:
        await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)
    return process.wait()


@dataclass
class Slot:
    """One of the N workers, across its restarts."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    listening: set[str] = field(default_factory=set)  # "rest", "live": of the running process
    first_ready: trio.Event = field(default_factory=trio.Event)


def worker_node_id(data_dir: Path, index: int) -> str:
    """Worker ``index``'s node id: the same across restarts of this data dir, so a worker that
    comes back takes its rooms again at once instead of waiting out its own leases."""
    return str(uuid.uuid5(uuid.UUID(stored_node_id(data_dir)), f"worker-{index}"))


class WorkerGroup:
    """N worker processes, kept running until ``stop()``."""

    def __init__(self, settings: Settings, dsn: str, nats_url: str, ports: Ports) -> None:
        self.settings = settings
        self.ports = ports
        self.stopping = trio.Event()
        self.slots = [Slot(index) for index in range(1, settings.workers + 1)]
        self.env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "SEDA_NATS_URL": nats_url,
            "SEDA_WORKERS": "1",
            "SEDA_REUSE_PORT": "1",
            "SEDA_PARENT_PID": str(os.getpid()),
            "SEDA_HOST": settings.host,
            "SEDA_HTTP_PORT": str(ports.http),
            "SEDA_LIVE_PORT": str(ports.live),
            "SEDA_DATA_DIR": str(settings.data_dir),
        }
        self._all_exited = trio.Event()

    async def run(self) -> None:
        """Start every worker, say where they listen once all do, keep them running until stopped."""
        async with trio.open_nursery() as announcing:
            announcing.start_soon(self._announce)
            async with trio.open_nursery() as nursery:
                for slot in self.slots:
                    nursery.start_soon(self._keep, slot)
            announcing.cancel_scope.cancel()  # stopped before every worker listened
        self._all_exited.set()

    async def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM every worker and wait for them; SIGKILL what is left after ``timeout``."""
        self.stopping.set()
        running = [slot for slot in self.slots if slot.process is not None and slot.process.poll() is None]
        log.info("stopping %d worker(s)", len(running))
        for slot in running:
            assert slot.process is not None
            slot.process.send_signal(signal.SIGTERM)
        with trio.CancelScope(shield=True):
            with trio.move_on_after(timeout):
                for slot in running:
                    assert slot.process is not None
                    await _wait_exited(slot.process)
            for slot in running:
                assert slot.process is not None
                if slot.process.poll() is None:
                    log.warning(
                        "worker %d (pid %d) did not stop; sending SIGKILL", slot.index, slot.process.pid
                    )
                    slot.process.kill()
                    await _wait_exited(slot.process)
            with trio.move_on_after(LOG_DRAIN_S + 1):
                await self._all_exited.wait()

    async def _announce(self) -> None:
        for slot in self.slots:
            await slot.first_ready.wait()
        pids = ", ".join(str(slot.process.pid) for slot in self.slots if slot.process is not None)
        self.ports.release()
        log.info("all %d workers listening (pids %s)", len(self.slots), pids)
        log.info("REST API listening on http://%s:%d", self.settings.host, self.ports.http)
        log.info("live gateway listening on ws://%s:%d", self.settings.host, self.ports.live)

    async def _keep(self, slot: Slot) -> None:
        """Run one worker; start it again (after a pause) whenever it exits on its own."""
        while not self.stopping.is_set():
            read_fd, write_fd = os.pipe()
            try:
                process = self._spawn(slot, write_fd)
            finally:
                os.close(write_fd)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._forward_log, slot, trio.lowlevel.FdStream(read_fd))
                status = await _wait_exited(process)
                nursery.cancel_scope.deadline = trio.current_time() + LOG_DRAIN_S
            slot.listening.clear()
            if self.stopping.is_set():
                log.info("worker %d (pid %d) exited with status %d", slot.index, process.pid, status)
                return
            log.warning(
                "worker %d (pid %d) exited with status %d; starting it again in %.0f s",
                slot.index,
                process.pid,
                status,
                RESTART_BACKOFF_S,
            )
            with trio.move_on_after(RESTART_BACKOFF_S):
                await self.stopping.wait()

    def _spawn(self, slot: Slot, stderr_fd: int) -> subprocess.Popen[bytes]:
        # From the main thread, synchronously: PR_SET_PDEATHSIG follows the thread that forks,
        # and trio's own open_process forks from a worker thread that may exit.
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve"],
            env={**self.env, "SEDA_NODE_ID": worker_node_id(self.settings.data_dir, slot.index)},
            stdin=subprocess.DEVNULL,
            stderr=stderr_fd,
            # Signals come from the parent alone (a terminal's Ctrl-C too), so it orders shutdown.
            process_group=0,
            preexec_fn=signalled_when_parent_dies(signal.SIGTERM),
        )
        slot.process = process
        log.info("worker %d started (pid %d)", slot.index, process.pid)
        return process

    async def _forward_log(self, slot: Slot, stream: trio.lowlevel.FdStream) -> None:
        """Pass a worker's log on to ours, line by line, noting when it listens."""
        assert slot.process is not None
        prefix = f"[worker {slot.index}] "
        buffer = b""
        async with stream:
            while chunk := await stream.receive_some(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._line(slot, prefix, line)
            if buffer:
                self._line(slot, prefix, buffer)

    def _line(self, slot: Slot, prefix: str, line: bytes) -> None:
        sys.stderr.write(prefix + line.decode(errors="replace") + "\n")
        sys.stderr.flush()
        was = len(slot.listening)
        for name, pattern in (("rest", _REST), ("live", _LIVE)):
            if pattern.search(line):
                slot.listening.add(name)
        if was < 2 and len(slot.listening) == 2:
            assert slot.process is not None
            log.info("worker %d (pid %d) listening", slot.index, slot.process.pid)
            slot.first_ready.set()


async def _keep_nats(nats: EmbeddedNats, stopping: trio.Event) -> None:
    """Bring the embedded nats-server back, on the same port, if it dies under us."""
    while True:
        process = nats.process
        if process is None:
            return
        status = await _wait_exited(process)
        if stopping.is_set():
            return
        log.warning("nats-server (pid %d) exited with status %d; starting it again", process.pid, status)
        port = nats.port
        while not stopping.is_set():
            with trio.move_on_after(RESTART_BACKOFF_S):
                await stopping.wait()
            if stopping.is_set():
                return
            try:
                nats.spawn(port)
                await trio.to_thread.run_sync(nats.wait_ready)
                break
            except (OSError, RuntimeError) as exc:
                log.warning("nats-server did not come back: %s", exc)
                # Leave no half-started child behind before the next try.
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(nats.stop)
