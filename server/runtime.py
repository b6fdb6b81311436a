"""One process, one trio run: Postgres, the REST app and the live gateway in one nursery."""

from __future__ import annotations

import logging
import signal
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
from server.auth import load_or_create_secret
from server.config import Settings
from server.context import AppContext
from server.http.app import create_app
from server.live.gateway import GatewayLimits, LiveGateway
from server.live.user_sockets import UserSockets
from storage.database import Database, open_database
from storage.embedded import DataDirBusy, EmbeddedPostgres, lock_data_dir
from storage.journal import JournalWriter
from storage.migrations import migrate

log = logging.getLogger("seda")


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

        with lock_data_dir(settings.data_dir):
            async with trio_asyncio.open_loop(), open_postgres(settings, data_dir_locked=True) as db:
                applied = await migrate(db)
                log.info("migrations: %s", f"applied {applied}" if applied else "up to date")
                secret = load_or_create_secret(settings.jwt_secret, settings.data_dir)
                ctx = AppContext.build(settings, db, secret)
                await run_services(ctx, task_status=task_status, stop=first_signal)
    log.info("stopped")


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
    journal = JournalWriter(ctx.db.dsn, on_commit=_count_commit(ctx))
    async with trio.open_nursery() as journal_nursery:
        await journal_nursery.start(journal.run)
        async with trio.open_nursery() as rooms_nursery:
            user_sockets = UserSockets()
            registry = RoomRegistry(
                rooms_nursery,
                journal,
                lambda room_id: ctx.rooms.load_seed(uuid.UUID(room_id)),
                ctx.actor_config(),
                on_change=ctx.metrics.live_rooms.set,
                notify=user_sockets.notify,
            )
            ctx.registry = registry
            ctx.user_sockets = user_sockets
            live_sessions = await ctx.rooms.with_live_sessions()
            if live_sessions:
                log.info("resuming %d room(s) with a live DJ session", len(live_sessions))
                await registry.start_all(live_sessions)
            gateway = LiveGateway(
                tokens=ctx.tokens,
                users=ctx.users,
                rooms=ctx.rooms,
                registry=registry,
                user_sockets=user_sockets,
                sanctions=ctx.sanctions,
                metrics=ctx.metrics,
                limits=GatewayLimits(
                    max_frame_bytes=settings.max_frame_bytes,
                    outbox_limit_bytes=settings.outbox_limit_bytes,
                    invalid_frame_limit=settings.invalid_frame_limit,
                    invalid_frame_window_s=settings.invalid_frame_window_s,
                ),
            )
            async with trio.open_nursery() as servers:
                http_stopping = trio.Event()
                binds: list[str] = await servers.start(
                    partial(
                        hypercorn_serve,
                        create_app(ctx),
                        _hypercorn_config(settings),
                        shutdown_trigger=http_stopping.wait,
                    )
                )
                http_port = int(binds[0].rsplit(":", 1)[1])
                log.info("REST API listening on http://%s:%d", settings.host, http_port)
                live_port: int = await servers.start(gateway.serve, settings.host, settings.live_port)
                log.info("live gateway listening on ws://%s:%d", settings.host, live_port)
                await servers.start(ctx.seasons.run_closer, user_sockets.tell)
                task_status.started(Bound(http_port, live_port))
                await stop()
                gateway.stop_accepting()
                http_stopping.set()
                log.info("flushing rooms")
                await registry.shutdown()
                await gateway.wait_closed(timeout=3.0)
                servers.cancel_scope.cancel()
            rooms_nursery.cancel_scope.cancel()
        journal.close()
    ctx.registry = None


def _hypercorn_config(settings: Settings) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = [f"{settings.host}:{settings.http_port}"]
    config.accesslog = None
    config.graceful_timeout = 5.0
    return config


def _count_commit(ctx: AppContext) -> Callable[[int, int], None]:
    def counted(batches: int, events: int) -> None:
        ctx.metrics.journal_batches.inc(batches)
        ctx.metrics.journal_events.inc(events)

    return counted
