"""``python -m bench rest-peer``: seda's REST reads against the same SQL on Starlette + uvicorn + asyncpg.

Spawns ``seda serve`` (its embedded Postgres), seeds through the public REST API a user with a
profile and ``--rooms`` public rooms with one tag, then starts the peer
(``bench/peers/rest_peer.py``, its own process) on the same Postgres (the DSN from the
postmaster's pid file, as ``takeover`` runs ``seda user create``). It checks that both answer
the three reads with 200 and the same JSON, and then drives each in turn, endpoint by endpoint,
with the same closed loop: ``--connections`` keep-alive connections, each sending its next GET
as soon as the last is answered, for ``--duration`` seconds (after ``--warmup`` seconds unmeasured).

With two CPUs or more (and no ``--no-pin``), seda, the peer and Postgres share the first CPU and
the harness has the others. Only one of the two servers is loaded at a time, so each has that
CPU (with Postgres) to itself while it is measured. No token is sent: all three reads are public.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from bench.affinity import describe, pin, split_cpus
from bench.httpclient import HttpError, HttpPool
from bench.rest import RestApi, SetupFailed, UserPool
from bench.target import MachineSample, ServerFailed, ServerMonitor, SpawnedServer, seda_command

PEER = Path(__file__).resolve().parent / "peers" / "rest_peer.py"
PEER_START_TIMEOUT_S = 30.0
ENDPOINTS = ("profile", "room", "discover")
GENRES = ("jazz", "house", "ambient", "techno", "soul")


def add_rest_peer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per endpoint (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each (2)")
    parser.add_argument("--connections", type=int, default=50, help="closed-loop connections (50)")
    parser.add_argument("--rooms", type=int, default=20, help="public rooms discover returns (20)")
    parser.add_argument(
        "--endpoints", default=",".join(ENDPOINTS), help=f"which reads, in order ({','.join(ENDPOINTS)})"
    )
    parser.add_argument("--seda", help="command that runs seda (default: the one beside this Python)")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the server (repeatable)",
    )
    parser.add_argument("--data-dir", type=Path, help="the server's data dir (kept, with its logs)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and harness to CPUs")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _open_log(path: Path) -> BinaryIO:
    return open(path, "ab")


def _percentile(ordered: list[int], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6


def _shape(value: Any) -> Any:
    """The JSON's structure: keys and value types, not values (None is its own type)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


async def closed_loop(base: str, path: str, connections: int, seconds: float) -> dict[str, Any]:
    """``connections`` loops of GET-and-wait on their own keep-alive connection for ``seconds``."""
    pool = HttpPool(base, size=connections, headers={}, timeout=30)
    latencies: list[int] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    start = time.monotonic()
    end = start + seconds

    async def loop() -> None:
        while time.monotonic() < end:
            sent = time.perf_counter_ns()
            try:
                response = await pool.get(path)
            except HttpError as exc:
                errors[str(exc)[:60]] += 1
                continue
            latencies.append(time.perf_counter_ns() - sent)
            statuses[response.status] += 1

    try:
        await asyncio.gather(*(loop() for _ in range(connections)))
    finally:
        pool.close()
    elapsed = time.monotonic() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "ok": statuses.get(200, 0),
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": dict(errors),
        "seconds": round(elapsed, 3),
        "req_per_s": len(latencies) / elapsed,
        "p50_ms": _percentile(latencies, 0.50),
        "p99_ms": _percentile(latencies, 0.99),
    }


class RestPeerBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.peer: asyncio.subprocess.Process | None = None
        self.peer_url = ""

    def note(self, text: str) -> None:
        if not self.args.quiet:
            print(text, file=sys.stderr, flush=True)

    async def seed(self, api: RestApi) -> dict[str, str]:
        """A user with a filled-in profile, ``--rooms`` public rooms under one tag: the three paths."""
        user = (await UserPool(api, None, lambda done, total: None).take(1))[0]
        response = await api.client.patch(
            "/api/v1/profiles/me",
            json={
                "display_name": "Bench Listener",
                "bio": "Listens to everything, mostly at night. " * 3,
                "avatar_url": "https://example.com/a.png",
                "favorite_genres": ["jazz", "ambient", "soul"],
            },
            headers={"Authorization": f"Bearer {user.token}"},
        )
        if response.status_code != 200:
            raise SetupFailed(f"PATCH /profiles/me: HTTP {response.status_code} {response.text[:300]}")
        tag = f"p{secrets.token_hex(3)}"
        rooms = [
            await api.create_room(
                user.token,
                f"bench peer {tag} {n}",
                description=f"room {n} of the REST peer bench",
                genres=[GENRES[n % len(GENRES)]],
                tags=[tag, "bench"],
            )
            for n in range(max(self.args.rooms, 1))
        ]
        return {
            "profile": f"/api/v1/profiles/{user.username}",
            "room": f"/api/v1/rooms/{rooms[0]}",
            "discover": f"/api/v1/rooms/discover?q={tag}&limit=20",
        }

    async def start_peer(self, dsn: str, log: Path, probe: str) -> None:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEDA_")}
        env["DATABASE_URL"] = dsn
        with _open_log(log) as out:
            self.peer = await asyncio.create_subprocess_exec(
                sys.executable,
                str(PEER),
                "--port",
                str(port),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        self.peer_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + PEER_START_TIMEOUT_S
        async with httpx.AsyncClient(base_url=self.peer_url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.peer.returncode is not None:
                    raise ServerFailed(f"the REST peer exited ({self.peer.returncode}); its log: {log}")
                try:
                    if (await client.get(probe)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise ServerFailed(f"the REST peer did not answer in {PEER_START_TIMEOUT_S:.0f} s; its log: {log}")

    async def stop_peer(self) -> int | None:
        peer = self.peer
        if peer is None:
            return None
        if peer.returncode is None:
            # uvicorn shuts down on SIGTERM and then re-raises it: its exit status is -15.
            peer.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await peer.wait()
            except TimeoutError:
                peer.kill()
                await peer.wait()
        return peer.returncode

    async def compare_bodies(self, seda: str, paths: dict[str, str]) -> dict[str, str]:
        """Both 200, and the same JSON ("identical"), or at least the same structure ("same shape")."""
        verdicts: dict[str, str] = {}
        async with httpx.AsyncClient(timeout=10) as client:
            for name, path in paths.items():
                ours, theirs = await client.get(seda + path), await client.get(self.peer_url + path)
                if ours.status_code != 200 or theirs.status_code != 200:
                    raise SetupFailed(f"{name}: seda HTTP {ours.status_code}, peer HTTP {theirs.status_code}")
                a, b = ours.json(), theirs.json()
                if name == "discover" and len(a["items"]) != len(b["items"]):
                    raise SetupFailed(f"discover: seda {len(a['items'])} rooms, peer {len(b['items'])}")
                if a == b:
                    verdicts[name] = "identical"
                elif _shape(a) == _shape(b):
                    verdicts[name] = "same shape"
                else:
                    raise SetupFailed(f"{name}: different JSON\nseda: {a}\npeer: {b}")
        return verdicts

    async def measure(self, base: str, path: str, pid: int, db_pid: int | None) -> dict[str, Any]:
        a = self.args
        if a.warmup > 0:
            await closed_loop(base, path, a.connections, a.warmup)
        monitor = ServerMonitor(pid, db_pid)
        before, machine, harness = monitor.sample(), MachineSample.now(), time.process_time()
        result = await closed_loop(base, path, a.connections, a.duration)
        after, machine_after, harness_after = monitor.sample(), MachineSample.now(), time.process_time()
        # How busy each CPU was (everything on it, other people's load too) and the harness's own use.
        result["cpu_busy"] = [
            round((end - start) / result["seconds"], 3)
            for start, end in zip(machine.busy_s, machine_after.busy_s, strict=True)
        ]
        result["bench_cpu"] = round((harness_after - harness) / result["seconds"], 3)
        if before is not None and after is not None:
            result["server_cpu"] = round((after.cpu_s - before.cpu_s) / result["seconds"], 3)
            if before.db_cpu_s is not None and after.db_cpu_s is not None:
                result["pg_cpu"] = round((after.db_cpu_s - before.db_cpu_s) / result["seconds"], 3)
        if before is not None and after is not None and result["requests"]:
            result["cpu_ms_per_req"] = (after.cpu_s - before.cpu_s) * 1e3 / result["requests"]
            if before.db_cpu_s is not None and after.db_cpu_s is not None:
                result["pg_cpu_ms_per_req"] = (after.db_cpu_s - before.db_cpu_s) * 1e3 / result["requests"]
        return result

    async def run(self) -> dict[str, Any]:
        a = self.args
        endpoints = [e.strip() for e in a.endpoints.split(",") if e.strip()]
        unknown = set(endpoints) - set(ENDPOINTS)
        if unknown:
            raise SystemExit(f"--endpoints: unknown {sorted(unknown)}")
        env = dict(pair.split("=", 1) for pair in a.server_env)
        server = SpawnedServer(seda_command(a.seda), data_dir=a.data_dir, env=env)
        self.note(f"starting seda serve in {server.data_dir}")
        await server.start()
        target: dict[str, Any] = {"seda": server.http, "seda_pid": server.pid}
        results: dict[str, Any] = {}
        api = RestApi(server.http)
        try:
            paths = await self.seed(api)
            dsn = server.database_url()
            db_pid = server.db_pid
            if dsn is None:
                raise ServerFailed("the embedded Postgres's socket directory is unknown")
            await self.start_peer(dsn, server.data_dir / "bench-peer.log", paths["profile"])
            assert self.peer is not None
            target.update({"peer": self.peer_url, "peer_pid": self.peer.pid, "postgres_pid": db_pid})
            self.note(f"peer {self.peer_url} (pid {self.peer.pid}) on the same Postgres")
            verdicts = await self.compare_bodies(server.http, paths)
            split = None if a.no_pin else split_cpus()
            if split is not None:
                pin([os.getpid()], split.harness, descendants=False)
                pin([server.pid, self.peer.pid, *([db_pid] if db_pid else [])], split.server)
                target["pinned"] = {"servers": describe(split.server), "bench": describe(split.harness)}
            else:
                target["unpinned"] = describe(frozenset(os.sched_getaffinity(0)))
            for name in endpoints:
                row: dict[str, Any] = {"path": paths[name], "bodies": verdicts[name]}
                for label, base, pid in (
                    ("seda", server.http, server.pid),
                    ("peer", self.peer_url, self.peer.pid),
                ):
                    self.note(f"{name}: {label} for {a.warmup:g} + {a.duration:g} s")
                    row[label] = await self.measure(base, paths[name], pid, db_pid)
                peer_rate = row["peer"]["req_per_s"]
                row["ratio"] = row["seda"]["req_per_s"] / peer_rate if peer_rate else None
                # CPU per request, the peer's over seda's: the ratio of the two rates if each had a
                # core to itself (less sensitive than req/s to other load on a shared machine).
                seda_cpu, peer_cpu = row["seda"].get("cpu_ms_per_req"), row["peer"].get("cpu_ms_per_req")
                row["cpu_ratio"] = peer_cpu / seda_cpu if seda_cpu and peer_cpu else None
                results[name] = row
        finally:
            await api.aclose()
            target["peer_exit_code"] = await self.stop_peer()
            code = await server.stop()
            target["seda_exit_code"] = code
            if code != 0:
                self.note(f"seda serve exited with {code}; its log: {server.log_path}")
            server.cleanup()
        return {
            "scenario": "rest-peer",
            "date": datetime.now().strftime("%Y-%m-%d %H:%M"),
            "params": {
                "duration": a.duration,
                "warmup": a.warmup,
                "connections": a.connections,
                "rooms": a.rooms,
            },
            "target": target,
            "endpoints": results,
        }


def _ms(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else "-"


def format_rest_peer(report: dict[str, Any]) -> str:
    p, t = report["params"], report["target"]
    where = (
        f"seda, peer and Postgres on CPU {t['pinned']['servers']}, bench on CPU {t['pinned']['bench']}"
        if "pinned" in t
        else f"unpinned (CPUs {t.get('unpinned')})"
    )
    lines = [
        f"seda bench: rest-peer  {report['date']}",
        f"closed loop, {p['connections']} connections, {p['warmup']:g} s warm-up + {p['duration']:g} s "
        f"per endpoint and server; {where}",
        "peer: the same SQL on Starlette + uvicorn + asyncpg (bench/peers/rest_peer.py)",
        "",
        f"{'endpoint':<9} {'seda req/s':>10} {'peer req/s':>10} {'seda/peer':>9}  "
        f"{'seda p50/p99 ms':>15}  {'peer p50/p99 ms':>15}  {'CPU ms/req seda/peer':>20}  "
        f"{'PG ms/req seda/peer':>19}  {'CPU ratio':>9}  bodies",
    ]
    for name, row in report["endpoints"].items():
        s, q = row["seda"], row["peer"]
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
        cpu_ratio = f"{row['cpu_ratio']:.2f}x" if row.get("cpu_ratio") is not None else "-"
        lines.append(
            f"{name:<9} {s['req_per_s']:>10,.0f} {q['req_per_s']:>10,.0f} {ratio:>9}  "
            f"{_ms(s['p50_ms']) + ' / ' + _ms(s['p99_ms']):>15}  "
            f"{_ms(q['p50_ms']) + ' / ' + _ms(q['p99_ms']):>15}  "
            f"{_ms(s.get('cpu_ms_per_req')) + ' / ' + _ms(q.get('cpu_ms_per_req')):>20}  "
            f"{_ms(s.get('pg_cpu_ms_per_req')) + ' / ' + _ms(q.get('pg_cpu_ms_per_req')):>19}  "
            f"{cpu_ratio:>9}  {row['bodies']}"
        )
        for label, side in (("seda", s), ("peer", q)):
            if "cpu_busy" in side:
                busy = ", ".join(f"CPU {n} {b:.0%}" for n, b in enumerate(side["cpu_busy"]))
                lines.append(
                    f"  {label} window: busy {busy}; of which {label} {side.get('server_cpu', 0):.0%}, "
                    f"Postgres {side.get('pg_cpu', 0):.0%}, bench {side['bench_cpu']:.0%}"
                )
            bad = {k: v for k, v in side["statuses"].items() if k != "200"}
            if bad or side["errors"]:
                lines.append(f"  {label}: not 200: {bad or '-'}; errors: {side['errors'] or '-'}")
    lines.append(
        "CPU ms/req: the server process alone (PG: its Postgres backends); CPU ratio: peer CPU/req over "
        "seda's, i.e. seda/peer req/s if each had a core to itself"
    )
    peer_code = t.get("peer_exit_code")
    peer_exit = "SIGTERM (as asked)" if peer_code == -signal.SIGTERM else str(peer_code)
    lines.append(f"exit codes: seda {t.get('seda_exit_code')}, peer {peer_exit}")
    return "\n".join(lines)


def main_rest_peer(args: argparse.Namespace) -> int:
    if args.duration <= 0 or args.connections < 1:
        raise SystemExit("rest-peer wants --duration > 0 and --connections >= 1")
    try:
        report = asyncio.run(RestPeerBench(args).run())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (SetupFailed, ServerFailed, httpx.HTTPError) as exc:
        print(f"bench: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(format_rest_peer(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    failed = any(
        side["ok"] != side["requests"] or side["errors"]
        for row in report["endpoints"].values()
        for side in (row["seda"], row["peer"])
    )
    return 1 if failed else 0
