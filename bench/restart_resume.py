"""``restart-resume``: kill -9 a single ``seda serve``, start it again on the same data dir, and
time how long ``--clients`` guests reconnecting with ``since`` take to be resumed.

One run: spawn ``seda serve`` (one process; its embedded Postgres dies with it by PDEATHSIG),
create a room, connect the guests, send ``--messages`` chat messages (each acked) and wait until
every guest has seen them, so that each has a ``since``. Then ``kill -9`` the server, and at
once every guest starts reconnecting with ``since=<its last seq>`` (refused connects are retried
with a short jittered backoff, as a real client would). The server is started again on the same
data dir and, unless ``--new-ports``, the same ports; ``/readyz`` is polled until 200. After the
restart a sender posts ``--after`` more messages, which reach the guests live or by replay.

Each guest checks its ``seq`` values across the drop like ``resume`` does: a gap is missed, a
repeat a duplicate, an end short of the room's last ``seq`` undelivered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.chatwire import decode, fast_chat
from bench.control import ControlSocket, OpFailed
from bench.rest import RestApi, SetupFailed, UserPool
from bench.stats import Summary
from bench.target import ServerFailed, ServerMonitor, SpawnedServer, seda_command
from bench.worker import raise_fd_limit
from bench.wsclient import ConnectFailed, LiveEndpoint, WsClient, connect

NAME = "restart-resume"
HELP = "kill -9 a single seda serve and restart it; time until N clients are resumed with since"
ATTEMPT_TIMEOUT_S = 10.0


class Client:
    """One guest across its sockets: the seq check and how its resume went."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.last_seq = -1
        self.missed = 0
        self.duplicates = 0
        self.socket: ResumeSocket | None = None
        self.attempts = 0
        self.failures: Counter[str] = Counter()
        self.resumed: bool | None = None
        self.replayed = 0
        self.welcome_ns = 0  # time.monotonic_ns() of the welcome after the kill
        self.error = ""

    def check(self, seq: int) -> None:
        last = self.last_seq
        if seq <= last:
            self.duplicates += 1
            return
        if last >= 0 and seq != last + 1:
            self.missed += seq - last - 1
        self.last_seq = seq


class ResumeSocket(WsClient):
    def __init__(self, client: Client, after_kill: bool) -> None:
        super().__init__()
        self.client = client
        self.after_kill = after_kill

    def on_welcome(self, welcome: dict[str, Any]) -> None:
        c = self.client
        data = welcome.get("data") or {}
        seq = int(data.get("seq", 0))
        if not self.after_kill:
            c.last_seq = max(c.last_seq, seq)
            return
        c.welcome_ns = time.monotonic_ns()
        c.resumed = bool(data.get("resumed"))
        c.replayed = int(data.get("replayed", 0))
        if not c.resumed and seq > c.last_seq:
            # The welcome is authoritative, but what this client had not seen is lost to it.
            c.missed += seq - c.last_seq
            c.last_seq = seq

    def on_message(self, payload: bytes) -> None:
        fast = fast_chat(payload)
        if fast is not None:
            self.client.check(fast[0])
            return
        message = decode(payload)
        seq = message.get("seq")
        if message.get("type") == "event" and isinstance(seq, int):
            self.client.check(seq)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=1000, help="guests that resume (1,000)")
    parser.add_argument("--messages", type=int, default=20, help="chat messages before the kill (20)")
    parser.add_argument("--after", type=int, default=10, help="chat messages after the restart (10)")
    parser.add_argument("--concurrency", type=int, default=200, help="first connects in flight (200)")
    parser.add_argument(
        "--backoff", type=float, default=0.05, help="first retry pause after a refused connect, s (0.05)"
    )
    parser.add_argument(
        "--backoff-max", type=float, default=0.25, help="retry pause cap (doubling, jittered), s (0.25)"
    )
    parser.add_argument(
        "--chat-during",
        action="store_true",
        help="a sender reconnects from the kill on, like the guests, and sends the --after messages "
        "during the reconnects (late guests get them by replay; their fan-out then counts in the CPU "
        "figure); default: once all are resumed",
    )
    parser.add_argument(
        "--new-ports", action="store_true", help="restart on fresh ports (default: the same ports)"
    )
    parser.add_argument(
        "--deadline", type=float, default=120.0, help="give up after this from the kill (120 s)"
    )
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
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def _port(url: str) -> int:
    port = LiveEndpoint.from_url(url.replace("http://", "ws://", 1)).port
    return port


