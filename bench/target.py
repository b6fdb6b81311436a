"""The server under test: a ``seda serve`` the harness starts (``--spawn``), or one it is pointed at,
and what its process costs (CPU seconds, RSS) as the run goes."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import psutil

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
# Rate limits a spawned server gets, so that the limits are not what the bench measures.
RAISED_LIMITS = {
    "SEDA_CHAT_RATE": "1000000",
    "SEDA_CHAT_RATE_WINDOW_S": "1",
    "SEDA_OPS_PER_SECOND": "1000000",
    # The harness signs up hundreds of users from one address (the per-account login limit stays).
    "SEDA_AUTH_PER_MIN_PER_ADDR": "0",
}
_REST = re.compile(r"REST API listening on (http://\S+)")
_LIVE = re.compile(r"live gateway listening on (ws://\S+)")
# With --workers N each worker's lines start "[worker N] "; the parent says when all of them listen.
_ALL_LISTENING = re.compile(r"all \d+ workers listening \(pids ([\d, ]+)\)")
_PARENT_REST = re.compile(r"^(?!\[worker).*REST API listening on (http://\S+)", re.M)
_PARENT_LIVE = re.compile(r"^(?!\[worker).*live gateway listening on (ws://\S+)", re.M)


class ServerFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class ServerSample:
    at_ns: int
    cpu_s: float
    rss: int
    db_cpu_s: float | None
    nats_cpu_s: float | None = None
    processes: int = 1  # server processes summed (the parent and its workers)


@dataclass(frozen=True)
class MachineSample:
    """Busy CPU seconds of each CPU since boot (everything but idle and iowait)."""

    at_ns: int
    busy_s: tuple[float, ...]

    @classmethod
    def now(cls) -> MachineSample:
        busy = tuple(sum(t) - t.idle - getattr(t, "iowait", 0.0) for t in psutil.cpu_times(percpu=True))
        return cls(time.time_ns(), busy)


class ServerMonitor:
    """Reads the server's CPU time and RSS (and its Postgres's CPU time, if known) on demand.

    The server is the process ``pid`` and every descendant of it (the workers of ``seda serve
    --workers N``) except its embedded Postgres (the postmaster ``db_pid`` and its backends,
    reported on their own) and ``nats-server`` (reported on its own). Workers that exited and
    were reaped count through the parent's children_* times (so do a reaped Postgres or NATS,
    which only happens at shutdown)."""

    def __init__(self, pid: int, db_pid: int | None = None) -> None:
        self.pid = pid
        self.process = psutil.Process(pid)
        self.db = psutil.Process(db_pid) if db_pid else None

    def sample(self) -> ServerSample | None:
        try:
            with self.process.oneshot():
                times = self.process.cpu_times()
                rss = self.process.memory_info().rss
            cpu = times.user + times.system + times.children_user + times.children_system
            descendants = self.process.children(recursive=True)
        except psutil.NoSuchProcess:
            return None
        db_pids = self._db_pids()
        nats_cpu: float | None = None
        processes = 1
        for child in descendants:
            if child.pid in db_pids:
                continue
            try:
                with child.oneshot():
                    name = child.name()
                    child_times = child.cpu_times()
                    child_rss = child.memory_info().rss
            except psutil.NoSuchProcess:
                continue
            if name == "postgres":  # a backend not yet in our view of the postmaster's children
                continue
            if name.startswith("nats-server"):
                nats_cpu = (nats_cpu or 0.0) + child_times.user + child_times.system
                continue
            cpu += child_times.user + child_times.system
            rss += child_rss
            processes += 1
        return ServerSample(time.time_ns(), cpu, rss, self._db_cpu(), nats_cpu, processes)

    def _db_pids(self) -> set[int]:
        if self.db is None:
            return set()
        try:
            return {self.db.pid, *(child.pid for child in self.db.children(recursive=True))}
        except psutil.NoSuchProcess:
            return {self.db.pid}

    def _db_cpu(self) -> float | None:
        """The postmaster, the backends alive now, and those already reaped (its children_* times)."""
        if self.db is None:
            return None
        try:
            times = self.db.cpu_times()
            total = times.user + times.system + times.children_user + times.children_system
            for child in self.db.children():
                try:
                    child_times = child.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                total += child_times.user + child_times.system
        except psutil.NoSuchProcess:
            return None
        return total


def seda_command(explicit: str | None) -> list[str]:
    """How to run ``seda``: ``--seda``, else the one next to this Python, else on PATH."""
    if explicit:
        return explicit.split()
    beside = Path(sys.executable).parent / "seda"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("seda")
    if found:
        return [found]
    raise ServerFailed("cannot find the seda command; pass --seda")


class SpawnedServer:
    """``seda serve`` on free ports in its own data directory (a temporary one unless given)."""

    def __init__(
        self, command: list[str], *, data_dir: Path | None, env: dict[str, str], workers: int = 1
    ) -> None:
        self.command = command
        self.workers = workers
        self.keep_data = data_dir is not None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="seda-bench-server-"))
        self.extra_env = env
        self.log_path = self.data_dir / "bench-server.log"
        self.process: asyncio.subprocess.Process | None = None
        self.http = ""
        self.live = ""
        self.exit_code: int | None = None
        self.worker_pids: list[int] = []

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def db_pid(self) -> int | None:
        """The embedded Postgres's postmaster (first line of its pid file)."""
        try:
            return int((self.data_dir / "pg" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEDA_") and k != "DATABASE_URL"}
        env.update(
            {"SEDA_DATA_DIR": str(self.data_dir), "SEDA_HTTP_PORT": "0", "SEDA_LIVE_PORT": "0"},
        )
        env.update(RAISED_LIMITS)
        env["SEDA_WORKERS"] = str(self.workers)
        env.update(self.extra_env)
        return env

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self._open_log() as log:
            self.process = await asyncio.create_subprocess_exec(
                *self.command,
                "serve",
                env=self.env(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a Ctrl-C of the harness must not reach it: we stop it
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            text = self._log(offset)
            rest, live = _REST.search(text), _LIVE.search(text)
            if self.workers > 1:  # the parent's own lines, once every worker listens
                rest, live = _PARENT_REST.search(text), _PARENT_LIVE.search(text)
                listening = _ALL_LISTENING.search(text)
                if listening:
                    self.worker_pids = [int(p) for p in re.findall(r"\d+", listening.group(1))]
                else:
                    rest = None
            if rest and live:
                self.http, self.live = rest.group(1), live.group(1)
                return
            if self.process.returncode is not None:
                raise ServerFailed(f"seda serve exited ({self.process.returncode}):\n{text[-3000:]}")
            await asyncio.sleep(0.05)
        raise ServerFailed(
            f"seda serve did not start in {START_TIMEOUT_S:.0f}s:\n{self._log(offset)[-3000:]}"
        )

    def _open_log(self) -> BinaryIO:
        return open(self.log_path, "ab")

    def _log(self, offset: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as src:
                src.seek(offset)
                return src.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = 3000) -> str:
        return self._log()[-chars:]

    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def stop(self) -> int | None:
        """SIGTERM, as an operator would; a kill (and a stop of its Postgres) if it does not end."""
        process = self.process
        if process is None:
            return None
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await process.wait()
            except TimeoutError:
                process.kill()  # its embedded Postgres shuts down with it (and the next start cleans up)
                await process.wait()
        self.exit_code = process.returncode
        return self.exit_code

    def database_url(self) -> str | None:
        """A DSN for the embedded Postgres while it runs (its socket directory, from its pid file),
        for ``seda`` commands run beside the server (``seda user create``)."""
        try:
            lines = (self.data_dir / "pg" / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None
        if len(lines) < 5 or not lines[4].strip():
            return None
        return f"postgresql://postgres@/postgres?host={lines[4].strip()}"

    async def run_seda(self, *args: str) -> str:
        """Run ``seda ARGS`` against this server's database (not its data-dir lock); its output."""
        dsn = self.database_url()
        if dsn is None:
            raise ServerFailed("the embedded Postgres's socket directory is unknown")
        env = {k: v for k, v in self.env().items() if k != "SEDA_WORKERS"}
        env["DATABASE_URL"] = dsn
        process = await asyncio.create_subprocess_exec(
            *self.command,
            *args,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        text = out.decode(errors="replace")
        if process.returncode != 0:
            raise ServerFailed(f"seda {' '.join(args[:2])} exited ({process.returncode}):\n{text[-2000:]}")
        return text

    def cleanup(self) -> None:
        """Remove a temporary data directory, unless the server failed (its log is in there)."""
        if not self.keep_data and self.exit_code == 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
