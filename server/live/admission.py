"""Overload without collapse: when this process's loop is saturated, refuse the ops that make
the load (chat) with ``rate_limited`` and ``retry_after_ms`` instead of queueing seconds of work.

A server past its capacity cannot see its backlog: the frames wait in the kernel's socket
buffers, unread, and every acknowledgement comes later than the one before. What it can see is
that its event loop never waits for I/O any more. :class:`LoopBusy` (a trio instrument) adds up
the wall time the loop spends waiting in the I/O poll; the share of the rest is how busy the
loop is. Postgres or another process taking the core while the loop has work counts as busy:
that is time the loop could not wait either.

:class:`Shedder` (pure: it is given the busy share of each interval) turns that into a share
of sheddable ops to refuse. Past ``busy_limit`` the share rises by ``STEP_UP`` per interval, and
below ``busy_limit - HYSTERESIS`` it falls by ``STEP_DOWN``; in between it holds. A refused
client is told to come back in ``retry_after_ms``, spread by ±``JITTER`` so that the refused do
not all return at once. Well-behaved clients (PROTOCOL.md: ``rate_limited`` carries
``retry_after_ms``) thus bring the offered load down to what the process can carry, and what
it does accept is acknowledged promptly.

Only chat (send, react, unreact) is shed: it is most of the load and safe to retry. Votes, DJ
and moderation ops, pings and leaves are never refused for load. One process, one loop, one
shedder: :data:`ADMISSION` is module-wide, and sheds nothing until :func:`watch_load` runs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from protocol.errors import RateLimited

SHEDDABLE_OPS = frozenset({"chat.send", "chat.react", "chat.unreact"})
INTERVAL_S = 0.1
STEP_UP = 0.25
STEP_DOWN = 0.1
HYSTERESIS = 0.07
JITTER = 0.5


class LoopBusy(trio.abc.Instrument):
    """Wall time the trio loop spent waiting in its I/O poll, since the last :meth:`take`."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._idle = 0.0
        self._waiting_since = 0.0
        self._since = clock()

    def before_io_wait(self, timeout: float) -> None:
        self._waiting_since = self._clock()

    def after_io_wait(self, timeout: float) -> None:
        self._idle += self._clock() - self._waiting_since

    def take(self) -> float:
        """The busy share (0..1) of the wall time since the last call."""
        now = self._clock()
        elapsed, idle = now - self._since, self._idle
        self._since, self._idle = now, 0.0
        if elapsed <= 0:
            return 0.0
        return min(1.0, max(0.0, 1.0 - idle / elapsed))


@dataclass
class Shedder:
    """How much sheddable work to refuse, from the loop's busy share interval by interval.

    ``busy_limit`` 1.0 never sheds (the share cannot pass it)."""

    busy_limit: float = 0.97
    retry_after_ms: int = 1000
    share: float = 0.0  # of sheddable ops to refuse now
    busy: float = 0.0  # the last interval's
    refused: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def observe(self, busy: float) -> None:
        self.busy = busy
        if busy > self.busy_limit:
            self.share = min(1.0, self.share + STEP_UP)
        elif busy < self.busy_limit - HYSTERESIS:
            self.share = max(0.0, self.share - STEP_DOWN)

    def refusal(self, op: str) -> int | None:
        """None to take ``op``; else the ms after which the client may try again."""
        if self.share <= 0.0 or op not in SHEDDABLE_OPS:
            return None
        if self.share < 1.0 and self.rng.random() >= self.share:
            return None
        self.refused += 1
        spread = 1.0 + JITTER * (2 * self.rng.random() - 1)
        return max(1, round(self.retry_after_ms * spread))


ADMISSION = Shedder()


def admit(op: str) -> None:
    """Raise ``rate_limited`` (with ``retry_after_ms``) if this process is shedding ``op`` now."""
    wait = ADMISSION.refusal(op)
    if wait is not None:
        raise RateLimited("the server is busy: try again later", retry_after_ms=wait)


async def watch_load(shedder: Shedder = ADMISSION, interval_s: float = INTERVAL_S) -> None:
    """Measure the loop's busy share every ``interval_s`` and feed it to ``shedder`` (runs until
    cancelled; the shedder then stops refusing)."""
    probe = LoopBusy()
    trio.lowlevel.add_instrument(probe)
    try:
        while True:
            await trio.sleep(interval_s)
            shedder.observe(probe.take())
    finally:
        trio.lowlevel.remove_instrument(probe)
        shedder.share = 0.0
