"""Chat fan-out: ``fanout`` (one big room) and ``rooms`` (many rooms at once)."""

from __future__ import annotations

import argparse
from typing import Any

from bench.coordinator import RunOutcome, RunPlan
from bench.scenarios.base import Scenario, ScenarioResult, SetupEnv, deal, share

SENDER_USERS_MAX = 10


def add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--messages",
        type=int,
        default=None,
        help="stop each sender after this many messages instead of at the end of --duration",
    )
    parser.add_argument("--size", type=int, default=100, help="chat text length in characters (100)")
    parser.add_argument(
        "--connect-concurrency",
        type=int,
        default=200,
        help="listener connects in flight per worker while setting up (200)",
    )
    parser.add_argument(
        "--honour-retry-after",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="senders honour retry_after_ms as a client should: after a rate_limited reply, send "
        "nothing until then; the sends planned meanwhile are skipped and counted as held_back "
        "(default: off, every planned send is sent)",
    )


def listeners_role(room: str, count: int, args: argparse.Namespace) -> dict[str, Any]:
    """Guests listening in ``room`` (a worker's share of them)."""
    return {"kind": "listeners", "room": room, "count": count, "concurrency": args.connect_concurrency}


def senders_role(
    room: str,
    tokens: list[str],
    args: argparse.Namespace,
    drain_s: float,
    kind: str = "senders",
    **extra: Any,
) -> dict[str, Any]:
    """Authenticated senders chatting in ``room`` at ``args.rate`` (``--messages``/``--size`` too)."""
    return {
        "kind": kind,
        "room": room,
        "tokens": tokens,
        "rate": args.rate,
        "messages": args.messages,
        "size": args.size,
        "reply_grace_s": drain_s,
        "honour_retry_after": bool(getattr(args, "honour_retry_after", False)),
        **extra,
    }


def chat_window(messages: int | None, rate: float, duration_s: float) -> float:
    """The window: --duration, or long enough for --messages at --rate (senders start within 1/rate)."""
    if messages is None:
        return duration_s
    return (messages + 1) / rate + 1.0


def delivery_result(outcome: RunOutcome, listeners_per_room: int) -> ScenarioResult:
    counters = outcome.tally.counters
    acked = counters["acked"]
    expected = acked * listeners_per_room
    delivered = counters["deliveries"]
    rows = [
        (
            "expected deliveries",
            f"{expected:,} ({acked:,} acked messages x {listeners_per_room:,} listeners a room); "
            f"delivered {delivered / expected:.2%}"
            if expected
            else "0 (no message was acked)",
        )
    ]
    if counters["refused"] or counters["held_back"]:
        codes = ", ".join(
            f"{name.removeprefix('refused_')} {n:,}"
            for name, n in sorted(counters.items())
            if name.startswith("refused_") and n
        )
        rows.append(
            (
                "chat.send",
                f"sent {counters['sent']:,}, acked {acked:,}, refused {counters['refused']:,}"
                + (f" ({codes})" if codes else "")
                + f", held back (retry_after_ms) {counters['held_back']:,}",
            )
        )
    return ScenarioResult(rows=rows, fields={"acked_messages": acked, "expected_deliveries": expected})


class FanoutScenario(Scenario):
    name = "fanout"
    help = "one room: N listeners, K senders at R messages/s each"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--listeners", type=int, default=1000, help="guest listeners (1000)")
        parser.add_argument("--senders", type=int, default=10, help="authenticated senders (10)")
        parser.add_argument("--rate", type=float, default=5.0, help="messages/s per sender (5)")
        add_chat_arguments(parser)

    def params(self) -> dict[str, Any]:
        a = self.args
        return {
            "listeners": a.listeners,
            "senders": a.senders,
            "rate": a.rate,
            "messages": a.messages,
            "size": a.size,
            "honour_retry_after": a.honour_retry_after,
        }

    def describe(self) -> str:
        a = self.args
        offered = a.senders * a.rate * a.listeners
        return (
            f"1 room x {a.listeners:,} listeners; {a.senders} senders x {a.rate:g} msg/s "
            f"(offered {offered:,.0f} deliveries/s)"
        )

    async def setup(self, env: SetupEnv) -> RunPlan:
        a = self.args
        users = await env.users.take(a.senders)
        room = await env.api.create_room(users[0].token, f"bench fanout {env.tag}")
        listeners = share(a.listeners, env.procs)
        senders = deal([u.token for u in users], env.procs)
        workers: list[list[dict[str, Any]]] = []
        for index in range(env.procs):
            roles: list[dict[str, Any]] = []
            if listeners[index]:
                roles.append(listeners_role(room, listeners[index], a))
            if senders[index]:
                roles.append(senders_role(room, senders[index], a, env.drain_s))
            workers.append(roles)
        return RunPlan(
            workers,
            chat_window(a.messages, a.rate, env.duration_s),
            env.drain_s,
            a.listeners,
        )

    def results(self, outcome: RunOutcome) -> ScenarioResult:
        return delivery_result(outcome, self.args.listeners)


class RoomsScenario(Scenario):
    name = "rooms"
    help = "M rooms x L listeners, one sender chatting in each"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--rooms", type=int, default=20, help="rooms (20)")
        parser.add_argument("--listeners", type=int, default=50, help="guest listeners per room (50)")
        parser.add_argument("--rate", type=float, default=5.0, help="messages/s per room (5)")
        add_chat_arguments(parser)

    def params(self) -> dict[str, Any]:
        a = self.args
        return {
            "rooms": a.rooms,
            "listeners_per_room": a.listeners,
            "rate_per_room": a.rate,
            "messages": a.messages,
            "size": a.size,
            "honour_retry_after": a.honour_retry_after,
        }

    def describe(self) -> str:
        a = self.args
        offered = a.rooms * a.rate * a.listeners
        return (
            f"{a.rooms} rooms x {a.listeners:,} listeners; 1 sender x {a.rate:g} msg/s a room "
            f"(offered {offered:,.0f} deliveries/s)"
        )

    async def setup(self, env: SetupEnv) -> RunPlan:
        a = self.args
        users = await env.users.take(min(a.rooms, SENDER_USERS_MAX))
        workers: list[list[dict[str, Any]]] = [[] for _ in range(env.procs)]
        for number in range(a.rooms):
            sender = users[number % len(users)]
            room = await env.api.create_room(sender.token, f"bench rooms {env.tag} {number}")
            for index, count in enumerate(share(a.listeners, env.procs)):
                if count:
                    workers[index].append(listeners_role(room, count, a))
            workers[number % env.procs].append(senders_role(room, [sender.token], a, env.drain_s))
        return RunPlan(
            workers,
            chat_window(a.messages, a.rate, env.duration_s),
            env.drain_s,
            a.rooms * a.listeners,
        )

    def results(self, outcome: RunOutcome) -> ScenarioResult:
        return delivery_result(outcome, self.args.listeners)
