"""``notify``: how fast an @mention reaches the mentioned user's socket in another room.

A "stage" room holds ``--listeners`` guests and ``--senders`` authenticated
senders; ``--targets`` registered users each hold one socket in another room
("elsewhere"). Every chat message on stage mentions one target (each sender
goes round them in turn) and carries its send time. The server writes a
``mention`` notification in the message's own group commit and pushes it, after
commit, as the private ``notification`` event to each of the target's sockets.

Latency is the notification's arrival at the target minus the chat message's
send time. The notification does not carry the text, only the ``message_id``,
which the sender learns from its reply (possibly after the notification
arrived), so senders and targets each record their half and the halves are
joined here after the run (see ``bench/roles/notifications.py``).
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from bench.coordinator import RunOutcome, RunPlan
from bench.roles.notifications import NOTIFIED, NOTIFIED_AT, SENT_AT
from bench.scenarios.base import Scenario, ScenarioResult, SetupEnv, deal, share
from bench.scenarios.chat import (
    add_chat_arguments,
    chat_window,
    delivery_result,
    listeners_role,
    senders_role,
)
from bench.stats import Summary

LATENCY_ROW = "notification mention"


def join_notifications(outcome: RunOutcome) -> tuple[dict[str, Any], list[int]]:
    """Owed (acked messages) against received notifications; the latencies of those received."""
    tally = outcome.tally
    sent: dict[str, int] = {}
    arrived: dict[str, int] = {}
    for name, value in tally.marks.items():
        kind, _, key = name.partition(" ")
        if kind == SENT_AT:
            sent[key] = value
        elif kind == NOTIFIED_AT:
            arrived[key] = value
    times: Counter[str] = Counter()
    for name, count in tally.counters.items():
        kind, _, key = name.partition(" ")
        if kind == NOTIFIED:
            times[key] += count
    latencies = [arrived[key] - sent_ns for key, sent_ns in sent.items() if key in arrived]
    counts = {
        "notifications_expected": len(sent),
        "notifications_received": len(latencies),
        "notifications_missing": len(sent) - len(latencies),
        "notifications_duplicated": sum(n - 1 for n in times.values() if n > 1),
        "notifications_unexpected": sum(1 for key in arrived if key not in sent),
        "other_notifications": tally.counters["other_notifications"],
    }
    return counts, latencies


class NotifyScenario(Scenario):
    name = "notify"
    help = (
        "chat on a 1,000-socket stage @mentions users whose socket is in another room; notification latency"
    )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--listeners", type=int, default=1000, help="guest listeners on stage (1000)")
        parser.add_argument("--senders", type=int, default=5, help="authenticated senders on stage (5)")
        parser.add_argument(
            "--targets",
            type=int,
            default=20,
            help="registered users mentioned in turn, one socket each in another room (20)",
        )
        parser.add_argument("--rate", type=float, default=5.0, help="messages/s per sender (5)")
        add_chat_arguments(parser)

    def params(self) -> dict[str, Any]:
        a = self.args
        return {
            "listeners": a.listeners,
            "senders": a.senders,
            "targets": a.targets,
            "rate": a.rate,
            "messages": a.messages,
            "size": a.size,
        }

    def describe(self) -> str:
        a = self.args
        return (
            f"stage: {a.listeners:,} listeners, {a.senders} senders x {a.rate:g} msg/s, each message "
            f"@mentions one of {a.targets} users whose socket is in another room"
        )

    async def setup(self, env: SetupEnv) -> RunPlan:
        a = self.args
        if a.senders < 1 or a.targets < 1:
            raise SystemExit("notify needs at least one sender and one target")
        users = await env.users.take(a.senders + a.targets)
        senders, targets = users[: a.senders], users[a.senders :]
        stage = await env.api.create_room(senders[0].token, f"bench notify stage {env.tag}")
        elsewhere = await env.api.create_room(senders[0].token, f"bench notify elsewhere {env.tag}")
        usernames = [u.username for u in targets]
        listeners = share(a.listeners, env.procs)
        sender_counts = share(a.senders, env.procs)
        target_hands = deal(targets, env.procs)
        workers: list[list[dict[str, Any]]] = []
        first_sender = 0
        for index in range(env.procs):
            roles: list[dict[str, Any]] = []
            if listeners[index]:
                roles.append(listeners_role(stage, listeners[index], a))
            if target_hands[index]:
                roles.append(
                    {
                        "kind": "notified",
                        "room": elsewhere,
                        "count": len(target_hands[index]),
                        "tokens": [u.token for u in target_hands[index]],
                        "usernames": [u.username for u in target_hands[index]],
                        "about_room": stage,
                        "concurrency": a.connect_concurrency,
                    }
                )
            if sender_counts[index]:
                hand = senders[first_sender : first_sender + sender_counts[index]]
                roles.append(
                    senders_role(
                        stage,
                        [u.token for u in hand],
                        a,
                        env.drain_s,
                        kind="mention_senders",
                        targets=usernames,
                        first=first_sender,
                        group=str(index),
                    )
                )
                first_sender += len(hand)
            workers.append(roles)
        return RunPlan(
            workers,
            chat_window(a.messages, a.rate, env.duration_s),
            env.drain_s,
            a.listeners + a.targets,
        )

    def results(self, outcome: RunOutcome) -> ScenarioResult:
        result = delivery_result(outcome, self.args.listeners)
        counts, latencies = join_notifications(outcome)
        expected, received = counts["notifications_expected"], counts["notifications_received"]
        bad = (
            counts["notifications_missing"]
            + counts["notifications_duplicated"]
            + counts["notifications_unexpected"]
        )
        verdict = "OK" if bad == 0 and expected else "FAILED" if bad else "none expected"
        result.rows.append(
            (
                "notifications",
                f"{verdict}: {received:,} of {expected:,} expected (one per acked chat.send) received; "
                f"missing {counts['notifications_missing']:,}, "
                f"duplicated {counts['notifications_duplicated']:,}, "
                f"unexpected {counts['notifications_unexpected']:,}",
            )
        )
        summary = Summary.of(latencies)
        result.fields.update(counts)
        result.fields["notifications_exact"] = bad == 0
        result.fields["notification_ms"] = summary.to_json() if summary else None
        result.latency[LATENCY_ROW] = latencies
        return result
