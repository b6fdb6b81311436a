"""For the browser tests: a real ``seda serve`` on fixed ports (so a restarted server comes back
where the page left it), and the OS's Chromium driven by Playwright."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.live_client import PASSWORD
from tests.process import seda_env

CHROMIUM = Path("/usr/bin/chromium")
# The flags that keep Chromium off the network it cannot reach here (its own update and sync
# services), and out of the sandbox it cannot make as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
START_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Served:
    """``seda serve`` in a child process on the given database, on two fixed free ports."""

    def __init__(self, data_dir: Path, dsn: str) -> None:
        self.http_port, self.live_port = free_port(), free_port()
        self.env = seda_env(
            data_dir,
            DATABASE_URL=dsn,
            SEDA_HTTP_PORT=str(self.http_port),
            SEDA_LIVE_PORT=str(self.live_port),
            SEDA_LEASE_TTL_S="3",
            SEDA_CHAT_RATE="1000",  # the tests send bursts from one user
            SEDA_OPS_PER_SECOND="1000",
        )
        self.lines: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def start(self) -> None:
        self._ready.clear()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        if not self._ready.wait(START_TIMEOUT) or self.process.poll() is not None:
            raise AssertionError(f"seda serve did not start:\n{self.log}")

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if "live gateway listening" in line:
                self._ready.set()
        self._ready.set()  # exited: start() sees it

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def seda(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "server.cli", *args],
            env=self.env,
            capture_output=True,
            timeout=60,
            check=False,
        )

    # ---- the REST API, for what a test sets up around the pages ----

    def user(self, username: str, *, role: str | None = None) -> dict[str, Any]:
        """A user (an admin from the shell, like the README says) and their login."""
        if role is not None:
            made = self.seda(
                "user", "create", "--email", f"{username}@example.com", "--username", username,
                "--password", PASSWORD, "--role", role,
            )  # fmt: skip
            assert made.returncode == 0, made.stderr
        else:
            r = httpx.post(
                f"{self.url}/api/v1/auth/register",
                json={"email": f"{username}@example.com", "username": username, "password": PASSWORD},
            )
            assert r.status_code == 201, r.text
        r = httpx.post(f"{self.url}/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        login: dict[str, Any] = r.json()
        return login

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)


def in_ci() -> bool:
    return os.environ.get("CI", "") not in ("", "0", "false")
