"""``python -m bench takeover``: how long a room is away when the worker that owns it dies.

Spawns ``seda serve --workers N`` (2), makes an admin with ``seda user create --role admin``
against the spawned server's database, and per trial: creates a room, connects a guest
listener and a sender (one message, so there is a ``seq`` to resume from), asks the admin REST
API which node owns the room (``/admin/rooms/:id/owner``) and that node's pid
(``/admin/nodes``), kills that pid with SIGKILL, and then, from the kill on, a client keeps
reconnecting with ``since=<last seq>`` until it is welcomed (``welcome``), and a sender keeps
reconnecting and sending ``chat.send`` until one is acknowledged (``send acked``). Between
trials it waits until N live workers are registered again (the parent restarts a dead worker
after 1 s), so each trial starts from N.

What a takeover waits for: the lease of the dead owner expires (``SEDA_LEASE_TTL_S``, 5 s by
default; ``--lease-ttl``), or the restarted worker, which keeps its node id, claims it back.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from bench.control import ControlSocket, Message, OpFailed, is_event
from bench.progress import ProgressBar
from bench.rest import PASSWORD, RestApi, UserPool
from bench.stats import Summary
from bench.target import SpawnedServer, seda_command
from bench.wsclient import ConnectFailed, LiveEndpoint, connect

ATTEMPT_TIMEOUT_S = 10.0  # one connect, to its welcome
RETRY_PAUSE_S = 0.02


class SeqSocket(ControlSocket):
    """Keeps the highest ``seq`` it has seen (welcome and events) and how it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.last_seq = -1
        self.closed_code: int | None = None
        self.closed_at_ns = 0

    def on_welcome(self, welcome: dict[str, Any]) -> None:
        super().on_welcome(welcome)
        data = welcome.get("data") or {}
        seq = data.get("seq", welcome.get("seq"))
        if isinstance(seq, int):
            self.last_seq = max(self.last_seq, seq)

    def on_event(self, message: Message) -> None:
        seq = message.get("seq")
        if isinstance(seq, int):
            self.last_seq = max(self.last_seq, seq)

    def on_closed(self, code: int, by_server: bool) -> None:
        super().on_closed(code, by_server)
        self.closed_code = code
        self.closed_at_ns = time.monotonic_ns()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trials", type=int, default=20, help="rooms whose owner is killed, one by one (20)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (2)")
    parser.add_argument(
        "--lease-ttl", type=float, default=None, help="SEDA_LEASE_TTL_S for the server (its default: 5)"
    )
    parser.add_argument("--deadline", type=float, default=60.0, help="give a trial up after this (60 s)")
    parser.add_argument("--seda", help="command that runs seda (default: the one beside this Python)")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the server (repeatable)",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="the server's data dir (kept, with its log bench-server.log)"
    )
    parser.add_argument("--json", help="also write the report as JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


async def _until_welcomed(
    endpoint: LiveEndpoint, room: str, since: int | None, token: str | None, deadline: float
) -> tuple[SeqSocket, int, list[str]]:
    """Reconnect until welcomed: the socket, the attempts it took, the failures on the way."""
    failures: list[str] = []
    attempts = 0
    while True:
        attempts += 1
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no welcome after {attempts - 1} attempts: {failures[-3:]}")
        try:
            socket = await connect(
                SeqSocket(), endpoint, room, token=token, since=since, timeout=min(left, ATTEMPT_TIMEOUT_S)
            )
        except ConnectFailed as failed:
            failures.append(failed.code)
            await asyncio.sleep(RETRY_PAUSE_S)
            continue
        return socket, attempts, failures


async def _until_acked(endpoint: LiveEndpoint, room: str, token: str, deadline: float) -> int:
    """Reconnect and send until a ``chat.send`` is acknowledged; when (``time.time_ns()``)."""
    while True:
        socket, _, _ = await _until_welcomed(endpoint, room, None, token, deadline)
        try:
            while time.monotonic() < deadline:
                try:
                    await socket.request(
                        "chat.send", {"text": "after the takeover"}, timeout=ATTEMPT_TIMEOUT_S
                    )
                    return time.time_ns()
                except OpFailed:
                    await asyncio.sleep(RETRY_PAUSE_S)
                except (ConnectionError, TimeoutError):
                    break  # closed (or silent): a new socket
            else:
                raise TimeoutError("no chat.send acknowledged before the deadline")
        finally:
            socket.abort()


class Takeover:
    def __init__(self, args: argparse.Namespace, progress: ProgressBar) -> None:
        self.args = args
        self.progress = progress
        self.api: RestApi
        self.admin = ""
        self.endpoint: LiveEndpoint
        self.server: SpawnedServer

    def note(self, text: str) -> None:
        if not self.args.quiet:
            print(text, flush=True)

    async def _owner(self, room: str, deadline: float) -> dict[str, Any]:
        """The room's lease holder, with its pid from /admin/nodes (polled until both are known)."""
        while True:
            status, owner = await self.api.get_json(f"/api/v1/admin/rooms/{room}/owner", self.admin)
            if status == 200:
                _, nodes = await self.api.get_json("/api/v1/admin/nodes", self.admin)
                for node in (nodes or {}).get("items", []):
                    if node["node_id"] == owner["node_id"]:
                        return {**owner, "pid": node["pid"]}
            elif status != 404:
                raise RuntimeError(f"GET owner: HTTP {status} {owner}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no owner of room {room} known")
            await asyncio.sleep(0.05)

    def _workers(self) -> dict[str, int]:
        """The spawned server's live workers that listen on the live port: node id -> pid (the
        parent starts each with SEDA_NODE_ID in its environment)."""
        found: dict[str, int] = {}
        try:
            children = psutil.Process(self.server.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return found
        for child in children:
            try:
                node = child.environ().get("SEDA_NODE_ID")
                listening = any(
                    c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == self.endpoint.port
                    for c in child.net_connections(kind="tcp")
                )
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            if node and listening:
                found[node] = child.pid
        return found

    async def _workers_back(self, deadline: float) -> None:
        """Wait until ``--workers`` workers listen again (the parent restarts a dead one after 1 s)."""
        while len(self._workers()) < self.args.workers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self._workers()} of {self.args.workers} workers back")
            await asyncio.sleep(0.05)

    async def trial(self, number: int, sender_token: str, tag: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.args.deadline
        room = await self.api.create_room(sender_token, f"bench takeover {tag} {number}")
        listener, _, _ = await _until_welcomed(self.endpoint, room, None, None, deadline)
        sender, _, _ = await _until_welcomed(self.endpoint, room, None, sender_token, deadline)
        await sender.request("chat.send", {"text": "before the kill"})
        sender.abort()
        # Until the listener has seen it: the seq to resume from.
        if listener.last_seq < 1:
            await listener.wait_event(is_event("chat.message"), timeout=ATTEMPT_TIMEOUT_S)
        owner = await self._owner(room, deadline)
        # /admin/nodes's pid, checked against the worker that runs with that node id: a worker
        # restarted under the same node id may still be listed with its predecessor's pid.
        local = self._workers().get(owner["node_id"])
        if local is None:
            raise RuntimeError(f"no live worker of node {owner['node_id']} (REST says pid {owner['pid']})")
        rest_pid = owner["pid"]
        owner["pid"] = local
        since = listener.last_seq
        killed_ns = time.time_ns()
        os.kill(owner["pid"], signal.SIGKILL)
        welcome_task = asyncio.create_task(_until_welcomed(self.endpoint, room, since, None, deadline))
        acked_task = asyncio.create_task(_until_acked(self.endpoint, room, sender_token, deadline))
        result: dict[str, Any] = {
            "room": room,
            "owner_node": owner["node_id"],
            "owner_pid": owner["pid"],
            "epoch": owner.get("epoch"),
            "since": since,
            "rest_pid_stale": rest_pid != local,
        }
        try:
            resumed, attempts, failures = await welcome_task
            result["welcome_ms"] = round((resumed.welcomed_ns - killed_ns) / 1e6, 1)
            result["resumed"] = resumed.welcome.get("data", {}).get("resumed")
            result["attempts"] = attempts
            result["failures"] = sorted(set(failures))
            resumed.abort()
            acked_ns = await acked_task
            result["acked_ms"] = round((acked_ns - killed_ns) / 1e6, 1)
        except TimeoutError as exc:
            result["error"] = str(exc)
            acked_task.cancel()
        result["listener_closed"] = listener.closed_code  # None: it was on the surviving worker
        listener.abort()
        after = await self._owner(room, time.monotonic() + 10) if "error" not in result else {}
        result["new_owner_node"] = after.get("node_id")
        result["new_owner_pid"] = self._workers().get(after.get("node_id") or "")
        result["new_epoch"] = after.get("epoch")
        await self._workers_back(time.monotonic() + 60)
        return result

    async def run(self) -> dict[str, Any]:
        a = self.args
        env = dict(pair.split("=", 1) for pair in a.server_env)
        if a.lease_ttl is not None:
            env["SEDA_LEASE_TTL_S"] = f"{a.lease_ttl:g}"
        server = SpawnedServer(seda_command(a.seda), data_dir=a.data_dir, env=env, workers=a.workers)
        self.note(f"starting seda serve --workers {a.workers} in {server.data_dir}")
        await server.start()
        self.server = server
        trials: list[dict[str, Any]] = []
        try:
            self.api = RestApi(server.http)
            self.endpoint = LiveEndpoint.from_url(server.live)
            tag = secrets.token_hex(3)
            admin = f"badmin{tag}"
            await server.run_seda(
                "user",
                "create",
                "--email",
                f"{admin}@bench.example.com",
                "--username",
                admin,
                "--password",
                PASSWORD,
                "--role",
                "admin",
            )
            self.admin = await self.api.login(admin)
            sender = (await UserPool(self.api, None, lambda done, total: None).take(1))[0]
            for number in range(a.trials):
                result = await self.trial(number, sender.token, tag)
                trials.append(result)
                self.note(
                    f"trial {number + 1}/{a.trials}: killed {result['owner_pid']} "
                    f"(node {str(result['owner_node'])[:8]}); welcome {result.get('welcome_ms')} ms, "
                    f"send acked {result.get('acked_ms')} ms; now owned by pid {result['new_owner_pid']}"
                    + (f"; {result['error']}" if "error" in result else "")
                )
        finally:
            await self.api.aclose()
            code = await server.stop()
            if code != 0:
                self.note(f"seda serve exited with {code}; its log: {server.log_path}")
            server.cleanup()
        return self.report(trials, code)

    def report(self, trials: list[dict[str, Any]], exit_code: int | None) -> dict[str, Any]:
        a = self.args
        summary: dict[str, Any] = {}
        for key in ("welcome_ms", "acked_ms"):
            values = [int(t[key] * 1e6) for t in trials if key in t]
            found = Summary.of(values)
            if found is not None:
                summary[key] = found.to_json()
        return {
            "scenario": "takeover",
            "date": datetime.now().strftime("%Y-%m-%d %H:%M"),
            "params": {"trials": a.trials, "workers": a.workers, "lease_ttl_s": a.lease_ttl or "default (5)"},
            "trials": trials,
            "latency_ms": summary,
            "failed_trials": sum(1 for t in trials if "error" in t),
            "server_exit_code": exit_code,
        }


def format_takeover(report: dict[str, Any]) -> str:
    p = report["params"]
    lines = [
        f"seda bench: takeover  {report['date']}",
        f"{'load':<28} {p['trials']} trials: kill -9 the worker owning a fresh room "
        f"(--workers {p['workers']}, lease TTL {p['lease_ttl_s']} s)",
    ]
    for key, label in (("welcome_ms", "kill -> resumed welcome"), ("acked_ms", "kill -> chat.send acked")):
        s = report["latency_ms"].get(key)
        if s is not None:
            lines.append(
                f"{label:<28} p50 {s['p50']:,.0f} ms, p90 {s['p90']:,.0f}, max {s['max']:,.0f} "
                f"({s['count']} trials)"
            )
    trials = report["trials"]
    restarted = sum(1 for t in trials if t.get("new_owner_node") == t["owner_node"] and "error" not in t)
    resumed = sum(1 for t in trials if t.get("resumed"))
    lines.append(f"{'resumed: true':<28} {resumed} of {len(trials)} welcomes after the kill")
    dropped = sum(1 for t in trials if t.get("listener_closed") is not None)
    lines.append(
        f"{'new owner':<28} the restarted worker (same node id) {restarted}, another worker "
        f"{len(trials) - restarted - report['failed_trials']}; failed trials {report['failed_trials']}"
    )
    lines.append(
        f"{'listener dropped by the kill':<28} {dropped} of {len(trials)} (its socket was on the owner)"
    )
    slow = Counter(f for t in trials for f in t.get("failures", []))
    if slow:
        lines.append(f"{'failed attempts on the way':<28} " + ", ".join(f"{k}: {n}" for k, n in slow.items()))
    stale = sum(1 for t in trials if t.get("rest_pid_stale"))
    if stale:
        lines.append(
            f"{'stale pid in /admin/nodes':<28} {stale} of {len(trials)} trials: the owner's node was "
            "listed with the pid of a worker that had died (its restart kept the node id); the bench "
            "killed the live worker with that node id instead"
        )
    lines.append(f"{'server exit':<28} {report['server_exit_code']}")
    return "\n".join(lines)