async def _ready(http: str, deadline: float) -> int:
    """Poll ``/readyz`` until 200; ``time.monotonic_ns()`` of that answer."""
    async with httpx.AsyncClient(base_url=http, timeout=2.0) as client:
        while True:
            try:
                response = await client.get("/readyz")
                if response.status_code == 200:
                    return time.monotonic_ns()
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("/readyz never answered 200")
            await asyncio.sleep(0.01)


class RestartResume:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.clients = [Client(i) for i in range(args.clients)]
        self.endpoint: LiveEndpoint
        self.live_after: asyncio.Future[LiveEndpoint] | None = None

    def note(self, text: str) -> None:
        if not self.args.quiet:
            print(text, flush=True)

    async def _sender(
        self, endpoint: LiveEndpoint, room: str, token: str, count: int, deadline: float
    ) -> int:
        """Connect (retrying) and send ``count`` acked messages; the last acked seq."""
        last = -1
        sent = 0
        while sent < count:
            if time.monotonic() > deadline:
                raise TimeoutError("sender: not all messages acked")
            try:
                socket = await connect(ControlSocket(events=False), endpoint, room, token=token, timeout=5)
            except ConnectFailed:
                await asyncio.sleep(0.05)
                continue
            try:
                while sent < count:
                    reply = await socket.request("chat.send", {"text": f"restart-resume {sent}"}, timeout=10)
                    seq = reply.get("seq")
                    if isinstance(seq, int):
                        last = max(last, seq)
                    sent += 1
            except (OpFailed, ConnectionError, TimeoutError):
                await asyncio.sleep(0.05)
            finally:
                socket.abort()
        return last

    async def _chat_after_kill(self, room: str, token: str, deadline: float) -> int:
        """``--chat-during``: a sender reconnecting from the kill on, like the guests."""
        endpoint = self.endpoint if self.live_after is None else await self.live_after
        return await self._sender(endpoint, room, token, self.args.after, deadline)

    async def _caught_up(self, seq: int, timeout: float) -> int:
        """Wait until every client has seen ``seq``; how many have not, after ``timeout``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            behind = sum(1 for c in self.clients if c.last_seq < seq)
            if behind == 0:
                return 0
            await asyncio.sleep(0.02)
        return sum(1 for c in self.clients if c.last_seq < seq)

    async def _reconnect(self, client: Client, room: str, deadline: float) -> None:
        pause = self.args.backoff
        while True:
            if time.monotonic() > deadline:
                client.error = f"no welcome after {client.attempts} attempts"
                return
            endpoint = self.endpoint
            if self.live_after is not None:
                endpoint = await self.live_after  # new ports: known once the new server listens
            client.attempts += 1
            socket = ResumeSocket(client, after_kill=True)
            since = client.last_seq if client.last_seq >= 0 else None
            try:
                await connect(socket, endpoint, room, since=since, timeout=ATTEMPT_TIMEOUT_S)
            except ConnectFailed as failed:
                client.failures[failed.code] += 1
                await asyncio.sleep(pause * (0.5 + random.random() / 2))
                pause = min(pause * 2, self.args.backoff_max)
                continue
            client.socket = socket
            return

    async def run(self) -> dict[str, Any]:
        a = self.args
        raise_fd_limit()
        env = dict(pair.split("=", 1) for pair in a.server_env)
        data_dir = a.data_dir or Path(tempfile.mkdtemp(prefix="seda-bench-restart-"))
        first = SpawnedServer(seda_command(a.seda), data_dir=data_dir, env=env)
        self.note(f"starting seda serve in {data_dir}")
        await first.start()
        second: SpawnedServer | None = None
        api = RestApi(first.http)
        result: dict[str, Any] = {}
        try:
            self.endpoint = LiveEndpoint.from_url(first.live)
            sender = (await UserPool(api, None, lambda done, total: None).take(1))[0]
            room = await api.create_room(sender.token, f"bench restart-resume {os.getpid()}")
            limit = asyncio.Semaphore(a.concurrency)

            async def first_connect(client: Client) -> None:
                async with limit:
                    client.socket = await connect(
                        ResumeSocket(client, after_kill=False), self.endpoint, room, timeout=60
                    )

            started = time.monotonic()
            await asyncio.gather(*(first_connect(c) for c in self.clients))
            self.note(f"{a.clients} guests connected in {time.monotonic() - started:.1f} s")
            deadline = time.monotonic() + 60
            before_seq = await self._sender(self.endpoint, room, sender.token, a.messages, deadline)
            behind = await self._caught_up(before_seq, 30)
            self.note(f"{a.messages} messages sent (last seq {before_seq}); {behind} guests behind")
            result["before_kill_seq"] = before_seq
            result["behind_at_kill"] = behind

            # ---- the kill -------------------------------------------------------------------
            old_pid, old_db = first.pid, first.db_pid
            killed_ns = time.monotonic_ns()
            os.kill(old_pid, signal.SIGKILL)
            deadline = time.monotonic() + a.deadline
            if a.new_ports:
                self.live_after = asyncio.get_running_loop().create_future()
            tasks = [asyncio.create_task(self._reconnect(c, room, deadline)) for c in self.clients]
            after_task = None
            if a.chat_during:
                after_task = asyncio.create_task(self._chat_after_kill(room, sender.token, deadline))
            assert first.process is not None
            await first.process.wait()
            first.exit_code = first.process.returncode
            # The old postmaster must be gone (PDEATHSIG) before a new one may use the data dir.
            while old_db is not None and psutil.pid_exists(old_db):
                try:
                    if psutil.Process(old_db).status() == psutil.STATUS_ZOMBIE:
                        break
                except psutil.NoSuchProcess:
                    break
                if time.monotonic() > deadline:
                    raise ServerFailed(f"the old postmaster {old_db} outlived the server")
                await asyncio.sleep(0.01)
            db_gone_ns = time.monotonic_ns()
            ports = {}
            if not a.new_ports:
                ports = {"SEDA_HTTP_PORT": str(_port(first.http)), "SEDA_LIVE_PORT": str(_port(first.live))}
            second = SpawnedServer(seda_command(a.seda), data_dir=data_dir, env={**env, **ports})
            restart_ns = time.monotonic_ns()
            if a.new_ports:
                await second.start()
                ready_task = asyncio.create_task(_ready(second.http, deadline))
                assert self.live_after is not None
                self.live_after.set_result(LiveEndpoint.from_url(second.live))
            else:
                start_task = asyncio.create_task(second.start())
                ready_task = asyncio.create_task(_ready(first.http, deadline))
                await start_task
            monitor = ServerMonitor(second.pid, second.db_pid)
            ready_ns = await ready_task
            at_ready = monitor.sample()
            self.note(f"/readyz 200 {(ready_ns - killed_ns) / 1e6:,.0f} ms after the kill")

            live = LiveEndpoint.from_url(second.live)
            await asyncio.gather(*tasks)
            all_ns = max((c.welcome_ns for c in self.clients if c.welcome_ns), default=0)
            at_all = monitor.sample()
            self.note(
                f"welcomed: {sum(1 for c in self.clients if c.welcome_ns)} of {a.clients}, "
                f"last {(all_ns - ready_ns) / 1e6:,.0f} ms after /readyz"
            )

            # ---- after: more chat, reaching everyone live or by replay -----------------------
            await api.aclose()
            api = RestApi(second.http)
            if after_task is not None:
                final_seq = await after_task
            else:
                final_seq = await self._sender(live, room, sender.token, a.after, time.monotonic() + 60)
            if final_seq < 0:
                final_seq = before_seq
            await self._caught_up(final_seq, 30)
            result.update(
                self._figures(
                    killed_ns=killed_ns,
                    db_gone_ns=db_gone_ns,
                    restart_ns=restart_ns,
                    ready_ns=ready_ns,
                    all_ns=all_ns,
                    final_seq=final_seq,
                )
            )
            if at_ready is not None and at_all is not None:
                storm = at_all.cpu_s - at_ready.cpu_s
                result["server_cpu"] = {
                    "pid": second.pid,
                    "start_to_ready_s": round(at_ready.cpu_s, 3),
                    "ready_to_all_resumed_s": round(storm, 3),
                    "per_reconnect_ms": round(storm / max(a.clients, 1) * 1e3, 3),
                    "start_to_all_resumed_per_reconnect_ms": round(at_all.cpu_s / max(a.clients, 1) * 1e3, 3),
                    "postgres_ready_to_all_s": (
                        round(at_all.db_cpu_s - at_ready.db_cpu_s, 3)
                        if at_all.db_cpu_s is not None and at_ready.db_cpu_s is not None
                        else None
                    ),
                }
        finally:
            for c in self.clients:
                if c.socket is not None:
                    c.socket.abort()
            await api.aclose()
            if first.alive():
                await first.stop()
            code = await second.stop() if second is not None else None
            if code not in (0, None):
                self.note(f"seda serve exited with {code}; its log: {data_dir / 'bench-server.log'}")
            if a.data_dir is None and code == 0:
                shutil.rmtree(data_dir, ignore_errors=True)
        return {
            "scenario": NAME,
            "date": datetime.now().strftime("%Y-%m-%d %H:%M"),
            "params": {
                "clients": a.clients,
                "messages_before": a.messages,
                "messages_after": a.after,
                "same_ports": not a.new_ports,
                "chat_during": a.chat_during,
                "backoff_s": [a.backoff, a.backoff_max],
            },
            **result,
            "server_exit_code": code,
        }

    def _figures(
        self, *, killed_ns: int, db_gone_ns: int, restart_ns: int, ready_ns: int, all_ns: int, final_seq: int
    ) -> dict[str, Any]:
        clients = self.clients
        welcomed = [c for c in clients if c.welcome_ns]
        from_ready = [c.welcome_ns - ready_ns for c in welcomed]
        from_kill = [c.welcome_ns - killed_ns for c in welcomed]
        failures: Counter[str] = Counter()
        for c in clients:
            failures.update(c.failures)
        resumed = sum(1 for c in clients if c.resumed)
        return {
            "kill_to_old_db_gone_ms": round((db_gone_ns - killed_ns) / 1e6, 1),
            "kill_to_restart_ms": round((restart_ns - killed_ns) / 1e6, 1),
            "kill_to_ready_ms": round((ready_ns - killed_ns) / 1e6, 1),
            "ready_to_welcome_ms": (Summary.of(from_ready) or Summary(0, 0, 0, 0, 0)).to_json(),
            "kill_to_welcome_ms": (Summary.of(from_kill) or Summary(0, 0, 0, 0, 0)).to_json(),
            "ready_to_all_resumed_ms": (
                round((all_ns - ready_ns) / 1e6, 1) if resumed == len(clients) and all_ns else None
            ),
            "welcomed_before_ready": sum(1 for v in from_ready if v < 0),
            "welcomed": len(welcomed),
            "resumed_true": resumed,
            "not_resumed": sum(1 for c in welcomed if not c.resumed),
            "replayed": sum(c.replayed for c in clients),
            "attempts": Summary.of([c.attempts * 1_000_000 for c in clients]).to_json()  # type: ignore[union-attr]
            if clients
            else {},
            "failed_attempts": dict(failures.most_common()),
            "failed_clients": sum(1 for c in clients if c.error),
            "errors": sorted({c.error for c in clients if c.error})[:5],
            "final_seq": final_seq,
            "missed_seq": sum(c.missed for c in clients),
            "duplicate_seq": sum(c.duplicates for c in clients),
            "undelivered": sum(final_seq - c.last_seq for c in clients if c.last_seq < final_seq),
        }


def format_report(r: dict[str, Any]) -> str:
    p = r["params"]
    lines = [
        f"seda bench: {NAME}  {r['date']}",
        f"{'load':<30} {p['clients']:,} guests resume with since after kill -9 of seda serve "
        f"({'same' if p['same_ports'] else 'new'} ports; {p['messages_before']} messages before, "
        f"{p['messages_after']} after{', during the reconnects' if p['chat_during'] else ''})",
    ]
    if "kill_to_ready_ms" not in r:
        lines.append(f"{'result':<30} incomplete (see the errors above)")
        return "\n".join(lines)
    lines += [
        f"{'kill -> old Postgres gone':<30} {r['kill_to_old_db_gone_ms']:,.0f} ms",
        f"{'kill -> /readyz 200':<30} {r['kill_to_ready_ms']:,.0f} ms",
    ]
    s = r["ready_to_welcome_ms"]
    lines.append(
        f"{'/readyz -> welcome (per client)':<30} p50 {s['p50']:,.0f} ms, p90 {s['p90']:,.0f}, "
        f"max {s['max']:,.0f} ({s['count']:,} clients; {r['welcomed_before_ready']} before /readyz)"
    )
    s = r["kill_to_welcome_ms"]
    lines.append(
        f"{'kill -> welcome (per client)':<30} p50 {s['p50']:,.0f} ms, p90 {s['p90']:,.0f}, "
        f"max {s['max']:,.0f}"
    )
    all_ms = r["ready_to_all_resumed_ms"]
    lines.append(
        f"{'/readyz -> all resumed':<30} "
        + (f"{all_ms:,.0f} ms" if all_ms is not None else "NOT ALL RESUMED")
    )
    lines.append(
        f"{'resumed: true':<30} {r['resumed_true']:,} of {p['clients']:,} "
        f"(not resumed {r['not_resumed']}, no welcome {r['failed_clients']}); "
        f"{r['replayed']:,} events replayed"
    )
    if r["attempts"]:
        lines.append(
            f"{'connect attempts per client':<30} p50 {r['attempts']['p50']:g}, "
            f"max {r['attempts']['max']:g}; "
            "refused on the way: "
            + (", ".join(f"{k} {n:,}" for k, n in r["failed_attempts"].items()) or "none")
        )
    lines.append(
        f"{'seq after resume':<30} missed {r['missed_seq']}, duplicate {r['duplicate_seq']}, "
        f"undelivered {r['undelivered']} (room's last seq {r['final_seq']})"
    )
    cpu = r.get("server_cpu")
    if cpu:
        pg = cpu["postgres_ready_to_all_s"]
        lines.append(
            f"{'server CPU':<30} {cpu['ready_to_all_resumed_s']:.2f} s from /readyz to all resumed = "
            f"{cpu['per_reconnect_ms']:.2f} ms per reconnect; "
            f"start-up to /readyz {cpu['start_to_ready_s']:.2f} s"
            + (f"; Postgres {pg:.2f} s" if pg is not None else "")
        )
    if r["errors"]:
        lines.append(f"{'errors':<30} " + "; ".join(r["errors"]))
    lines.append(f"{'server exit':<30} {r['server_exit_code']}")
    return "\n".join(lines)


def failed(report: dict[str, Any]) -> bool:
    clients = report["params"]["clients"]
    return (
        report.get("resumed_true") != clients
        or bool(report.get("missed_seq"))
        or bool(report.get("duplicate_seq"))
        or bool(report.get("undelivered"))
    )


def main(args: argparse.Namespace) -> int:
    if args.clients < 1:
        raise SystemExit("restart-resume wants --clients >= 1")
    try:
        report = asyncio.run(RestartResume(args).run())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (SetupFailed, ServerFailed, ConnectFailed, OpFailed, httpx.HTTPError, TimeoutError) as exc:
        print(f"bench: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(format_report(report))
    if args.json is not None:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if failed(report) else 0


def register(scenarios: Any) -> None:
    sub = scenarios.add_parser(NAME, help=HELP, description=HELP)
    add_arguments(sub)
