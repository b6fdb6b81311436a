"""One process, one trio run: Postgres, the REST app and the live gateway in one nursery."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial

import trio
import trio_asyncio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from actors.registry import RoomRegistry
from actors.room_actor import CLOSE_GOING_AWAY
from server.auth import load_or_create_secret
from server.cluster.bus import Bus, LocalBus
from server.cluster.edge import EdgeSide
from server.cluster.nats_bus import NatsBus
from server.cluster.node import ClusterNode, stored_node_id
from server.cluster.owner import OwnerSide
from server.cluster.service import Cluster
from server.cluster.sockets import reuse_port_socket
from server.config import Settings
from server.context import AppContext
from server.http.app import create_app
from server.live.admission import ADMISSION
from server.live.gateway import GatewayLimits, LiveGateway
from server.live.user_sockets import UserSockets
from storage.database import Database, open_database
from storage.embedded import DataDirBusy, EmbeddedPostgres, lock_data_dir
from storage.journal import JournalWriter
from storage.leases import Leases
from storage.migrations import migrate

log = logging.getLogger("seda")

PARENT_POLL_S = 0.2
PARENT_GONE_EXIT_S = 0.7


@dataclass(frozen=True)
class Bound:
    http_port: int
    live_port: int


@asynccontextmanager
async def open_postgres(settings: Settings, *, data_dir_locked: bool = False) -> AsyncIterator[Database]:
    """The configured database, or the embedded one in the data dir; a pool open on it.

    Needs a running trio-asyncio loop. The holder of the data-dir lock owns the embedded
    server: it starts it (stopping what an earlier run left) and stops it on exit. The
    caller passes ``data_dir_locked`` when it holds the lock; otherwise the lock is taken
    here, and if a running server of ours holds it, that server's Postgres is used as is.
    """
    dsn = settings.database_url
    if dsn is not None:
        log.info("using DATABASE_URL")
        async with open_database(dsn, max_size=settings.db_pool_size) as db:
            yield db
        return
    with ExitStack() as lock:
        if not data_dir_locked:
            try:
                lock.enter_context(lock_data_dir(settings.data_dir))
            except DataDirBusy:
                log.info("a seda server holds %s: using its postgres", settings.data_dir)
                dsn = await trio.to_thread.run_sync(EmbeddedPostgres.running_dsn, settings.data_dir)
        if dsn is not None:
            async with open_database(dsn, max_size=settings.db_pool_size) as db:
                yield db
            return
        embedded = EmbeddedPostgres(settings.data_dir, fsync=settings.pg_fsync)
        log.info("starting embedded postgres in %s", embedded.pgdata)
        try:
            await trio.to_thread.run_sync(embedded.prepare)
            embedded.spawn()  # from the main thread: the postmaster is told to quit when we die
            await trio.to_thread.run_sync(embedded.wait_ready)
            log.info("embedded postgres ready")
            async with open_database(embedded.dsn, max_size=settings.db_pool_size) as db:
                yield db
        finally:
            if embedded.pid is not None:
                log.info("stopping embedded postgres")
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(embedded.stop)


async def serve(
    settings: Settings, *, task_status: trio.TaskStatus[Bound] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run the whole server until SIGINT/SIGTERM (or cancellation)."""
    # The receiver stays open until the process is done, so a second signal
    # during shutdown cannot kill it half-way through flushing.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

        async def first_signal() -> None:
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                return

        # A worker of `seda serve --workers N` shares its parent's data dir (the parent holds the lock).
        lock = (
            contextlib.nullcontext() if settings.parent_pid is not None else lock_data_dir(settings.data_dir)
        )
        with lock:
            async with trio_asyncio.open_loop(), open_postgres(settings, data_dir_locked=True) as db:
                applied = await migrate(db)
                log.info("migrations: %s", f"applied {applied}" if applied else "up to date")
                secret = load_or_create_secret(settings.jwt_secret, settings.data_dir)
                ctx = AppContext.build(settings, db, secret)
                await run_services(
                    ctx, task_status=task_status, stop=partial(_stop_when, first_signal, settings)
                )
    log.info("stopped")


