"""``python -m bench fanout-peer``: the ``fanout`` load (one room x ``--listeners`` guests, senders at
``--rate``) against a spawned ``seda serve`` and then against the Node ``ws`` broadcast peer
(``bench/peers/node_ws/server.js``), with the same clients and settings, in one sitting; both
tables, then one row per server and the ratio seda/node of server CPU per delivery.

The Node peer has no REST and no accounts: the room is any id, and the senders connect with
made-up tokens that it does not check (listeners are guests on both). It keeps no history and
writes nothing: it is the fan-out reference, not a chat server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.affinity import CpuSplit, describe, pin, split_cpus
from bench.coordinator import Coordinator, RunPlan
from bench.progress import ProgressBar
from bench.report import RunInfo, build_report, cell, format_table
from bench.scenarios.base import deal, share
from bench.scenarios.chat import FanoutScenario, chat_window, listeners_role, senders_role
from bench.target import ServerFailed, ServerMonitor
from bench.wsclient import LiveEndpoint

NAME = "fanout-peer"
HELP = "the fanout load against seda serve and then against the Node ws peer: CPU per delivery, ratio"
PEER_DIR = Path(__file__).resolve().parent / "peers" / "node_ws"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0

RunBench = Callable[[argparse.Namespace, ProgressBar], Awaitable[dict[str, Any]]]


def register(scenarios: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``fanout-peer`` sub-command to ``python -m bench``."""
    sub = scenarios.add_parser(NAME, parents=[common], help=HELP, description=HELP)
    FanoutScenario.add_arguments(sub)
    sub.add_argument("--node", default="node", help="the node executable (node)")
    sub.add_argument(
        "--plain-send",
        action="store_true",
        help="the peer broadcasts with ws.send(buffer) per socket instead of one prebuilt frame",
    )
    sub.add_argument(
        "--only",
        choices=("seda", "node"),
        help="run against one server only (default: seda, then node)",
    )
    sub.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="seda then node, this many times (1); the ratios per round and their median",
    )
    sub.set_defaults(senders=1, rate=50.0)


# ---- the Node peer ------------------------------------------------------------------------------


