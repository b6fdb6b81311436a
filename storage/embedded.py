"""The embedded Postgres (pgserver) in the data directory, and the data-dir lock."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("seda.storage")


class DataDirBusy(RuntimeError):
    """Another seda process holds this data directory."""


@contextmanager
def lock_data_dir(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the data directory for the life of the block.

    The kernel drops a flock when its process dies, even by SIGKILL, so a crash
    never leaves a stale lock behind.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    lock_path = data_dir / "seda.lock"
    handle: IO[str] = open(lock_path, "a+")  # noqa: SIM115 - held for the block's life
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise DataDirBusy(
                f"data directory {data_dir} is in use by seda process {holder}; "
                "stop it first or choose another SEDA_DATA_DIR"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedPostgres:
    """A private Postgres cluster in ``<data_dir>/pg``, started on open and stopped on close."""

    def __init__(self, data_dir: Path, *, fsync: bool = True) -> None:
        self.pgdata = data_dir / "pg"
        self.fsync = fsync
        self._server: Any = None

    def start(self) -> str:
        """Start (or adopt, after a crash of ours) the cluster; returns a DSN."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (it is, in CI); pgserver copes.
            warnings.simplefilter("ignore")
            import pgserver  # imported late: it sets up runtime dirs on import

        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._forget_dead_handles()
        self._server = pgserver.get_server(  # type: ignore[attr-defined]
            self.pgdata, cleanup_mode="stop"
        )
        wanted = "on" if self.fsync else "off"
        current = self._server.psql("SHOW fsync;")
        if wanted not in current.split():
            self._server.psql(f"ALTER SYSTEM SET fsync = {wanted}; SELECT pg_reload_conf();")
        dsn: str = self._server.get_uri()
        return dsn

    def _forget_dead_handles(self) -> None:
        """Drop pids of dead processes from pgserver's handle list.

        pgserver stops the cluster only when its last live handle closes; a
        process of ours killed by SIGKILL never removed its pid, which would
        keep the cluster running after every later clean stop.
        """
        path = self.pgdata / ".handle_pids.json"
        try:
            pids = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and _process_alive(pid)]
        if alive != pids:
            path.write_text(json.dumps(alive))

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
