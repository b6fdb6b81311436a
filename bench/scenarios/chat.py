"""Chat fan-out: ``fanout`` (one big room) and ``rooms`` (many rooms at once)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bench.coordinator import RunOutcome, RunPlan
from bench.roles.blocks import stub_latencies
from bench.scenarios.base import Scenario, ScenarioResult, SetupEnv, deal, share
from bench.stats import Summary

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
        parser.add_argument(
            "--blockers",
            type=int,
            default=0,
            help="of the --listeners, this many are registered users who block every sender "
            "(personal blocks: they get each message as a stub); the rest are guests (0)",
        )
        parser.add_argument(
            "--blocks",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="--no-blocks: the --blockers listen as registered users but block nobody (the control)",
        )
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
            "blockers": a.blockers if a.blocks else 0,
            "registered_listeners": a.blockers,
        }

    def describe(self) -> str:
        a = self.args
        offered = a.senders * a.rate * a.listeners
        text = (
            f"1 room x {a.listeners:,} listeners; {a.senders} senders x {a.rate:g} msg/s "
            f"(offered {offered:,.0f} deliveries/s)"
        )
        if a.blockers and a.blocks:
            text += f"; {a.blockers} listeners block the senders"
        elif a.blockers:
            text += f"; {a.blockers} listeners registered, blocking nobody"
        return text

    async def setup(self, env: SetupEnv) -> RunPlan:
        a = self.args
        if not 0 <= a.blockers <= a.listeners:
            raise SystemExit("--blockers must be between 0 and --listeners")
        users = await env.users.take(a.senders + a.blockers)
        senders, blockers = users[: a.senders], users[a.senders :]
        room = await env.api.create_room(senders[0].token, f"bench fanout {env.tag}")
        sender_ids = [u.user_id for u in senders]
        # Before anyone connects: a socket learns its user's blocks when it joins. Unblocking
        # in the control run undoes the blocks of an earlier run against the same database.
        change = env.api.block if a.blocks else env.api.unblock
        await asyncio.gather(*(change(user.token, blocked) for user in blockers for blocked in sender_ids))
        listeners = share(a.listeners - a.blockers, env.procs)
        blocker_hands = deal(blockers, env.procs)
        sender_hands = deal([u.token for u in senders], env.procs)
        sender_kind = "stamp_senders" if a.blockers else "senders"
        workers: list[list[dict[str, Any]]] = []
        for index in range(env.procs):
            roles: list[dict[str, Any]] = []
            if listeners[index]:
                roles.append(listeners_role(room, listeners[index], a))
            if blocker_hands[index]:
                roles.append(
                    {
                        **listeners_role(room, len(blocker_hands[index]), a),
                        "kind": "blockers",
                        "tokens": [u.token for u in blocker_hands[index]],
                        "blocked": sender_ids if a.blocks else [],
                    }
                )
            if sender_hands[index]:
                roles.append(senders_role(room, sender_hands[index], a, env.drain_s, kind=sender_kind))
            workers.append(roles)
        return RunPlan(
            workers,
            chat_window(a.messages, a.rate, env.duration_s),
            env.drain_s,
            a.listeners,
        )

    def results(self, outcome: RunOutcome) -> ScenarioResult:
        result = delivery_result(outcome, self.args.listeners)
        a = self.args
        counters = outcome.tally.counters
        if not a.blockers and not counters["stubs_unexpected"]:
            return result
        blockers = a.blockers if a.blocks else 0
        owed = counters["acked"] * blockers
        stubs, leaked = counters["stubs"], counters["blocked_full"]
        malformed, unexpected = counters["stubs_malformed"], counters["stubs_unexpected"]
        ok = leaked == 0 and malformed == 0 and unexpected == 0 and stubs >= owed
        latencies, unmatched = stub_latencies(outcome.tally.marks)
        summary = Summary.of(latencies)
        who = (
            f"{blockers:,} of {a.listeners:,} listeners block the {a.senders} sender(s)"
            if blockers
            else f"nobody blocks ({a.blockers:,} registered listeners)"
        )
        result.rows.append(
            (
                "personal blocks",
                f"{'OK' if ok else 'FAILED'}: {who}; stubs {stubs:,} of {owed:,} owed "
                f"(acked x blockers); full messages of a blocked sender {leaked:,}; "
                f"malformed stubs {malformed:,}; stubs to sockets blocking nobody {unexpected:,}",
            )
        )
        result.fields.update(
            {
                "blockers": blockers,
                "registered_listeners": a.blockers,
                "stubs": stubs,
                "stubs_owed": owed,
                "blocked_full": leaked,
                "stubs_malformed": malformed,
                "stubs_unexpected": unexpected,
                "stubs_without_send_time": unmatched,
                "stub_delivery_ms": summary.to_json() if summary else None,
                "blocks_ok": ok,
            }
        )
        if latencies:
            result.latency["delivery (stub)"] = latencies
        return result


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
