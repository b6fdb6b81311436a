"""What ``decide`` returns, and the helper that numbers its events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from actors.room_state import RoomState
from protocol.events import EVENTS, Event


@dataclass
class Decision:
    events: list[Event] = field(default_factory=list)
    reply: dict[str, Any] | None = None


class EventBuilder:
    """Collects a decision's events, numbering the durable ones after ``state.seq``."""

    def __init__(self, state: RoomState, now: int) -> None:
        self.state = state
        self.now = now
        self.events: list[Event] = []
        self._next_seq = state.seq + 1

    def durable(self, name: str, data: dict[str, Any], meta: dict[str, Any] | None = None) -> Event:
        assert EVENTS[name].durable, f"{name} is not a durable event"
        event = Event(name, data, self.now, self._next_seq, meta or {})
        self._next_seq += 1
        self.events.append(event)
        return event

    def ephemeral(self, name: str, data: dict[str, Any], meta: dict[str, Any] | None = None) -> Event:
        assert not EVENTS[name].durable, f"{name} is a durable event"
        event = Event(name, data, self.now, None, meta or {})
        self.events.append(event)
        return event
