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


class Journal(Protocol):
    def submit(
        self, room_id: str, events: list[Event], snapshot: tuple[int, dict[str, Any]] | None = None
    ) -> Ticket: ...

    def reopen(self, room_id: str) -> None:
        """Accept the room's work again after a failed commit (its actor was reloaded)."""

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