async def _stop_when(signalled: Callable[[], Awaitable[None]], settings: Settings) -> None:
    """Until a signal; or, for a worker, until its parent is gone (then within a second)."""
    async with trio.open_nursery() as nursery:

        async def first(wait: Callable[[], Awaitable[None]]) -> None:
            await wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(first, signalled)
        if settings.parent_pid is not None:
            nursery.start_soon(first, partial(_parent_gone, settings.parent_pid))


async def _parent_gone(parent_pid: int) -> None:
    while os.getppid() == parent_pid:  # noqa: ASYNC110 - nothing tells a process its parent died
        await trio.sleep(PARENT_POLL_S)
    log.warning("the parent process %d is gone: stopping", parent_pid)
    # Its Postgres is going too: whatever cannot be flushed within the second is not acknowledged.
    threading.Timer(PARENT_GONE_EXIT_S, os._exit, args=(3,)).start()


async def run_services(
    ctx: AppContext,
    *,
    stop: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[Bound] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve REST and live until ``stop()`` returns, then shut down in order.

    Shutdown: stop taking connections and requests; every room finishes what it
    has queued, writes a snapshot and closes its sockets with 1001; the journal
    writes what it holds; then the listeners go.
    """
    settings = ctx.settings
    await ctx.sanctions.load()
    node_id = settings.node_id or stored_node_id(settings.data_dir)
    leases = Leases(ctx.db, node_id, settings.lease_ttl_s)
    bus: Bus = (
        await NatsBus.connect(settings.nats_url, name=f"seda-{node_id}") if settings.nats_url else LocalBus()
    )
    beat_s = settings.lease_ttl_s / 5
    user_sockets = UserSockets()
    gateway_sockets: list[LiveGateway] = []
    node = ClusterNode(leases, sockets=lambda: sum(g.open_sockets for g in gateway_sockets))
    owner = OwnerSide(bus, ctx.rooms, ctx.sanctions, beat_s)
    edges = EdgeSide(
        bus,
        ctx.rooms,
        leases,
        node_id,
        beat_s=beat_s,
        coalesce_s=settings.coalesce_ms / 1000,
        blocks=user_sockets.blocks,
    )
    cluster = Cluster(bus, node, owner, edges, user_sockets, ctx.sanctions, ctx.blocks)
    ctx.sanctions.announce = cluster.announce_sanction
    await node.start()
    log.info(
        "node %s (lease TTL %.1f s, %s)",
        node_id,
        settings.lease_ttl_s,
        "NATS" if settings.nats_url else "alone",
    )
    journal = JournalWriter(
        ctx.db.dsn,
        on_commit=ctx.metrics.journal_committed,
        node_id=node_id,
        lock_timeout_ms=int(settings.lease_ttl_s * 400),
    )
    try:
        async with trio.open_nursery() as journal_nursery:
            await journal_nursery.start(journal.run)
            async with trio.open_nursery() as rooms_nursery:
                registry = RoomRegistry(
                    rooms_nursery,
                    journal,
                    lambda room_id: ctx.rooms.load_seed(uuid.UUID(room_id)),
                    ctx.actor_config(),
                    on_change=ctx.metrics.live_rooms.set,
                    notify=cluster.notify,
                    ownership=node,
                    relay=owner.relay,
                    on_actor=owner.on_actor,
                    blocks=user_sockets.blocks,
                )
                node.registry = owner.registry = registry
                ctx.registry, ctx.user_sockets, ctx.cluster, ctx.leases = (
                    registry,
                    user_sockets,
                    cluster,
                    leases,
                )
                await rooms_nursery.start(cluster.run)
                live_sessions = await ctx.rooms.with_live_sessions()
                if live_sessions:
                    log.info("resuming %d room(s) with a live DJ session", len(live_sessions))
                    await registry.start_all(live_sessions)
                gateway = LiveGateway(
                    tokens=ctx.tokens,
                    users=ctx.users,
                    rooms=ctx.rooms,
                    blocks=ctx.blocks,
                    registry=registry,
                    user_sockets=user_sockets,
                    sanctions=ctx.sanctions,
                    metrics=ctx.metrics,
                    cluster=cluster,
                    retry_s=settings.lease_ttl_s + 2,
                    limits=GatewayLimits(
                        max_frame_bytes=settings.max_frame_bytes,
                        outbox_limit_bytes=settings.outbox_limit_bytes,
                        invalid_frame_limit=settings.invalid_frame_limit,
                        invalid_frame_window_s=settings.invalid_frame_window_s,
                    ),
                )
                gateway_sockets.append(gateway)
                async with trio.open_nursery() as servers:
                    http_stopping = trio.Event()
                    config, shared = _hypercorn_config(settings)
                    binds: list[str] = await servers.start(
                        partial(hypercorn_serve, create_app(ctx), config, shutdown_trigger=http_stopping.wait)
                    )
                    if shared is not None:
                        shared.detach()  # hypercorn's socket object owns that fd now
                    http_port = int(binds[0].rsplit(":", 1)[1])
                    log.info("REST API listening on http://%s:%d", settings.host, http_port)
                    live_port: int = await servers.start(
                        partial(
                            gateway.serve, settings.host, settings.live_port, reuse_port=settings.reuse_port
                        )
                    )
                    log.info("live gateway listening on ws://%s:%d", settings.host, live_port)
                    ctx.live_port = live_port
                    await servers.start(_season_closer, ctx, user_sockets)
                    ADMISSION.enabled = settings.overload_behind_ms > 0
                    ADMISSION.behind_limit_s = settings.overload_behind_ms / 1000
                    ADMISSION.retry_after_ms = settings.overload_retry_ms
                    task_status.started(Bound(http_port, live_port))
                    await stop()
                    gateway.stop_accepting()
                    http_stopping.set()
                    log.info("flushing rooms")
                    with trio.move_on_after(settings.shutdown_timeout_s) as flushing:
                        await registry.shutdown()
                    if flushing.cancelled_caught:
                        # Postgres away: what did not commit was never acknowledged, so nothing is lost.
                        log.error(
                            "rooms did not finish flushing within %.0f s (is Postgres reachable?); stopping",
                            settings.shutdown_timeout_s,
                        )
                    await node.stop()
                    edges.close_all(CLOSE_GOING_AWAY, "server shutting down")
                    await gateway.wait_closed(timeout=3.0)
                    servers.cancel_scope.cancel()
                rooms_nursery.cancel_scope.cancel()
            journal.close()
            # It writes what it holds; a journal that cannot reach Postgres gives up in time.
            journal_nursery.cancel_scope.deadline = trio.current_time() + settings.shutdown_timeout_s
    finally:
        with trio.CancelScope(shield=True):
            await bus.close()
        ctx.registry = ctx.cluster = None


async def _season_closer(
    ctx: AppContext,
    user_sockets: UserSockets,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    await ctx.seasons.run_closer(user_sockets.tell, task_status=task_status)


def _hypercorn_config(settings: Settings) -> tuple[HypercornConfig, socket.socket | None]:
    """Hypercorn's config, and the shared listening socket made for it (SO_REUSEPORT), if any."""
    config = HypercornConfig()
    shared = None
    if settings.reuse_port:
        shared = reuse_port_socket(settings.host, settings.http_port)
        config.bind = [f"fd://{shared.fileno()}"]
    else:
        config.bind = [f"{settings.host}:{settings.http_port}"]
    config.accesslog = None
    config.graceful_timeout = 5.0
    return config, shared
