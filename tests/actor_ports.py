"""In-memory stand-ins for a room actor's ports (``actors/ports.py``), for tests that run a real
actor without Postgres or sockets: a journal that commits at once or when released, and a
subscriber that decodes every frame it is sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import trio

from protocol.codec import Encoding
from protocol.events import Event
from tests.frames import unframe


class _NoProgress:
    def notes_for(self, room_id: str, seq: int) -> list[tuple[str, dict[str, Any]]]:
        return []

    def results_for(self, room_id: str, seq: int) -> list[Any]:
        return []


class CommittedTicket(_NoProgress):
    settled = True

    async def wait(self) -> None:
        return None


class HeldTicket(_NoProgress):
    def __init__(self, released: trio.Event) -> None:
        self._released = released

    @property
    def settled(self) -> bool:
        return self._released.is_set()

    async def wait(self) -> None:
        await self._released.wait()


class _Journal:
    def reopen(self, room_id: str, epoch: int | None = None) -> None:
        return None

    def disown(self, room_id: str, epoch: int) -> None:
        return None

    def record_presence(self, room_id: str, user_id: str | None, at: int, present: bool) -> None:
        return None


class MemoryJournal(_Journal):
    """Commits at once; ``done`` is set once ``until_ended`` tracks have ended."""

    def __init__(self, until_ended: int) -> None:
        self.events: list[Event] = []
        self._until_ended = until_ended
        self.done = trio.Event()

    def submit(self, room_id: str, events: list[Event], snapshot: Any = None) -> CommittedTicket:
        self.events.extend(events)
        if sum(1 for e in self.events if e.name == "track.ended") >= self._until_ended:
            self.done.set()
        return CommittedTicket()


class HeldJournal(_Journal):
    """Commits nothing until released: the room's decided ops wait for it."""

    def __init__(self) -> None:
        self._released = trio.Event()
        self.submitted = trio.Event()

    def submit(self, room_id: str, events: list[Event], snapshot: Any = None) -> HeldTicket:
        self.submitted.set()
        return HeldTicket(self._released)

    def release(self) -> None:
        self._released.set()


class Inbox:
    """A subscriber that decodes every frame it is sent."""

    encoding = Encoding.JSON

    def __init__(self, conn_id: int) -> None:
        self.conn_id = conn_id
        self.messages: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self._arrived = trio.Event()

    def send_frame(self, frame: bytes) -> None:
        self.messages.extend(json.loads(payload) for payload in unframe(frame))
        self._arrived.set()

    async def wait_for(self, found: Callable[[dict[str, Any]], bool]) -> None:
        """Until a message ``found`` accepts has arrived (the room writes in coalesced flushes)."""
        while not any(found(m) for m in self.messages):
            self._arrived = trio.Event()
            await self._arrived.wait()

    async def wait_for_seq(self, seq: int) -> None:
        await self.wait_for(lambda m: m.get("seq") == seq)

    def close(self, code: int, reason: str = "") -> None:
        self.closed = (code, reason)
