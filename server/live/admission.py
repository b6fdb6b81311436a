"""Overload without collapse: while a room's oldest unanswered request has waited longer than
``behind_limit_s``, its chat is refused with ``rate_limited`` and ``retry_after_ms``, instead of
the server queueing seconds of work that every later acknowledgement waits behind.

The queue that makes acknowledgements late is the room's: requests in its actor's inbox, and
decided ones waiting for their commit (a socket's reader hands each frame on at once, so frames
do not wait in the socket). The actor numbers each request as it is queued and the publisher
crosses it off once it is answered, so :meth:`actors.room_actor.RoomActor.waiting_s` is the age
of the oldest one still in the room: its queueing delay, as CoDel measures a router's. It is 0
when the room has nothing queued, so a room with room to spare refuses nothing however busy
the process is (a loaded server batches more per wake-up and carries more than at half load).

Only chat (send, react, unreact) is shed: it is most of the load and safe to retry. Votes, DJ
and moderation ops, pings, joins and leaves are never refused for load. A refused client is
told to come back after about as long as the room's queue has been waiting (at least
``MIN_RETRY_MS``, at most ``retry_after_ms``), spread by ±``JITTER`` so that the refused do not
all return at once (PROTOCOL.md: ``rate_limited`` carries ``retry_after_ms``): long enough for
the queue to drain, short enough that the server does not sit idle while they wait.

One process: :data:`ADMISSION` is module-wide, off until the runtime turns it on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

from protocol.errors import RateLimited

SHEDDABLE_OPS = frozenset({"chat.send", "chat.react", "chat.unreact"})
JITTER = 0.5
MIN_RETRY_MS = 100


class Room(Protocol):
    def waiting_s(self) -> float:
        """How long the room's oldest unanswered request has waited (0: nothing queued)."""
        ...


@dataclass
class Admission:
    behind_limit_s: float = 0.25
    retry_after_ms: int = 1000  # the longest a refused client is asked to wait
    enabled: bool = False
    refused: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def refusal(self, op: str, waited_s: float) -> int | None:
        """None to take ``op`` into a room whose oldest request has waited ``waited_s``; else the ms
        after which the client may try again."""
        if not self.enabled or op not in SHEDDABLE_OPS or waited_s <= self.behind_limit_s:
            return None
        self.refused += 1
        base = min(self.retry_after_ms, max(MIN_RETRY_MS, waited_s * 1000))
        spread = 1.0 + JITTER * (2 * self.rng.random() - 1)
        return max(1, round(base * spread))


ADMISSION = Admission()


def admit(op: str, room: Room) -> None:
    """Raise ``rate_limited`` (with ``retry_after_ms``) if ``op`` is to be shed now."""
    if op not in SHEDDABLE_OPS or not ADMISSION.enabled:
        return
    wait = ADMISSION.refusal(op, room.waiting_s())
    if wait is not None:
        raise RateLimited("the room is behind: try again later", retry_after_ms=wait)
