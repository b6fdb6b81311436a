"""What the actors need from the outside, as protocols (actors import no storage or server code)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from protocol.codec import Encoding
from protocol.events import Event


class Subscriber(Protocol):
    """A socket as a room actor sees it: frames in, never awaited."""

    conn_id: int
    encoding: Encoding

    def send_frame(self, frame: bytes) -> None:
        """Queue one or more complete WebSocket frames without blocking (dropped if the socket is gone)."""

    def close(self, code: int, reason: str = "") -> None:
        """Start closing the socket with ``code`` without blocking."""


class Ticket(Protocol):
    @property
    def settled(self) -> bool: ...

    async def wait(self) -> None:
        """Return when committed; raise if the commit failed."""

    def results_for(self, room_id: str, seq: int) -> list[Any]:
        """Progress objects (user_id, points, reasons, total, level, level_ups, credits_awarded)."""
        ...

    def notes_for(self, room_id: str, seq: int) -> list[tuple[str, dict[str, Any]]]:
        """The notifications the event created, as (user id, Notification)."""
        ...


# Sends a private message to every open socket of a user, in every room.
Notify = Callable[[str, dict[str, Any]], None]

# Hands what a room showed (after commit) to its members on other nodes, never blocking:
# (room id, lease epoch, [(event as on the wire, its seq or None, conn id it skips)], close code).
# A close code means the room stops here: its members elsewhere close with it and resume.
Relay = Callable[[str, int, list[tuple[dict[str, Any], int | None, int | None]], int | None], None]


class Journal(Protocol):
    def submit(
        self, room_id: str, events: list[Event], snapshot: tuple[int, dict[str, Any]] | None = None
    ) -> Ticket: ...

    def reopen(self, room_id: str, epoch: int | None = None) -> None:
        """Accept the room's work again after a failed commit (its actor was reloaded), fenced
        on the lease ``epoch`` from now on."""

    def disown(self, room_id: str, epoch: int) -> None:
        """The room's actor stopped at ``epoch``: nothing more is written for it."""

    def record_presence(self, room_id: str, user_id: str | None, at: int, present: bool) -> None:
        """Note a user's first socket coming in (``present``) or last one going (``user_id`` None:
        everyone, the actor stopped); written with a later batch, never waited for."""


class Seed(Protocol):
    """A room as stored: its row, the newest snapshot, and the events after it."""

    @property
    def room(self) -> dict[str, Any]: ...

    @property
    def pinned_message_ids(self) -> list[str]: ...

    @property
    def snapshot(self) -> dict[str, Any] | None: ...

    @property
    def events(self) -> list[Event]: ...


class Ownership(Protocol):
    """Room leases as the registry and its actors use them (``server/cluster/node.py``)."""

    async def claim(self, room_id: str) -> int | None:
        """The room's new lease epoch if this node may own it now; None if another node does."""
        ...

    async def release(self, room_id: str, epoch: int) -> None:
        """Hand the room's lease back (its actor stopped cleanly)."""

    def fresh(self) -> bool:
        """Whether this node's leases were confirmed within the TTL (an owner paused for longer
        may have lost them: it shows nothing until the next renewal says)."""
        ...

    async def renewed(self) -> None:
        """Return after the next renewal (rooms it found lost are dropped before it returns)."""
