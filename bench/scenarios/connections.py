"""Connections: ``join`` (how fast the server welcomes a crowd), ``idle`` (what a socket costs it)."""

from __future__ import annotations

import argparse
from typing import Any

from bench.coordinator import RunOutcome, RunPlan
from bench.scenarios.base import Scenario, ScenarioResult, SetupEnv, share
from bench.wsclient import WsClient, connect

KIB = 1024


class JoinScenario(Scenario):
    name = "join"
    help = "N guests connect at once; time to each welcome and to all of them"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--clients", type=int, default=2000, help="clients (2000)")
        parser.add_argument(
            "--concurrency",
            type=int,
            default=0,
            help="connects in flight per worker (0: all at once)",
        )

    def params(self) -> dict[str, Any]:
        return {"clients": self.args.clients, "concurrency": self.args.concurrency}

    def describe(self) -> str:
        return f"{self.args.clients:,} guests connect to one room at once"

    async def setup(self, env: SetupEnv) -> RunPlan:
        (owner,) = await env.users.take(1)
        room = await env.api.create_room(owner.token, f"bench join {env.tag}")
        workers = [
            [{"kind": "joiners", "room": room, "count": count, "concurrency": self.args.concurrency}]
            if count
            else []
            for count in share(self.args.clients, env.procs)
        ]
        # The window only bounds the run: it ends when every client is in (or gave up).
        return RunPlan(workers, env.connect_timeout + 5.0, 0.0, 0)

    def results(self, outcome: RunOutcome) -> ScenarioResult:
        connected = outcome.tally.counters["connected"]
        last = outcome.tally.marks.get("last_welcome_ns", 0)
        total_s = (last - outcome.start_ns) / 1e9 if last else 0.0
        rows = [
            ("welcomed", f"{connected:,} of {self.args.clients:,}"),
            (
                "time to all welcomed",
                f"{total_s:.2f} s ({connected / total_s:,.0f} welcomes/s)" if total_s else "-",
            ),
        ]
        fields: dict[str, Any] = {"welcomed": connected, "all_welcomed_s": round(total_s, 3)}
        server = outcome.server
        if "start" in server and "drained" in server and connected:
            per_us = (server["drained"].cpu_s - server["start"].cpu_s) / connected * 1e6
            rows.append(("server CPU per connection", f"{per_us:,.0f} µs"))
            fields["server_us_per_connection"] = round(per_us, 1)
        return ScenarioResult(rows, fields)


class IdleScenario(Scenario):
    name = "idle"
    help = "N guests connect to one room and hold still: server memory per socket"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--clients", type=int, default=5000, help="clients (5000)")
        parser.add_argument(
            "--connect-concurrency", type=int, default=200, help="connects in flight per worker (200)"
        )

    def params(self) -> dict[str, Any]:
        return {"clients": self.args.clients}

    def describe(self) -> str:
        return f"{self.args.clients:,} idle guests in one room, held for the window (--duration)"

    async def setup(self, env: SetupEnv) -> RunPlan:
        (owner,) = await env.users.take(1)
        room = await env.api.create_room(owner.token, f"bench idle {env.tag}")
        # Start the room's actor before the baseline, so the baseline holds everything but the sockets.
        warm = await connect(WsClient(), env.live, room, token=owner.token, timeout=env.connect_timeout)
        await warm.close()
        workers = [
            [
                {
                    "kind": "listeners",
                    "room": room,
                    "count": count,
                    "concurrency": self.args.connect_concurrency,
                    "hold": True,
                }
            ]
            if count
            else []
            for count in share(self.args.clients, env.procs)
        ]
        return RunPlan(workers, env.duration_s, 0.0, self.args.clients)

    def results(self, outcome: RunOutcome) -> ScenarioResult:
        server = outcome.server
        sockets = outcome.tally.counters["sockets"]
        rows: list[tuple[str, str]] = []
        fields: dict[str, Any] = {"sockets": sockets}
        if "baseline" in server and sockets:
            for phase in ("ready", "drained"):
                if phase in server:
                    per = (server[phase].rss - server["baseline"].rss) / sockets / KIB
                    when = "all in" if phase == "ready" else "end of hold"
                    rows.append((f"RSS per socket, {when}", f"{per:.1f} KiB"))
                    fields[f"rss_kib_per_socket_{phase}"] = round(per, 2)
        else:
            rows.append(("server RSS per socket", "unknown (give --server-pid or --spawn)"))
        return ScenarioResult(rows, fields)
