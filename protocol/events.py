"""Room events: what the room core emits, the journal stores and clients receive."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Events that change durable room state and so carry a ``seq`` (PROTOCOL.md).
DURABLE_EVENTS = frozenset(
    {
        "chat.message",
        "chat.deleted",
        "chat.reaction",
        "chat.pinned",
        "chat.unpinned",
        "chat.reactions_cleared",
        "room.updated",
        "room.deleted",
        "session.started",
        "session.ended",
        "dj.rotation",
        "queue.updated",
        "track.started",
        "track.ended",
        "user.muted",
        "user.unmuted",
        "user.kicked",
        "user.banned",
        "user.unbanned",
    }
)


@dataclass(slots=True)
class Event:
    """One event of one room.

    ``data`` is exactly what clients see. ``meta`` holds what the server needs
    to replay the event but clients must not see (a chat nonce, say); it is
    journaled with the event and never sent.
    """

    name: str
    data: dict[str, Any]
    at: int
    seq: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def durable(self) -> bool:
        return self.seq is not None

    def wire(self) -> dict[str, Any]:
        """The message clients receive."""
        message: dict[str, Any] = {"type": "event", "name": self.name}
        if self.seq is not None:
            message["seq"] = self.seq
        message["at"] = self.at
        message["data"] = self.data
        return message

    def to_journal(self) -> dict[str, Any]:
        return {"data": self.data, "meta": self.meta} if self.meta else {"data": self.data}

    @classmethod
    def from_journal(cls, name: str, seq: int, at: int, payload: dict[str, Any]) -> Event:
        return cls(name=name, data=payload["data"], at=at, seq=seq, meta=payload.get("meta", {}))


def private_event(name: str, at: int, data: dict[str, Any]) -> dict[str, Any]:
    """An event for one user's sockets only: no ``seq`` (PROTOCOL.md "Events")."""
    return {"type": "event", "name": name, "at": at, "data": data}
