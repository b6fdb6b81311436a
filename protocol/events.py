"""Room events: what the room core emits, the journal stores and clients receive."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class EventKind:
    """What the server knows of one room event by its name alone."""

    durable: bool  # changes durable room state: carries a ``seq``, is journaled, replayed and resumed
    sent: bool = True  # False: moves state inside the server only, never sent to anyone


# Every room event, in one place (PROTOCOL.md "Which events carry seq"). The rules may emit only
# these (``actors.decision.EventBuilder`` checks); tests/test_event_catalog.py proves that every
# table keyed by event name (apply, journal rows, what showing one does) names only these.
EVENTS: dict[str, EventKind] = {
    "chat.message": EventKind(durable=True),
    "chat.deleted": EventKind(durable=True),
    "chat.reaction": EventKind(durable=True),
    "chat.pinned": EventKind(durable=True),
    "chat.unpinned": EventKind(durable=True),
    "chat.reactions_cleared": EventKind(durable=True),
    "room.updated": EventKind(durable=True),
    "room.deleted": EventKind(durable=True),
    "session.started": EventKind(durable=True),
    "session.updated": EventKind(durable=True),
    "session.ended": EventKind(durable=True),
    "dj.rotation": EventKind(durable=True),
    "queue.updated": EventKind(durable=True),
    "track.started": EventKind(durable=True),
    "track.ended": EventKind(durable=True),
    "user.muted": EventKind(durable=True),
    "user.unmuted": EventKind(durable=True),
    "user.kicked": EventKind(durable=True),
    "user.banned": EventKind(durable=True),
    "user.unbanned": EventKind(durable=True),
    "presence.join": EventKind(durable=False),
    "presence.leave": EventKind(durable=False),
    "vote.tally": EventKind(durable=False),
    "socket.open": EventKind(durable=False, sent=False),
    "socket.close": EventKind(durable=False, sent=False),
    "socket.role": EventKind(durable=False, sent=False),
    "dj.seen": EventKind(durable=False, sent=False),
}

# Events that change durable room state and so carry a ``seq`` (PROTOCOL.md).
DURABLE_EVENTS = frozenset(name for name, kind in EVENTS.items() if kind.durable)
# Events that only move state inside the server and are never sent to anyone.
INTERNAL_EVENTS = frozenset(name for name, kind in EVENTS.items() if not kind.sent)


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
