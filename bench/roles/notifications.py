"""Mentions and the ``notification`` events they cause (the ``notify`` scenario).

``mention_senders`` are senders whose every message names one target user as
``@username`` (each sender goes round the targets in turn). ``notified`` are
those targets: authenticated sockets in another room that wait for the private
``notification`` event of type ``mention``.

The two sides may live in different worker processes, and a notification may
reach its target before the sender has its ``chat.send`` reply (which is where
the ``message_id`` comes from), so nothing is matched here. Each side records
its half, keyed by ``"<message_id> <username>"``, into its tally's marks:

- senders: ``sent_at <message_id> <username>`` -> the send time, for every
  message acknowledged in time (the notifications that are owed);
- targets: ``notified_at <message_id> <username>`` -> when the first such
  notification arrived, and the counter ``notified <message_id> <username>``
  -> how many arrived.

The scenario joins them after the run (latency = arrival - send time; owed but
never seen = missing; seen more than once = duplicated; seen but not owed, e.g.
sent to the wrong user = unexpected).

The drain must know how many notifications each target is owed. Senders
return, besides the room's last ``seq``, one total per target
(``mentions <username> <sender group>`` -> acknowledged messages that named it);
the coordinator hands every worker these totals as drain targets, and each
target waits until it has seen that many distinct notifications (or the
deadline passes).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from bench.chatwire import STAMP
from bench.roles.base import Window, WorkerContext
from bench.roles.listeners import ClientState, Listeners, ListenerSocket
from bench.roles.senders import Senders, SenderSocket
from bench.stats import Tally

MENTIONS_KEY = "mentions"
SENT_AT = "sent_at"
NOTIFIED_AT = "notified_at"
NOTIFIED = "notified"


def mention_text(sent_ns: int, username: str, size: int) -> str:
    """A bench text (send time first, so listeners read it as usual) that mentions ``username``."""
    head = f"{STAMP}{sent_ns} @{username} "
    return head + "x" * max(1, size - len(head))


class MentionSenders(Senders):
    """Senders whose message number ``k`` on socket ``s`` mentions ``targets[(first + s + k) % n]``.

    Extra spec keys: ``targets`` (usernames), ``first`` (this role's first
    sender among all the run's senders, so that they do not all start on the
    same target), ``group`` (a name unique among the run's sender roles).
    """

    def __init__(self, spec: dict[str, Any], ctx: WorkerContext) -> None:
        super().__init__(spec, ctx)
        self.targets: list[str] = list(spec["targets"])
        self.first = int(spec.get("first", 0))
        self.group = str(spec.get("group", ctx.index))
        self.sent_at: dict[str, int] = {}
        self.owed: Counter[str] = Counter()

    def target_of(self, socket: SenderSocket, ref: int) -> str:
        return self.targets[(self.first + socket.number + ref - 1) % len(self.targets)]

    def text(self, socket: SenderSocket, ref: int, sent_ns: int, size: int) -> str:
        return mention_text(sent_ns, self.target_of(socket, ref), size)

    def acked(self, socket: SenderSocket, ref: int, sent_ns: int, data: dict[str, Any]) -> None:
        target = self.target_of(socket, ref)
        self.sent_at[f"{data.get('message_id')} {target}"] = sent_ns
        self.owed[target] += 1

    async def run(self, window: Window) -> dict[str, int]:
        produced = await super().run(window)
        for target, count in self.owed.items():
            produced[f"{MENTIONS_KEY} {target} {self.group}"] = count
        return produced

    def result(self) -> Tally:
        for key, sent_ns in self.sent_at.items():
            self.tally.marks[f"{SENT_AT} {key}"] = sent_ns
        return self.tally


class NotifiedSocket(ListenerSocket):
    """A target's socket: every message is decoded (there is little traffic); notifications counted."""

    group: Notified

    def on_event(self, message: dict[str, Any]) -> None:
        if message.get("name") == "notification":
            self.group.notified(self.state, message.get("data") or {}, time.time_ns())


class Notified(Listeners):
    """Targets: one authenticated socket each in ``room``, counting ``mention`` notifications.

    Extra spec keys: ``usernames`` (one per token), ``about_room`` (the room the
    mentions are made in; a notification about anything else is counted apart).
    """

    socket_class = NotifiedSocket

    def __init__(self, spec: dict[str, Any], ctx: WorkerContext) -> None:
        super().__init__(spec, ctx)
        self.usernames: list[str] = list(spec["usernames"])
        self.about_room: str = spec["about_room"]
        # Per client: message_id -> (times seen, first arrival).
        self.seen: list[dict[str, tuple[int, int]]] = [{} for _ in self.clients]

    def notified(self, state: ClientState, note: dict[str, Any], now_ns: int) -> None:
        counters = self.tally.counters
        about = note.get("data") or {}
        if note.get("type") != "mention" or about.get("room_id") != self.about_room:
            counters["other_notifications"] += 1
            return
        counters["notifications"] += 1
        message_id = str(about.get("message_id"))
        seen = self.seen[state.index]
        count, first_ns = seen.get(message_id, (0, now_ns))
        seen[message_id] = (count + 1, first_ns)

    async def drain(self, targets: dict[str, int], deadline_ns: int) -> None:
        owed = [0] * len(self.clients)
        index_of = {name: i for i, name in enumerate(self.usernames)}
        for key, count in targets.items():
            kind, _, rest = key.partition(" ")
            username = rest.partition(" ")[0]
            if kind == MENTIONS_KEY and username in index_of:
                owed[index_of[username]] += count
        while time.time_ns() < deadline_ns:
            if all(
                len(self.seen[state.index]) >= owed[state.index] or not self._can_progress(state)
                for state in self.clients
            ):
                break
            await asyncio.sleep(0.01)
        await super().drain(targets, deadline_ns)

    def result(self) -> Tally:
        tally = super().result()
        for state, seen in zip(self.clients, self.seen, strict=True):
            username = self.usernames[state.index]
            for message_id, (count, first_ns) in seen.items():
                tally.marks[f"{NOTIFIED_AT} {message_id} {username}"] = first_ns
                tally.counters[f"{NOTIFIED} {message_id} {username}"] += count
        return tally
