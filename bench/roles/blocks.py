"""Personal blocks in fan-out (``fanout --blockers N``).

``blockers`` are listeners that are registered users, each blocking the run's senders
(``POST /api/v1/me/blocks`` at set-up, before they connect), so every ``chat.message`` of
those senders reaches them as a stub ``{"id", "user_id", "hidden": true}`` with the message's
``seq``. A stub is their delivery of that message: it counts in ``deliveries`` and in the seq
check like any other. They decode every message (there are few of them) and count:

- ``stubs``: stubs of a blocked author's messages (owed: acked messages x blockers);
- ``blocked_full``: a blocked author's message received in full: the block leaked;
- ``stubs_malformed``: a stub with other keys, or of an author they do not block;
- ``stubs_unexpected``: a stub while blocking nobody (the control run, ``--no-blocks``);
  guests count the same in :mod:`bench.roles.listeners`.

A stub carries no text, so no send stamp: its latency comes from joining, after the run, each
stub's arrival (mark ``stub_at <seq> <client>``) with the send time its sender recorded when
the message was acked (mark ``sent_seq <seq>``, by ``stamp_senders``): the series
``delivery (stub)``.
"""

from __future__ import annotations

import time
from typing import Any

from bench.chatwire import decode, stamp_of
from bench.roles.base import WorkerContext
from bench.roles.listeners import Listeners, ListenerSocket
from bench.roles.senders import Senders, SenderSocket
from bench.stats import Tally

STUB_AT = "stub_at"
SENT_SEQ = "sent_seq"
STUB_KEYS = frozenset({"id", "user_id", "hidden"})


class BlockerSocket(ListenerSocket):
    """Decodes everything: chat messages are checked against what this user blocks."""

    group: Blockers

    def on_message(self, payload: bytes) -> None:
        message = decode(payload)
        if message.get("type") != "event" or message.get("name") != "chat.message":
            self.on_decoded(message)
            return
        group = self.group
        seq = message.get("seq")
        if isinstance(seq, int) and not group.check_seq(self.state, seq):
            return
        now = time.time_ns()
        group.deliveries += 1
        group.last_delivery_ns = now
        data = message.get("data") or {}
        counters = group.tally.counters
        author = data.get("user_id")
        if data.get("hidden") is True:
            if not group.blocked:
                counters["stubs_unexpected"] += 1
            elif set(data) != STUB_KEYS or author not in group.blocked or not isinstance(seq, int):
                counters["stubs_malformed"] += 1
            else:
                counters["stubs"] += 1
                group.stub_at[f"{STUB_AT} {seq} {group.ctx.index}.{self.state.index}"] = now
            return
        if author in group.blocked:
            counters["blocked_full"] += 1
        sent_ns = stamp_of(data.get("text"))
        if sent_ns:
            group.latencies.append(now - sent_ns)


class Blockers(Listeners):
    """Registered listeners (``tokens``) who block the users in ``blocked`` (user ids; empty in
    the control run, where they listen without blocking anyone)."""

    socket_class = BlockerSocket

    def __init__(self, spec: dict[str, Any], ctx: WorkerContext) -> None:
        super().__init__(spec, ctx)
        self.blocked: frozenset[str] = frozenset(spec.get("blocked") or ())
        self.stub_at: dict[str, int] = {}

    def result(self) -> Tally:
        tally = super().result()
        tally.counters["blockers"] = len(self.clients) if self.blocked else 0
        tally.counters["registered_listeners"] = len(self.clients)
        tally.marks.update(self.stub_at)
        return tally


class StampSenders(Senders):
    """Senders that also keep each acked message's send time by its ``seq`` (for stub latency)."""

    def __init__(self, spec: dict[str, Any], ctx: WorkerContext) -> None:
        super().__init__(spec, ctx)
        self.sent_seq: dict[int, int] = {}

    def acked(self, socket: SenderSocket, ref: int, sent_ns: int, data: dict[str, Any]) -> None:
        seq = data.get("seq")
        if isinstance(seq, int):
            self.sent_seq[seq] = sent_ns

    def result(self) -> Tally:
        for seq, sent_ns in self.sent_seq.items():
            self.tally.marks[f"{SENT_SEQ} {seq}"] = sent_ns
        return self.tally


def stub_latencies(marks: dict[str, int]) -> tuple[list[int], int]:
    """Each stub's arrival minus its message's send time; and how many stubs had no send time."""
    sent: dict[str, int] = {}
    arrivals: list[tuple[str, int]] = []
    for key, value in marks.items():
        kind, _, rest = key.partition(" ")
        if kind == SENT_SEQ:
            sent[rest] = value
        elif kind == STUB_AT:
            arrivals.append((rest.partition(" ")[0], value))
    latencies = [at - sent[seq] for seq, at in arrivals if seq in sent]
    return latencies, len(arrivals) - len(latencies)
