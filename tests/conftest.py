from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import trio
import trio_asyncio

from server.config import Settings
from server.context import AppContext
from server.runtime import Bound, run_services
from storage.database import Database, open_database
from tests.live_client import Live
from tests.pg import PgCluster

JWT_SECRET = "test-secret-" + "x" * 32


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    pg = PgCluster(tmp_path_factory.mktemp(f"pg-{worker}"))
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture
async def aio_loop() -> AsyncIterator[None]:
    async with trio_asyncio.open_loop():
        yield


@pytest.fixture
async def dsn(cluster: PgCluster, aio_loop: None) -> AsyncIterator[str]:
    async with cluster.fresh_database() as name:
        yield name


@pytest.fixture
async def db(dsn: str) -> AsyncIterator[Database]:
    async with open_database(dsn, max_size=5) as database:
        yield database


@pytest.fixture
def settings(tmp_path: Path, dsn: str) -> Settings:
    return replace(
        Settings(),
        host="127.0.0.1",
        http_port=0,
        live_port=0,
        data_dir=tmp_path / "data",
        database_url=dsn,
        jwt_secret=JWT_SECRET,
        auth_per_min_per_addr=0,  # suites sign up many users from 127.0.0.1; the per-account limit stays
    )


@pytest.fixture
def ctx(settings: Settings, db: Database) -> AppContext:
    return AppContext.build(settings, db, JWT_SECRET)


@pytest.fixture
async def server(ctx: AppContext, nursery: trio.Nursery) -> AsyncIterator[Bound]:
    """The REST app and the live gateway on free ports, in this test's trio run."""
    stopping = trio.Event()
    bound: Bound = await nursery.start(
        lambda task_status: run_services(ctx, stop=stopping.wait, task_status=task_status)
    )
    yield bound
    stopping.set()


@pytest.fixture
async def http(server: Bound) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as client:
        yield client


@pytest.fixture
async def live(http: httpx.AsyncClient, server: Bound) -> Live:
    return Live(http, server.live_port)
