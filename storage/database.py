"""A small trio-native API over an asyncpg pool, run through trio-asyncio."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import asyncpg
import trio
import trio_asyncio

Record = asyncpg.Record
P = ParamSpec("P")
T = TypeVar("T")

# Errors from the driver and server that callers may need to tell apart.
PostgresError = asyncpg.PostgresError
ConnectionLost = (asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.InterfaceError, OSError)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Released connections skip asyncpg's reset query (a round trip on every release).

    Nothing here leaves session state behind (no LISTEN, SET or session advisory lock
    outlives the call that took it), and asyncpg still rolls back an open transaction.
    """


async def aio(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run an asyncio coroutine function from trio (one bridge crossing)."""
    return await trio_asyncio.aio_as_trio(fn)(*args, **kwargs)  # type: ignore[no-any-return]


def database_dsn_for(dsn: str, database: str) -> str:
    """The same server with another database name (keeps query parameters such as ``host``)."""
    head, sep, query = dsn.partition("?")
    scheme, _, rest = head.partition("://")
    authority, _, _ = rest.partition("/")
    return f"{scheme}://{authority}/{database}{sep}{query}"


async def connect_one(
    dsn: str, *, application_name: str = "seda", settings: dict[str, str] | None = None
) -> asyncpg.Connection:
    """A dedicated connection outside the pool (the journal writer's)."""

    async def connect() -> asyncpg.Connection:
        conn = await asyncpg.connect(
            dsn, server_settings={"application_name": application_name, **(settings or {})}
        )
        await _init_connection(conn)
        return conn

    return await aio(connect)


class Queries:
    """fetch/fetchrow/fetchval/execute against one connection; each call crosses the bridge once."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Record]:
        return await aio(self._conn.fetch, sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Record | None:
        return await aio(self._conn.fetchrow, sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await aio(self._conn.fetchval, sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        return await aio(self._conn.execute, sql, *args)


class Database:
    """A connection pool. Open it inside ``trio_asyncio.open_loop()`` with :func:`open_database`."""

    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self._pool = pool
        self.dsn = dsn

    async def fetch(self, sql: str, *args: Any) -> list[Record]:
        return await aio(self._pool.fetch, sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Record | None:
        return await aio(self._pool.fetchrow, sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await aio(self._pool.fetchval, sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        return await aio(self._pool.execute, sql, *args)

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run asyncio ``fn(conn, *args)`` in one transaction on a pooled connection.

        One bridge crossing for the whole unit of work; use it on hot paths.
        """

        async def unit() -> T:
            async with self._pool.acquire() as conn, conn.transaction():
                return await fn(conn, *args)

        return await aio(unit)

    async def run_outside_transaction(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run asyncio ``fn(conn, *args)`` on a pooled connection; ``fn`` manages transactions."""

        async def unit() -> T:
            async with self._pool.acquire() as conn:
                return await fn(conn, *args)

        return await aio(unit)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Queries]:
        """A transaction on one pooled connection; committed when the block ends cleanly."""
        conn = await aio(self._acquire)
        try:
            tx = conn.transaction()
            await aio(tx.start)
            try:
                yield Queries(conn)
            except BaseException:
                with trio.CancelScope(shield=True):
                    await aio(tx.rollback)
                raise
            else:
                with trio.CancelScope(shield=True):
                    await aio(tx.commit)
        finally:
            with trio.CancelScope(shield=True):
                await aio(self._pool.release, conn)

    async def _acquire(self) -> Any:
        return await self._pool.acquire()

    async def close(self) -> None:
        with trio.CancelScope(shield=True):
            await aio(self._pool.close)


@asynccontextmanager
async def open_database(dsn: str, *, max_size: int = 10) -> AsyncIterator[Database]:
    """Open a pool (needs a running trio-asyncio loop); closed on exit."""
    pool: asyncpg.Pool = await aio(
        asyncpg.create_pool, dsn, min_size=1, max_size=max_size, init=_init_connection, reset=_keep_session
    )
    db = Database(pool, dsn)
    try:
        yield db
    finally:
        await db.close()


def micros(ts: datetime) -> int:
    """Microseconds since the epoch: the precision of a timestamptz, for exact cursor keys."""
    return int(ts.timestamp()) * 1_000_000 + ts.microsecond
