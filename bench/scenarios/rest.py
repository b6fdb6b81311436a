"""``rest``: mixed REST reads (room discovery, profiles, chat history) at a target rate."""

from __future__ import annotations

import argparse
from typing import Any

from bench.control import ControlSocket, send_with_retry
from bench.coordinator import RunOutcome, RunPlan
from bench.scenarios.base import Scenario, ScenarioResult, SetupEnv
from bench.wsclient import connect

GENRES = ("jazz", "house", "ambient", "techno", "soul")


class RestScenario(Scenario):
    name = "rest"
    help = "mixed REST reads (discover, profiles, history) at a target rate"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--rate", type=float, default=200.0, help="requests/s in all (200)")
        parser.add_argument("--rooms", type=int, default=20, help="rooms to discover (20)")
        parser.add_argument(
            "--history", type=int, default=100, help="chat messages in the history room (100)"
        )
        parser.add_argument("--users", type=int, default=5, help="profiles to read (5)")
        parser.add_argument("--concurrency", type=int, default=64, help="requests in flight per worker (64)")
        parser.add_argument(
            "--mix",
            default="discover=4,profile=3,history=3",
            help="weights of the request kinds (discover=4,profile=3,history=3)",
        )

    def params(self) -> dict[str, Any]:
        a = self.args
        return {"rate": a.rate, "rooms": a.rooms, "history": a.history, "users": a.users, "mix": a.mix}

    def describe(self) -> str:
        return f"{self.args.rate:g} GET/s ({self.args.mix}) over {self.args.rooms} rooms"

    def _weights(self) -> dict[str, float]:
        weights: dict[str, float] = {}
        for part in self.args.mix.split(","):
            name, _, weight = part.partition("=")
            if name.strip() not in ("discover", "profile", "history"):
                raise SystemExit(f"--mix: unknown request kind {name!r}")
            weights[name.strip()] = float(weight or 1)
        return weights

    async def setup(self, env: SetupEnv) -> RunPlan:
        a = self.args
        weights = self._weights()
        users = await env.users.take(max(a.users, 1))
        owner = users[0]
        rooms = [
            await env.api.create_room(
                owner.token, f"bench rest {env.tag} {n}", genres=[GENRES[n % len(GENRES)]], tags=[env.tag]
            )
            for n in range(max(a.rooms, 1))
        ]
        socket = await connect(ControlSocket(events=False), env.live, rooms[0], token=owner.token)
        for index in range(a.history):
            await send_with_retry(socket, "chat.send", {"text": f"seed message {index} " + "x" * 80})
            env.progress.show("seed", (index + 1) / a.history, {"sent": index + 1})
        await socket.close()
        env.progress.done()
        targets: list[list[Any]] = []
        for user in users:
            targets.append(
                ["profile", f"/api/v1/profiles/{user.username}", weights.get("profile", 0) / len(users)]
            )
        targets.append(
            ["discover", f"/api/v1/rooms/discover?q={env.tag}&limit=20", weights.get("discover", 0)]
        )
        targets.append(["history", f"/api/v1/rooms/{rooms[0]}/messages?limit=50", weights.get("history", 0)])
        targets = [t for t in targets if t[2] > 0]
        role = {
            "kind": "rest",
            "rate": a.rate / env.procs,
            "targets": targets,
            "token": owner.token,
            "concurrency": a.concurrency,
        }
        workers = [[role] for _ in range(env.procs)]
        return RunPlan(workers, env.duration_s, 0.0, 0)

    def results(self, outcome: RunOutcome) -> ScenarioResult:
        c = outcome.tally.counters
        seconds = (outcome.sent_ns - outcome.start_ns) / 1e9
        rows = [
            (
                "requests",
                f"{c['requests']:,} answered ({c['ok']:,} ok) in {seconds:.1f} s = "
                f"{c['requests'] / seconds:,.0f}/s (target {self.args.rate:g}/s)",
            )
        ]
        return ScenarioResult(
            rows, {"requests": c["requests"], "ok": c["ok"], "requests_per_s": c["requests"] / seconds}
        )
