"""``python -m bench SCENARIO [options]``: set up through REST, run the scenario, print the table."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench import fanout_blocks, fanout_peer, overload, restart_resume, takeover, workers_compare
from bench.affinity import describe, pin, split_cpus
from bench.control import OpFailed
from bench.coordinator import Coordinator, WorkerFailed
from bench.progress import ProgressBar
from bench.report import RunInfo, build_report, format_table
from bench.rest import RestApi, SetupFailed, UserPool
from bench.rest_peer import add_rest_peer_arguments, main_rest_peer
from bench.scenarios import SCENARIOS
from bench.scenarios.base import SetupEnv
from bench.scenarios.chat import RoomsScenario
from bench.target import RAISED_LIMITS, ServerFailed, ServerMonitor, SpawnedServer, seda_command
from bench.wsclient import ConnectFailed, LiveEndpoint


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    target = common.add_argument_group("server under test (--spawn, or --http and --live)")
    target.add_argument(
        "--spawn",
        action="store_true",
        help="start a fresh `seda serve` (temporary data dir, raised rate limits, pinned to one CPU) "
        "and stop it with SIGTERM at the end",
    )
    target.add_argument("--http", help="REST base URL of a running server, e.g. http://127.0.0.1:8000")
    target.add_argument("--live", help="live gateway URL of that server, e.g. ws://127.0.0.1:8765")
    target.add_argument("--server-pid", type=int, help="its PID, to report its CPU and RSS")
    target.add_argument("--db-pid", type=int, help="its Postgres postmaster's PID, to report Postgres CPU")
    target.add_argument("--seda", help="command that runs seda (default: the one beside this Python)")
    target.add_argument(
        "--data-dir",
        type=Path,
        help="--spawn: keep the server's data here (reused by later runs, users too), not in a temp dir",
    )
    target.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="--spawn: extra environment for the server (repeatable), e.g. SEDA_COALESCE_MS=0",
    )
    target.add_argument(
        "--no-pin", action="store_true", help="--spawn: do not pin server and harness to CPUs"
    )
    target.add_argument(
        "--workers",
        type=int,
        default=1,
        help="--spawn: worker processes of the server (SEDA_WORKERS; 1). With more than one, nothing "
        "is pinned: the workers, Postgres, NATS and the harness share every CPU",
    )
    run = common.add_argument_group("run")
    run.add_argument("--procs", type=int, default=1, help="worker processes driving the sockets (1)")
    run.add_argument("--duration", type=float, default=10.0, help="measured window in seconds (10)")
    run.add_argument(
        "--drain",
        type=float,
        default=20.0,
        help="after the senders stop, wait at most this for their replies, then as long for deliveries (20)",
    )
    run.add_argument("--connect-timeout", type=float, default=30.0, help="per socket, to its welcome (30)")
    run.add_argument(
        "--user-cache",
        type=Path,
        help="JSON file of registered users to reuse against the same database (default with "
        "--spawn --data-dir: DATA_DIR/bench-users.json)",
    )
    run.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON here")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Load harness for the seda room server; speaks only PROTOCOL.md and the REST API.",
    )
    scenarios = parser.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    common = _common_options()
    for name, scenario in SCENARIOS.items():
        sub = scenarios.add_parser(name, parents=[common], help=scenario.help, description=scenario.help)
        scenario.add_arguments(sub)
    compare_help = "the rooms chat load (100 rooms x 5 listeners) against 1 and then 2 server workers"
    sub = scenarios.add_parser(
        "workers-compare", parents=[common], help=compare_help, description=compare_help
    )
    RoomsScenario.add_arguments(sub)
    workers_compare.add_arguments(sub)
    overload_help = (
        "the rooms chat load (100 rooms x 5 listeners) at rising offered rates, a fresh server each: "
        "does the acked rate hold and ack p99 stay under 1 s (issue 17)"
    )
    sub = scenarios.add_parser("overload", parents=[common], help=overload_help, description=overload_help)
    RoomsScenario.add_arguments(sub)
    overload.add_arguments(sub)
    takeover_help = "kill -9 the worker owning a room, time until a client resumes there (--workers 2)"
    sub = scenarios.add_parser("takeover", help=takeover_help, description=takeover_help)
    takeover.add_arguments(sub)
    restart_resume.register(scenarios)
    rest_peer_help = "seda's REST reads beside the same SQL on Starlette + uvicorn + asyncpg (ratio)"
    sub = scenarios.add_parser("rest-peer", help=rest_peer_help, description=rest_peer_help)
    add_rest_peer_arguments(sub)
    fanout_peer.register(scenarios, common)
    fanout_blocks.register(scenarios, common)
    return parser


def _server_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--server-env wants NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def _commit() -> str | None:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None


async def run_bench(args: argparse.Namespace, progress: ProgressBar) -> dict[str, Any]:
    """One run, start to end; the report as a JSON-ready dict."""
    scenario = SCENARIOS[args.scenario](args)
    server: SpawnedServer | None = None
    api: RestApi | None = None
    target: dict[str, Any] = {}
    try:
        if args.spawn:
            server = SpawnedServer(
                seda_command(args.seda),
                data_dir=args.data_dir,
                env=_server_env(args.server_env),
                workers=args.workers,
            )
            progress.note(f"starting seda serve in {server.data_dir}")
            await server.start()
            http, live, pid, db_pid = server.http, server.live, server.pid, server.db_pid
            target["raised_limits"] = RAISED_LIMITS | _server_env(args.server_env)
            target["workers"] = args.workers
            if server.worker_pids:
                target["worker_pids"] = server.worker_pids
        else:
            http, live, pid, db_pid = args.http, args.live, args.server_pid, args.db_pid
        target.update({"http": http, "live": live, "spawned": server is not None, "server_pid": pid})

        api = RestApi(http)
        cache = args.user_cache
        if cache is None and server is not None and args.data_dir is not None:
            cache = args.data_dir / "bench-users.json"
        users = UserPool(
            api, cache, lambda done, total: progress.show("users", done / total, {"registered": done})
        )
        env = SetupEnv(
            api=api,
            users=users,
            live=LiveEndpoint.from_url(live),
            procs=args.procs,
            duration_s=args.duration,
            drain_s=args.drain,
            connect_timeout=args.connect_timeout,
            progress=progress,
        )
        plan = await scenario.setup(env)
        progress.done()

        # More workers than one: left unpinned (with 2 cores, one core each for N workers and the
        # harness is not possible; pinning them all to one core would measure nothing).
        pinning = server is not None and not args.no_pin and args.workers == 1
        split = split_cpus() if pinning else None
        if server is not None and split is None:
            target["unpinned"] = f"CPUs {describe(frozenset(os.sched_getaffinity(0)))}"
        if server is not None and split is not None:
            # Pinned after set-up, so registering users (Argon2) may use every core.
            pin([os.getpid()], split.harness, descendants=False)
            pin([server.pid, *([db_pid] if db_pid else [])], split.server)
            target["pinned"] = {"server": describe(split.server), "bench": describe(split.harness)}
        monitor = ServerMonitor(pid, db_pid) if pid else None
        outcome = await Coordinator(
            plan,
            live=env.live,
            http=http,
            connect_timeout=args.connect_timeout,
            progress=progress,
            monitor=monitor,
        ).run()
        if server is not None and not server.alive():
            target["died"] = (
                f"seda serve exited ({server.process and server.process.returncode}) during the run"
            )
        info = RunInfo(
            scenario=scenario.name,
            description=scenario.describe(),
            params={**scenario.params(), "procs": args.procs, "duration": args.duration},
            target=target,
            procs=args.procs,
            date=datetime.now().strftime("%Y-%m-%d %H:%M"),
            commit=_commit(),
        )
        report = build_report(info, outcome, scenario.results(outcome))
    finally:
        if api is not None:
            await api.aclose()
        if server is not None:
            code = await server.stop()
            target["exit_code"] = code
            if code != 0:
                progress.note(f"seda serve exited with {code}; its log: {server.log_path}")
            server.cleanup()
    target["summary"] = _target_summary(target)
    return report


def _target_summary(target: dict[str, Any]) -> str:
    if target.get("spawned"):
        workers = target.get("workers", 1)
        text = f"spawned seda serve pid {target['server_pid']}"
        if workers > 1:
            pids = ", ".join(str(p) for p in target.get("worker_pids", []))
            text += f" with {workers} workers" + (f" (pids {pids})" if pids else "")
        text += " (rate limits raised)"
        if "pinned" in target:
            text += f", server on CPU {target['pinned']['server']}, bench on CPU {target['pinned']['bench']}"
        elif "unpinned" in target:
            text += f", unpinned: server, Postgres, NATS and bench share {target['unpinned']}"
        if target.get("exit_code") not in (0, None):
            text += f"; EXITED WITH {target['exit_code']}"
    else:
        pid = target.get("server_pid")
        text = f"{target['http']} + {target['live']}" + (f", pid {pid}" if pid else ", pid unknown")
    if "died" in target:
        text += f"; {target['died'].upper()}"
    return text


async def run_compare(args: argparse.Namespace, progress: ProgressBar) -> dict[str, Any]:
    cpus = frozenset(os.sched_getaffinity(0))
    reports = []
    for workers in workers_compare.counts(args.counts):
        _unpin_self(cpus)
        progress.note(f"workers-compare: run with --workers {workers}")
        reports.append(await run_bench(workers_compare.run_args(args, workers), progress))
    return {"runs": reports, "comparison": workers_compare.compare(reports)}


def _unpin_self(cpus: frozenset[int]) -> None:
    """Give this process back the CPUs it started with: a pinned run_bench leaves it on the
    harness's CPUs, and the next spawned server would inherit them and find one CPU to split."""
    pin([os.getpid()], cpus, descendants=False)