def ensure_installed(node: str) -> None:
    """``npm ci`` in the peer's folder when its node_modules is missing; SystemExit without node/npm."""
    if shutil.which(node) is None:
        raise SystemExit(f"fanout-peer: `{node}` not found: install Node.js (20 or later) or give --node")
    if (PEER_DIR / "node_modules" / "ws").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(f"fanout-peer: npm not found, and {PEER_DIR / 'node_modules'} is missing")
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PEER_DIR, check=False)
    if done.returncode != 0:
        raise SystemExit(f"fanout-peer: `npm ci` in {PEER_DIR} failed ({done.returncode})")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class NodePeer:
    """``node server.js --port P``, started and stopped by the bench."""

    def __init__(self, node: str, *, plain_send: bool = False) -> None:
        self.node = node
        self.plain_send = plain_send
        self.port = _free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def live(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        command = [self.node, str(PEER_DIR / "server.js"), "--port", str(self.port)]
        if self.plain_send:
            command.append("--plain-send")
        self.process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while True:
                    line = await self.process.stdout.readline()
                    if not line:
                        raise ServerFailed(f"the node peer exited ({await self.process.wait()})")
                    if b"listening on" in line:
                        break
        except TimeoutError:
            await self.stop()
            raise ServerFailed(f"the node peer did not listen within {START_TIMEOUT_S:g} s") from None
        # Keep reading its output so that it never blocks on a full pipe.
        self._drain = asyncio.ensure_future(self.process.stdout.read())

    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode


def node_plan(args: argparse.Namespace, room: str) -> RunPlan:
    """The plan ``FanoutScenario.setup`` makes, without REST: any room id, tokens the peer ignores."""
    tokens = [f"peer-sender-{i}" for i in range(args.senders)]
    listeners = share(args.listeners, args.procs)
    senders = deal(tokens, args.procs)
    workers: list[list[dict[str, Any]]] = []
    for index in range(args.procs):
        roles: list[dict[str, Any]] = []
        if listeners[index]:
            roles.append(listeners_role(room, listeners[index], args))
        if senders[index]:
            roles.append(senders_role(room, senders[index], args, args.drain))
        workers.append(roles)
    return RunPlan(workers, chat_window(args.messages, args.rate, args.duration), args.drain, args.listeners)


async def run_node(
    args: argparse.Namespace, progress: ProgressBar, commit: str | None, split: CpuSplit | None
) -> dict[str, Any]:
    scenario = FanoutScenario(args)
    peer = NodePeer(args.node, plain_send=args.plain_send)
    target: dict[str, Any] = {"peer": "node ws", "spawned": True, "plain_send": args.plain_send}
    progress.note(f"starting the node ws peer on port {peer.port}")
    await peer.start()
    try:
        target.update({"live": peer.live, "server_pid": peer.pid})
        if split is not None:
            pin([os.getpid()], split.harness, descendants=False)
            pin([peer.pid], split.server)
            target["pinned"] = {"server": describe(split.server), "bench": describe(split.harness)}
        outcome = await Coordinator(
            node_plan(args, f"bench-fanout-{secrets.token_hex(3)}"),
            live=LiveEndpoint.from_url(peer.live),
            http="http://127.0.0.1:9",  # unused: fanout roles speak only the live protocol
            connect_timeout=args.connect_timeout,
            progress=progress,
            monitor=ServerMonitor(peer.pid),
        ).run()
        if not peer.alive():
            target["died"] = "the node peer exited during the run"
        info = RunInfo(
            scenario="fanout (node ws peer)",
            description=scenario.describe(),
            params={**scenario.params(), "procs": args.procs, "duration": args.duration},
            target=target,
            procs=args.procs,
            date=datetime.now().strftime("%Y-%m-%d %H:%M"),
            commit=commit,
        )
        report = build_report(info, outcome, scenario.results(outcome))
    finally:
        target["exit_code"] = await peer.stop()
    summary = f"spawned node ws peer pid {target['server_pid']}" + (
        " (ws.send per socket)" if args.plain_send else " (one prebuilt frame per broadcast)"
    )
    if "pinned" in target:
        summary += f", server on CPU {target['pinned']['server']}, bench on CPU {target['pinned']['bench']}"
    if "died" in target:
        summary += f"; {target['died'].upper()}"
    target["summary"] = summary
    return report


# ---- both, side by side -------------------------------------------------------------------------


def seda_args(args: argparse.Namespace) -> argparse.Namespace:
    run = argparse.Namespace(**vars(args))
    run.scenario = "fanout"
    run.spawn = True
    run.workers = 1
    run.json = None
    return run


def summarise(name: str, report: dict[str, Any]) -> dict[str, Any]:
    server = report.get("server") or {}
    delivery = report["latency_ms"].get("delivery", {})
    results = report.get("results") or {}
    expected = results.get("expected_deliveries") or 0
    return {
        "server": name,
        "deliveries": report["deliveries"],
        "expected_deliveries": expected,
        "deliveries_per_s": report["deliveries_per_s"],
        "server_cpu_of_one_core": server.get("cpu_of_one_core"),
        "us_per_delivery": server.get("us_per_delivery"),
        "delivery_p50_ms": delivery.get("p50"),
        "delivery_p99_ms": delivery.get("p99"),
        "errors": sum(report["errors"].values()),
        "missed_seq": report["counters"].get("missed_seq", 0),
        "others_cores": (report.get("machine") or {}).get("others_cores"),
        "bench_saturated": report["bench"]["saturated"],
        "pinned": "pinned" in report["target"],
    }


RATIO_KEYS = ("us_per_delivery", "deliveries_per_s", "server_cpu_of_one_core", "delivery_p99_ms")


def compare(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One row per run; per round (a seda run and the node run after it) the ratios seda/node,
    and the median of each ratio over the rounds."""
    rows = [summarise(name.split()[0], report) | {"run": name} for name, report in runs.items()]
    rounds, median = round_ratios(rows, "seda", "node")
    return {"rows": rows, "rounds": rounds, "seda_over_node": median}


def round_ratios(
    rows: list[dict[str, Any]], top: str, bottom: str
) -> tuple[list[dict[str, Any]], dict[str, float | None] | None]:
    """Per round (a ``top`` run and the ``bottom`` run of the same round, named ``"<top> N"`` and
    ``"<bottom> N"``) the ratios top/bottom of :data:`RATIO_KEYS`, and the median of each ratio."""
    by_name = {row["run"]: row for row in rows}
    rounds: list[dict[str, Any]] = []
    for name, upper in by_name.items():
        if not name.startswith(top):
            continue
        lower = by_name.get(name.replace(top, bottom, 1))
        if lower is None:
            continue
        rounds.append(
            {
                "round": name.replace(top, "", 1).strip() or "1",
                **{
                    key: round(upper[key] / lower[key], 3) if upper.get(key) and lower.get(key) else None
                    for key in RATIO_KEYS
                },
            }
        )
    median: dict[str, float | None] | None = None
    if rounds:
        median = {}
        for key in RATIO_KEYS:
            values = [r[key] for r in rounds if r[key] is not None]
            median[key] = round(statistics.median(values), 3) if values else None
    return rounds, median


def format_compare(runs: dict[str, dict[str, Any]], comparison: dict[str, Any]) -> str:
    lines = [format_table(report) + "\n" for report in runs.values()]
    first = next(iter(runs.values()))
    lines.append(f"fanout-peer: {first['description']}, {first['params']['duration']:g} s each")
    lines.append(
        f"{'run':>7} {'deliv/s':>9} {'server':>7} {'µs/deliv':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'delivered':>10} {'errors':>6} {'others':>6}  pinned"
    )
    for row in comparison["rows"]:
        delivered = row["deliveries"] / row["expected_deliveries"] if row["expected_deliveries"] else None
        lines.append(
            f"{row['run']:>7} {cell(row['deliveries_per_s'], ',.0f'):>9} "
            f"{cell(row['server_cpu_of_one_core'], '.0%'):>7} {cell(row['us_per_delivery'], '.2f'):>9} "
            f"{cell(row['delivery_p50_ms']):>7} {cell(row['delivery_p99_ms']):>7} "
            f"{cell(delivered, '.2%'):>10} {row['errors']:>6} {cell(row['others_cores'], '.2f'):>6}  "
            f"{'CPU 0' if row['pinned'] else 'no'}" + ("  BENCH SATURATED" if row["bench_saturated"] else "")
        )
    for ratio in comparison["rounds"]:
        lines.append(
            f"round {ratio['round']}: seda/node CPU per delivery x{cell(ratio['us_per_delivery'], '.2f')}, "
            f"delivery p99 x{cell(ratio['delivery_p99_ms'], '.2f')}"
        )
    ratio = comparison["seda_over_node"]
    if ratio:
        lines.append(
            f"seda/node{' (median of the rounds)' if len(comparison['rounds']) > 1 else ''}: "
            f"CPU per delivery x{cell(ratio['us_per_delivery'], '.2f')} (goal <= 0.8), "
            f"deliveries/s x{cell(ratio['deliveries_per_s'], '.2f')}, "
            f"server CPU x{cell(ratio['server_cpu_of_one_core'], '.2f')}, "
            f"delivery p99 x{cell(ratio['delivery_p99_ms'], '.2f')}"
        )
    lines.append("server CPU in cores; others = other processes on the machine, in cores")
    return "\n".join(lines)


async def run(
    args: argparse.Namespace, progress: ProgressBar, run_bench: RunBench, commit: str | None
) -> dict[str, Any]:
    if args.blockers:
        raise SystemExit("fanout-peer: --blockers needs accounts, which the node peer does not have")
    if args.only != "seda":
        ensure_installed(args.node)
    # Taken before the seda run, which pins this process to the harness's CPUs.
    split = None if args.no_pin else split_cpus()
    runs: dict[str, dict[str, Any]] = {}
    for number in range(1, args.rounds + 1):
        suffix = f" {number}" if args.rounds > 1 else ""
        if split is not None:
            # Every CPU again, as at the start: run_bench splits them itself, after its set-up.
            pin([os.getpid()], split.server | split.harness, descendants=False)
        if args.only != "node":
            progress.note(f"fanout-peer: run against seda serve{suffix}")
            runs[f"seda{suffix}"] = await run_bench(seda_args(args), progress)
        if args.only != "seda":
            progress.note(f"fanout-peer: run against the node ws peer{suffix}")
            runs[f"node{suffix}"] = await run_node(args, progress, commit, split)
    return {"runs": runs, "comparison": compare(runs)}
