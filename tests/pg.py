"""The test suite's Postgres: one embedded cluster per worker, a migrated template, a database per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import trio_asyncio

from storage.database import aio, database_dsn_for, open_database
from storage.embedded import EmbeddedPostgres
from storage.migrations import migrate

TEMPLATE = "seda_template"


class PgCluster:
    """A throwaway cluster with fsync off (tests only; crash tests run ``seda serve``, fsync on)."""

    def __init__(self, root: Path) -> None:
        self.embedded = EmbeddedPostgres(root, fsync=False)
        self.dsn = ""

    def start(self) -> None:
        # From the worker's main thread: the postmaster is our child and quits when this worker
        # dies, however it dies, so a killed test run leaves no cluster behind.
        self.dsn = self.embedded.start()
        trio_asyncio.run(self._make_template)

    def stop(self) -> None:
        self.embedded.stop()

    async def _admin(self) -> asyncpg.Connection:
        conn: asyncpg.Connection = await aio(asyncpg.connect, database_dsn_for(self.dsn, "postgres"))
        return conn

    async def _make_template(self) -> None:
        conn = await self._admin()
        try:
            await aio(conn.execute, f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
            await aio(conn.execute, f"CREATE DATABASE {TEMPLATE}")
        finally:
            await aio(conn.close)
        async with open_database(database_dsn_for(self.dsn, TEMPLATE), max_size=1) as db:
            await migrate(db)

    async def create_database(self, template: str | None = TEMPLATE) -> str:
        """A new database (a copy of the migrated template by default); its name."""
        name = "t_" + uuid.uuid4().hex[:16]
        conn = await self._admin()
        try:
            template_sql = f" TEMPLATE {template}" if template else ""
            await aio(conn.execute, f"CREATE DATABASE {name}{template_sql}")
        finally:
            await aio(conn.close)
        return name

    async def drop_database(self, name: str) -> None:
        conn = await self._admin()
        try:
            await aio(conn.execute, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await aio(conn.close)

    def dsn_of(self, name: str) -> str:
        return database_dsn_for(self.dsn, name)

    @asynccontextmanager
    async def fresh_database(self, *, template: str | None = TEMPLATE) -> AsyncIterator[str]:
        """A new database (a copy of the migrated template by default), dropped afterwards."""
        name = await self.create_database(template)
        try:
            yield database_dsn_for(self.dsn, name)
        finally:
            await self.drop_database(name)
