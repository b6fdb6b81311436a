"""A real ``seda serve`` subprocess, for tests that need signals and restarts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

# A loaded parallel run (initdb and crash recovery on two busy cores) can take a while to start.
START_TIMEOUT = 120

_REST = re.compile(r"REST API listening on http://[^:]+:(\d+)")
_LIVE = re.compile(r"live gateway listening on ws://[^:]+:(\d+)")


def seda_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEDA_") and k != "DATABASE_URL"}
    env.update({"SEDA_DATA_DIR": str(data_dir), "SEDA_HTTP_PORT": "0", "SEDA_LIVE_PORT": "0"})
    # Tests sign up many users from one address; the per-account login limit stays on.
    env["SEDA_AUTH_PER_MIN_PER_ADDR"] = "0"
    # No load shedding on a busy test machine (test_admission turns it on).
    env["SEDA_OVERLOAD_BEHIND_MS"] = "0"
    env.update(extra)
    return env


async def run_seda(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """Run a short ``seda`` command to completion."""
    with trio.fail_after(timeout):
        return await trio.run_process(
            [sys.executable, "-m", "server.cli", *args],
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


class SedaServer:
    """``seda serve`` in a child process; its log is collected line by line."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.env = seda_env(data_dir, **env)
        self.lines: list[str] = []
        self._new_line = trio.Event()
        self.process: trio.Process | None = None
        self.http_port = 0
        self.live_port = 0

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def start(self, nursery: trio.Nursery, *, timeout: float = 60) -> None:
        self.lines.clear()
        self.process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "server.cli", "serve"],
            env=self.env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        nursery.start_soon(self._read_log, self.process)
        with trio.fail_after(timeout):
            rest = await self.wait_for(_REST)
            live = await self.wait_for(_LIVE)
        self.http_port, self.live_port = int(rest.group(1)), int(live.group(1))

    async def _read_log(self, process: trio.Process) -> None:
        assert process.stderr is not None
        buffer = b""
        async for chunk in process.stderr:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                self.lines.append(line.decode(errors="replace"))
            self._new_line.set()
            self._new_line = trio.Event()
        if buffer:
            self.lines.append(buffer.decode(errors="replace"))
        self._new_line.set()

    async def wait_for(self, pattern: re.Pattern[str]) -> re.Match[str]:
        """Wait until a log line matches ``pattern`` (the caller sets the deadline)."""
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if match := pattern.search(line):
                    return match
            seen = len(self.lines)
            if (
                self.process is not None
                and self.process.returncode is not None
                and not self._new_line.is_set()
            ):
                raise AssertionError(
                    f"server exited ({self.process.returncode}) before {pattern.pattern!r}:\n{self.log}"
                )
            await self._new_line.wait()

    async def stop(self, signum: int = signal.SIGTERM, *, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        with trio.fail_after(timeout):
            return await self.process.wait()


@asynccontextmanager
async def running(data_dir: Path, nursery: trio.Nursery, **env: str) -> AsyncIterator[SedaServer]:
    """A started server; whatever happens in the test, no server or Postgres is left running."""
    server = SedaServer(data_dir, **env)
    try:
        await server.start(nursery, timeout=START_TIMEOUT)
        yield server
    except BaseException:
        print(f"server log:\n{server.log}")  # shown with the failure
        raise
    finally:
        process = server.process
        if process is not None and process.returncode != 0:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    process.kill()
                    with trio.move_on_after(10):
                        await process.wait()
                # A killed server leaves its embedded Postgres up; a short command adopts and stops it.
                await run_seda("migrate", env=server.env)
