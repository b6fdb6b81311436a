"""Overload without collapse: a socket whose frames have been waiting for the server longer
than ``behind_limit_s`` gets its chat refused with ``rate_limited`` and ``retry_after_ms``,
instead of the server queueing seconds of work that every later acknowledgement waits behind.

A server past its capacity cannot see its backlog directly: the frames wait in the kernel's
socket buffers, unread. What it can see is each socket's pace against the loop's. A socket
is read one frame per turn of the trio loop at most; one that has a frame ready at every turn
(:class:`Backlog`: no turn of the loop without one, give or take a turn for the hand-over from
trio-websocket's reader) is sending at least as fast as the server gets to it, so its newest
frame waits behind the older ones. Once that has lasted ``behind_limit_s`` without a break,
its sheddable ops are refused, cheaply (before the room is involved), until a break shows it
has caught up. Its stale frames are answered at once, then the client's pause lets it catch up.

The same test cannot fire for a server with room to spare: a socket that sends faster than its
share is served in bursts and falls behind only while the loop has no time for it. How busy the
process is does not decide it either: a loaded server batches more per turn (group commit,
coalesced writes) and carries more than at half load, so "nearly always busy" is not overload.

Only chat (send, react, unreact) is shed: it is most of the load and safe to retry. Votes, DJ
and moderation ops, pings and leaves are never refused for load. A refused client is told to
come back in ``retry_after_ms``, spread by ±``JITTER`` so that the refused do not all return at
once (PROTOCOL.md: ``rate_limited`` carries ``retry_after_ms``).

One process, one loop: :data:`ADMISSION` is module-wide. It refuses nothing until
:func:`watch_load` runs (it counts the loop's turns).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import trio

from protocol.errors import RateLimited

SHEDDABLE_OPS = frozenset({"chat.send", "chat.react", "chat.unreact"})
JITTER = 0.5
# Frames handed from trio-websocket's reader task to the socket's own task may skip a turn.
TURN_SLACK = 2


class LoopTurns(trio.abc.Instrument):
    """Counts the trio loop's turns: one poll for I/O each."""

    def __init__(self) -> None:
        self.turns = 0

    def before_io_wait(self, timeout: float) -> None:
        self.turns += 1


@dataclass
class Admission:
    behind_limit_s: float = 0.25
    retry_after_ms: int = 1000
    loop: LoopTurns | None = None  # None: not watching, nothing is refused
    refused: int = 0
    rng: random.Random = field(default_factory=random.Random)

    @property
    def turn(self) -> int:
        return self.loop.turns if self.loop is not None else 0

    def refusal(self, op: str, behind_s: float) -> int | None:
        """None to take ``op`` from a socket ``behind_s`` behind; else the ms after which the
        client may try again."""
        if self.loop is None or op not in SHEDDABLE_OPS or behind_s <= self.behind_limit_s:
            return None
        self.refused += 1
        spread = 1.0 + JITTER * (2 * self.rng.random() - 1)
        return max(1, round(self.retry_after_ms * spread))


ADMISSION = Admission()


class Backlog:
    """How long one socket has had a frame ready at every turn of the loop."""

    __slots__ = ("_last_turn", "_since")

    def __init__(self) -> None:
        self._last_turn = -TURN_SLACK - 1
        self._since = 0.0

    def frame(self, turn: int, now: float) -> None:
        """A frame was read at loop turn ``turn``, time ``now``."""
        if turn - self._last_turn > TURN_SLACK:
            self._since = now  # a turn went by without one: it had caught up
        self._last_turn = turn

    def behind(self, now: float) -> float:
        return now - self._since


def note_frame(backlog: Backlog) -> None:
    """The socket owning ``backlog`` just read a frame."""
    backlog.frame(ADMISSION.turn, trio.current_time())


def admit(op: str, backlog: Backlog) -> None:
    """Raise ``rate_limited`` (with ``retry_after_ms``) if ``op`` is to be shed now."""
    wait = ADMISSION.refusal(op, backlog.behind(trio.current_time()))
    if wait is not None:
        raise RateLimited("the server is behind on this connection: try again later", retry_after_ms=wait)


async def watch_load(admission: Admission = ADMISSION) -> None:
    """Count the loop's turns for ``admission`` until cancelled (it then refuses nothing)."""
    loop = LoopTurns()
    trio.lowlevel.add_instrument(loop)
    admission.loop = loop
    try:
        await trio.sleep_forever()
    finally:
        admission.loop = None
        trio.lowlevel.remove_instrument(loop)