async def run_overload(args: argparse.Namespace, progress: ProgressBar) -> dict[str, Any]:
    cpus = frozenset(os.sched_getaffinity(0))
    reports = []
    for rate in overload.rates(args):
        _unpin_self(cpus)
        progress.note(f"overload: run at {rate:g} msg/s a room ({rate * args.rooms:,.0f} msg/s offered)")
        reports.append(await run_bench(overload.run_args(args, rate), progress))
    _unpin_self(cpus)
    return {"reports": reports, **overload.build(reports)}


def _main_takeover(args: argparse.Namespace) -> int:
    if args.trials < 1 or args.workers < 2:
        raise SystemExit("takeover wants --trials >= 1 and --workers >= 2")
    try:
        report = asyncio.run(takeover.Takeover(args, ProgressBar(enabled=False)).run())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (SetupFailed, ServerFailed, ConnectFailed, OpFailed, httpx.HTTPError, TimeoutError) as exc:
        print(f"bench: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(takeover.format_takeover(report))
    if args.json is not None:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["failed_trials"] == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.scenario == "takeover":
        return _main_takeover(args)
    if args.scenario == restart_resume.NAME:
        return restart_resume.main(args)
    if args.scenario == "rest-peer":
        return main_rest_peer(args)
    if args.scenario in ("workers-compare", "overload", fanout_peer.NAME, fanout_blocks.NAME):
        args.spawn = True
    if args.spawn == bool(args.http or args.live) or (not args.spawn and not (args.http and args.live)):
        parser.error("give either --spawn, or both --http and --live")
    if args.procs < 1:
        parser.error("--procs must be at least 1")
    if args.workers < 1 or (args.workers > 1 and not args.spawn):
        parser.error("--workers must be at least 1, and goes with --spawn")
    progress = ProgressBar(enabled=not args.quiet)
    try:
        if args.scenario == fanout_peer.NAME:
            both = asyncio.run(fanout_peer.run(args, progress, run_bench, _commit()))
            print(fanout_peer.format_compare(both["runs"], both["comparison"]))
            if args.json is not None:
                args.json.write_text(json.dumps(both, indent=2) + "\n")
            return 0
        if args.scenario == fanout_blocks.NAME:
            fanout_blocks.check(args)  # bad options stop here, before any server starts
            both = asyncio.run(fanout_blocks.run(args, progress, run_bench))
            print(fanout_blocks.format_compare(both["runs"], both["comparison"]))
            if args.json is not None:
                args.json.write_text(json.dumps(both, indent=2) + "\n")
            return 1 if both["comparison"]["failures"] else 0
        if args.scenario == "overload":
            overload.rates(args)  # bad options stop here, before any server starts
            done = asyncio.run(run_overload(args, progress))
            print(overload.format_overload(done["reports"], done))
            if args.json is not None:
                runs = [{**row, "report": r} for row, r in zip(done["runs"], done["reports"], strict=True)]
                args.json.write_text(json.dumps({"runs": runs, "summary": done["summary"]}, indent=2) + "\n")
            return 0
        if args.scenario == "workers-compare":
            both = asyncio.run(run_compare(args, progress))
            print(workers_compare.format_compare(both["runs"], both["comparison"]))
            if args.json is not None:
                args.json.write_text(json.dumps(both, indent=2) + "\n")
            return 0
        report = asyncio.run(run_bench(args, progress))
    except KeyboardInterrupt:
        progress.done()
        print("interrupted", file=sys.stderr)
        return 130
    except (SetupFailed, ServerFailed, WorkerFailed, ConnectFailed, OpFailed, httpx.HTTPError) as exc:
        progress.done()
        print(f"bench: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(format_table(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    # A broken rule the scenario checks (personal blocks: a blocked sender's message in full).
    return 1 if report["results"].get("blocks_ok") is False else 0
