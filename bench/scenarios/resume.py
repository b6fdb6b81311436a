"""``resume``: clients drop their sockets and come back with ``since`` while chat goes on.

Counting is exact: each client keeps the last ``seq`` it saw across all its
sockets, so a gap (missed), a repeat (duplicate) or an end short of the room's
last ``seq`` (undelivered) is counted however the reconnects fall.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.coordinator import RunOutcome, RunPlan
from bench.scenarios.base import Scenario, ScenarioResult, SetupEnv, deal, share
from bench.scenarios.chat import chat_window, senders_role


class ResumeScenario(Scenario):
    name = "resume"
    help = "N clients drop and resume with since while chat continues; counts missed/duplicate seq"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--clients", type=int, default=50, help="resuming guest clients (50)")
        parser.add_argument(
            "--reconnects", type=int, default=500, help="drops in all, spread over clients and time (500)"
        )
        parser.add_argument("--senders", type=int, default=2, help="authenticated senders (2)")
        parser.add_argument("--rate", type=float, default=10.0, help="messages/s per sender (10)")
        parser.add_argument(
            "--messages", type=int, default=None, help="stop each sender after this many messages"
        )
        parser.add_argument("--size", type=int, default=100, help="chat text length (100)")

    def params(self) -> dict[str, Any]:
        a = self.args
        return {
            "clients": a.clients,
            "reconnects": a.reconnects,
            "senders": a.senders,
            "rate": a.rate,
            "messages": a.messages,
        }

    def describe(self) -> str:
        a = self.args
        return (
            f"{a.clients:,} clients drop and resume {a.reconnects:,} times in all while "
            f"{a.senders} senders x {a.rate:g} msg/s chat"
        )

    async def setup(self, env: SetupEnv) -> RunPlan:
        a = self.args
        users = await env.users.take(a.senders)
        room = await env.api.create_room(users[0].token, f"bench resume {env.tag}")
        window_s = chat_window(a.messages, a.rate, env.duration_s)
        # Drops happen while messages still flow: within the time the senders need.
        drop_window_s = (a.messages / a.rate if a.messages is not None else window_s) * 0.9
        drops = share(a.reconnects, a.clients)
        clients = share(a.clients, env.procs)
        senders = deal([u.token for u in users], env.procs)
        workers: list[list[dict[str, Any]]] = []
        first = 0
        for index in range(env.procs):
            roles: list[dict[str, Any]] = []
            if clients[index]:
                roles.append(
                    {
                        "kind": "listeners",
                        "room": room,
                        "count": clients[index],
                        "drops": drops[first : first + clients[index]],
                        "drop_window_s": drop_window_s,
                    }
                )
                first += clients[index]
            if senders[index]:
                roles.append(senders_role(room, senders[index], a, env.drain_s))
            workers.append(roles)
        return RunPlan(workers, window_s, env.drain_s, a.clients)

    def results(self, outcome: RunOutcome) -> ScenarioResult:
        c = outcome.tally.counters
        bad = c["missed_seq"] + c["duplicate_seq"] + c["undelivered"]
        rows = [
            (
                "reconnects",
                f"{c['reconnects']:,} dropped by the client, {c['server_close_resumes']:,} closed by "
                f"the server; resumed {c['resumed']:,}, not resumed {c['not_resumed']:,}, "
                f"{c['replayed']:,} events replayed",
            ),
        ]
        fields = {
            "reconnects": c["reconnects"],
            "server_close_resumes": c["server_close_resumes"],
            "resumed": c["resumed"],
            "not_resumed": c["not_resumed"],
            "replayed": c["replayed"],
            "missed_seq": c["missed_seq"],
            "duplicate_seq": c["duplicate_seq"],
            "undelivered": c["undelivered"],
            "seq_exact": bad == 0,
        }
        return ScenarioResult(rows, fields)
