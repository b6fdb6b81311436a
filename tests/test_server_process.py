"""The real ``seda serve``: start from nothing, serve, refuse a twin, stop cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import jwt
import pytest
import trio

from storage.embedded import PidFile
from tests.live_client import Live
from tests.process import SedaServer, run_seda, running, seda_env

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery"


async def test_serve_embedded_postgres_end_to_end(tmp_path: Path, nursery: trio.Nursery) -> None:
    data = tmp_path / "data"
    server = SedaServer(data)
    await server.start(nursery)
    assert "starting embedded postgres" in server.log
    base = f"http://127.0.0.1:{server.http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        assert (await http.get("/readyz")).status_code == 200
        r = await http.post(
            "/api/v1/auth/register",
            json={"email": "ana@example.com", "username": "ana", "password": PASSWORD},
        )
        assert r.status_code == 201
        token = r.json()["access_token"]
        assert (await http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).json()[
            "username"
        ] == "ana"

        # A second server on the same data directory refuses to start, saying why.
        twin = await run_seda("serve", env=seda_env(data))
        assert twin.returncode == 2
        assert b"in use" in twin.stderr

        # `seda user create` works against the running server's database.
        made = await run_seda(
            "user",
            "create",
            "--email",
            "root@example.com",
            "--username",
            "root",
            "--password",
            PASSWORD,
            "--role",
            "admin",
            env=seda_env(data),
        )
        assert made.returncode == 0, made.stderr
        r = await http.post("/api/v1/auth/login", json={"username": "root", "password": PASSWORD})
        assert r.status_code == 200
        claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
        assert claims["role"] == "admin"
        # The secret was generated into the data dir and signs the tokens.
        secret = (data / "jwt_secret").read_text().strip()
        jwt.decode(r.json()["access_token"], secret, algorithms=["HS256"])

    assert await server.stop(signal.SIGTERM) == 0
    assert "stopped" in server.lines[-1]
    assert not (data / "pg" / "postmaster.pid").exists(), "embedded postgres left running"

    # Against the stopped server's database, and the next start sees it.
    made = await run_seda(
        "user",
        "create",
        "--email",
        "ben@example.com",
        "--username",
        "ben",
        "--password",
        PASSWORD,
        env=seda_env(data),
    )
    assert made.returncode == 0, made.stderr
    dup = await run_seda(
        "user",
        "create",
        "--email",
        "ben2@example.com",
        "--username",
        "BEN",
        "--password",
        PASSWORD,
        env=seda_env(data),
    )
    assert dup.returncode == 1 and b"username is already taken" in dup.stderr
    migrated = await run_seda("migrate", env=seda_env(data))
    assert migrated.returncode == 0 and b"up to date" in migrated.stdout

    await server.start(nursery)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
        r = await http.post("/api/v1/auth/login", json={"username": "ben", "password": PASSWORD})
        assert r.status_code == 200
    assert await server.stop(signal.SIGINT) == 0


async def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    result = await run_seda("serve", env=seda_env(tmp_path, SEDA_HTTP_PORT="eighty"))
    assert result.returncode == 2
    assert b"SEDA_HTTP_PORT" in result.stderr


async def test_sigterm_stops_the_server_when_postgres_is_gone(tmp_path: Path, nursery: trio.Nursery) -> None:
    """A journal that cannot reach Postgres (it died under a pending chat) and rooms that cannot
    flush do not hold a stop for ever: after SEDA_SHUTDOWN_TIMEOUT_S the server stops anyway
    (nothing uncommitted was acknowledged)."""
    data = tmp_path / "data"
    # ``running``: whatever happens, no server is left behind (it kills one that did not stop)
    async with (
        running(data, nursery, SEDA_SHUTDOWN_TIMEOUT_S="2") as server,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http,
    ):
        live = Live(http, server.live_port)
        token, _ = await live.user()
        room = await live.room(token)
        async with live.connect(room["id"], token) as client:
            await client.chat("committed before the fall")
            postmaster = PidFile.read(data / "pg")
            assert postmaster is not None
            os.kill(postmaster.pid, signal.SIGKILL)
            await client.send("chat.send", {"text": "never committed"})
            started = trio.current_time()
            code = await server.stop(signal.SIGTERM, timeout=30)
    took = trio.current_time() - started
    print(f"stopped {took:.1f} s after SIGTERM (exit {code})")
    # Before, the journal retried its connection for ever and the stop never ended.
    assert took < 20, server.log
    assert server.lines[-1].endswith("INFO seda: stopped"), server.log
