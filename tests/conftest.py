from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import trio
import trio_asyncio

from server.config import ENV_SETTINGS, Settings
from server.context import AppContext
from server.runtime import Bound, run_services
from storage.database import Database, open_database
from tests.live_client import Live
from tests.pg import PgCluster
from tests.process import running

# The server modes a test that drives the server from outside runs against (see ``server_mode``).
BOTH = ["one", "workers"]

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
        overload_behind_ms=0,  # no load shedding on a busy test machine (test_admission turns it on)
    )


@pytest.fixture
def ctx(settings: Settings, db: Database) -> AppContext:
    return AppContext.build(settings, db, JWT_SECRET)


def _as_env(settings: Settings) -> dict[str, str]:
    """The test's settings as the environment a ``seda serve`` process reads them from."""
    env: dict[str, str] = {}
    for name, (field_name, _) in ENV_SETTINGS.items():
        value = getattr(settings, field_name)
        if value is None or isinstance(value, tuple):
            continue
        env[name] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return env


@pytest.fixture
def server_mode(request: pytest.FixtureRequest) -> str:
    """``one``: the server in the test's own trio run (the default). ``workers``: a real
    ``seda serve --workers 2`` (two nodes sharing the ports, NATS between them) on the test's
    database; a test opts in with ``@pytest.mark.parametrize("server_mode", BOTH, indirect=True)``."""
    mode: str = getattr(request, "param", "one")
    return mode


@pytest.fixture
async def server(server_mode: str, ctx: AppContext, nursery: trio.Nursery) -> AsyncIterator[Bound]:
    """The REST app and the live gateway on free ports, in this test's trio run (or, for the
    ``workers`` mode, in two worker processes)."""
    if server_mode == "workers":
        settings = ctx.settings
        assert settings.database_url is not None
        env = {**_as_env(settings), "SEDA_WORKERS": "2", "SEDA_HTTP_PORT": "0", "SEDA_LIVE_PORT": "0"}
        async with running(settings.data_dir, nursery, **env) as process:
            yield Bound(process.http_port, process.live_port)
            assert await process.stop() == 0, process.log
        return
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Each phase's report on the item, for fixtures that act on a failure (browser screenshots)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)
