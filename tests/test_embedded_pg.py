"""The embedded Postgres's lifecycle: what an earlier run left is cleared, old data is refused.

Real clusters and processes: an orphaned postmaster (started the way ``pg_ctl`` starts one,
detached and owned by nobody), a backend that outlived a killed postmaster, a pid file naming
a process that is not Postgres, a data directory of Postgres 16, and a real ``seda serve``.
"""

from __future__ import annotations

import logging
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trio

from storage.embedded import (
    SYSTEM_USER,
    EmbeddedPostgres,
    EmbeddedPostgresError,
    IncompatibleDataDir,
    PidFile,
    bin_dir,
    binaries_major,
    postgres_processes,
)
from tests.process import run_seda, running, seda_env

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and pidfds")


def psql(dsn: str, sql: str) -> str:
    done = subprocess.run(
        [str(bin_dir() / "psql"), dsn, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.strip()


def cluster_owner() -> tuple[int | None, int | None]:
    """(user, group) for a child that must run as the cluster's owner: the system user as root."""
    if os.geteuid() != 0:
        return None, None
    entry = pwd.getpwnam(SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name == "seda.storage")


@pytest.fixture
def storage_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="seda.storage")
    return caplog


def test_the_bundled_postgres_is_18() -> None:
    assert binaries_major() == 18
    assert (bin_dir().parent / "share" / "extension" / "pg_trgm.control").exists()


@linux_only
def test_an_orphaned_postmaster_is_shut_down_and_replaced(
    tmp_path: Path, storage_log: pytest.LogCaptureFixture
) -> None:
    pg = EmbeddedPostgres(tmp_path, fsync=False)
    dsn = pg.start()
    psql(dsn, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
    pg.stop()
    socket_dir = dsn.rsplit("host=", 1)[1]
    # Started the way pg_ctl (and pgserver) start it: a daemon in its own session that nothing
    # of ours parents, so nothing tells it to quit.
    uid, gid = cluster_owner()
    subprocess.run(
        [
            str(bin_dir() / "pg_ctl"),
            "-D",
            str(pg.pgdata),
            "-w",
            "-l",
            str(pg.pgdata / "orphan.log"),
            "-o",
            f"-c listen_addresses= -c unix_socket_directories={socket_dir}",
            "start",
        ],
        capture_output=True,
        check=True,
        timeout=60,
        user=uid,
        group=gid,
    )
    orphan = PidFile.read(pg.pgdata)
    assert orphan is not None and orphan.status == "ready"
    assert orphan.pid in postgres_processes(pg.pgdata)

    again = EmbeddedPostgres(tmp_path, fsync=False)
    again.start()
    try:
        assert orphan.pid not in postgres_processes(pg.pgdata)
        assert again.pid != orphan.pid
        assert psql(again.dsn, "SELECT x FROM kept") == "42"  # a clean shutdown: nothing lost
        assert f"orphaned postmaster {orphan.pid}" in logged(storage_log)
    finally:
        again.stop()


@linux_only
def test_a_backend_that_outlived_its_postmaster_is_stopped(
    tmp_path: Path, storage_log: pytest.LogCaptureFixture
) -> None:
    pg = EmbeddedPostgres(tmp_path, fsync=False)
    dsn = pg.start()
    # A busy backend notices its postmaster's death only when it next waits: never, here.
    busy = subprocess.Popen(
        [str(bin_dir() / "psql"), dsn, "-c", "DO $$ BEGIN LOOP END LOOP; END $$"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        busy_backend = "SELECT pid FROM pg_stat_activity WHERE query LIKE 'DO $$%' AND state = 'active'"
        while not (backend := psql(dsn, busy_backend)):
            assert time.monotonic() < deadline, "the busy backend never showed"
        assert pg.pid is not None
        os.kill(pg.pid, signal.SIGKILL)
        pg.stop()  # reaps it
        assert int(backend) in postgres_processes(pg.pgdata)

        again = EmbeddedPostgres(tmp_path, fsync=False)
        again.start()
        try:
            assert int(backend) not in postgres_processes(pg.pgdata)
            assert psql(again.dsn, "SELECT 1") == "1"
            text = logged(storage_log)
            assert "postmaster gone" in text and "sending SIGQUIT" in text, text
        finally:
            again.stop()
    finally:
        busy.kill()
        busy.wait()


def test_a_stale_pid_file_naming_another_live_process_is_removed(
    tmp_path: Path, storage_log: pytest.LogCaptureFixture
) -> None:
    pg = EmbeddedPostgres(tmp_path, fsync=False)
    dsn = pg.start()
    pg.stop()
    socket_dir = dsn.rsplit("host=", 1)[1]
    # What a killed postmaster leaves, once its pid has gone to another process of the same user:
    # Postgres alone would refuse to start ("Is another postmaster (PID n) running?").
    uid, gid = cluster_owner()
    other = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, user=uid, group=gid)
    try:
        stale = f"{other.pid}\n{pg.pgdata}\n1700000000\n5432\n{socket_dir}\n\n  5432001  0\nready   \n"
        (pg.pgdata / "postmaster.pid").write_text(stale)
        again = EmbeddedPostgres(tmp_path, fsync=False)
        again.start()
        try:
            info = PidFile.read(pg.pgdata)
            assert info is not None and info.pid == again.pid and info.status == "ready"
            assert f"removing the stale postmaster.pid of pid {other.pid}" in logged(storage_log)
            assert other.poll() is None  # not taken for a postmaster: left alone
        finally:
            again.stop()
    finally:
        assert other.stdin is not None
        other.stdin.close()
        other.wait()
    assert not (pg.pgdata / "postmaster.pid").exists()


def test_a_folder_that_is_not_a_cluster_is_left_alone(tmp_path: Path) -> None:
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    (pgdata / "base").mkdir()
    with pytest.raises(EmbeddedPostgresError, match="no PG_VERSION"):
        EmbeddedPostgres(tmp_path).start()
    assert sorted(p.name for p in pgdata.iterdir()) == ["base"]


def old_cluster(data_dir: Path) -> Path:
    """The shape of a data directory Postgres 16 (pgserver) made."""
    pgdata = data_dir / "pg"
    (pgdata / "base" / "1").mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("16\n")
    (pgdata / "base" / "1" / "1259").write_bytes(b"\0" * 8192)
    return pgdata


def test_data_of_postgres_16_is_refused(tmp_path: Path) -> None:
    pgdata = old_cluster(tmp_path)
    with pytest.raises(IncompatibleDataDir) as refused:
        EmbeddedPostgres(tmp_path).start()
    message = str(refused.value)
    assert "Postgres 16" in message and "Postgres 18" in message
    assert "pg_dumpall" in message and "psql" in message and "pgserver" in message
    assert (pgdata / "PG_VERSION").read_text() == "16\n"


@pytest.mark.slow
async def test_seda_refuses_data_of_postgres_16_and_starts_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    pgdata = old_cluster(data)
    before = sorted(str(p.relative_to(data)) for p in data.rglob("*"))
    for command in ("serve", "migrate"):
        result = await run_seda(command, env=seda_env(data))
        assert result.returncode == 2, result.stderr
        err = result.stderr.decode()
        assert "holds data of Postgres 16; this seda runs Postgres 18" in err, err
        assert "pg_dumpall" in err and "Traceback" not in err
    # Nothing was made, moved or started: no empty database in its place.
    assert sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.name != "seda.lock") == [
        p for p in before if p != "seda.lock"
    ]
    assert (pgdata / "PG_VERSION").read_text() == "16\n"


@pytest.mark.slow
@linux_only
async def test_the_postmaster_is_apart_from_the_servers_group_yet_dies_with_it(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    data = tmp_path / "data"
    async with running(data, nursery) as server:
        assert server.process is not None
        info = PidFile.read(data / "pg")
        assert info is not None and info.status == "ready"
        # A terminal's Ctrl-C reaches the server's group only: the server stops Postgres itself.
        assert os.getpgid(info.pid) == info.pid != os.getpgid(server.process.pid)
        pidfd = os.pidfd_open(info.pid)
        try:
            assert await server.stop(signal.SIGKILL) == -signal.SIGKILL
            with trio.fail_after(10):
                await trio.lowlevel.wait_readable(pidfd)  # the postmaster exits: no orphan
        finally:
            os.close(pidfd)
        assert not postgres_processes(data / "pg")

        await server.start(nursery)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
            assert (await http.get("/readyz")).status_code == 200
        assert await server.stop(signal.SIGTERM) == 0
