"""The bus between nodes, as a port with two implementations.

``LocalBus`` is in-process: ``seda serve`` alone uses it (nothing to talk to, no NATS), and
tests join several in-process connections to one ``LocalHub``. ``NatsBus``
(``server/cluster/nats_bus.py``) is NATS, for several processes or machines. Both have the
semantics of core NATS that the cluster relies on, and the same tests check both:

- subjects are dot-separated tokens; ``*`` matches one token, ``>`` the rest;
- a connection never receives what it published itself (NATS ``no_echo``);
- at most once: a message may be lost (the bus holds nothing; Postgres is the truth);
- ``request`` to a subject nobody subscribes to fails at once with ``NoResponders``.

``publish`` never blocks: messages are sent in the order published, batched per wake-up.
A subscriber's ``deliver`` is called in trio, must not block, and sees messages in order.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import trio


class BusError(Exception):
    """The bus could not carry a request (retryable)."""


class NoResponders(BusError):
    """Nobody subscribes to the subject: for ``room.<id>.ops``, nobody owns the room."""


class BusTimeout(BusError):
    """No reply within the timeout."""


@dataclass(frozen=True, slots=True)
class BusMessage:
    subject: str
    data: bytes
    reply: str | None = None


Deliver = Callable[[BusMessage], None]


class Subscription(Protocol):
    async def unsubscribe(self) -> None: ...


class Bus(Protocol):
    def publish(self, subject: str, data: bytes) -> None:
        """Send without blocking (dropped if the bus is down)."""

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        """The first reply; NoResponders, BusTimeout or BusError otherwise."""
        ...

    async def subscribe(self, subject: str, deliver: Deliver) -> Subscription: ...

    async def close(self) -> None: ...


def matches(pattern: str, subject: str) -> bool:
    """Whether a NATS subject pattern (``*`` one token, ``>`` the rest) matches ``subject``."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for i, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > i
        if i >= len(tokens) or (token != "*" and token != tokens[i]):
            return False
    return len(tokens) == len(wanted)


class LocalHub:
    """Connects the in-process buses of one process (one per node in a test)."""

    def __init__(self) -> None:
        self._subs: dict[int, tuple[LocalBus, str, Deliver]] = {}
        self._ids = itertools.count(1)
        self._open = 0  # buses connected to this hub

    def _deliver(self, sender: LocalBus, message: BusMessage) -> int:
        if self._open < 2:
            return 0  # alone (``seda serve`` by itself): nobody else hears, and it never echoes
        delivered = 0
        for bus, pattern, deliver in list(self._subs.values()):
            if bus is not sender and not bus.closed and matches(pattern, message.subject):
                deliver(message)
                delivered += 1
        return delivered


class _LocalSubscription:
    def __init__(self, hub: LocalHub, sid: int) -> None:
        self._hub, self._sid = hub, sid

    async def unsubscribe(self) -> None:
        self._hub._subs.pop(self._sid, None)


class LocalBus:
    def __init__(self, hub: LocalHub | None = None) -> None:
        self._hub = hub or LocalHub()
        self._hub._open += 1
        self._inbox = itertools.count(1)
        self.closed = False

    def publish(self, subject: str, data: bytes) -> None:
        if not self.closed:
            self._hub._deliver(self, BusMessage(subject, data))

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        if self.closed:
            raise BusError("the bus is closed")
        inbox = f"_INBOX.{id(self)}.{next(self._inbox)}"
        got: list[bytes] = []
        answered = trio.Event()

        def on_reply(message: BusMessage) -> None:
            if not got:
                got.append(message.data)
                answered.set()

        sid = next(self._hub._ids)
        self._hub._subs[sid] = (self, inbox, on_reply)
        try:
            if self._hub._deliver(self, BusMessage(subject, data, inbox)) == 0:
                raise NoResponders(subject)
            with trio.move_on_after(timeout):
                await answered.wait()
            if not got:
                raise BusTimeout(subject)
            return got[0]
        finally:
            self._hub._subs.pop(sid, None)

    async def subscribe(self, subject: str, deliver: Deliver) -> Subscription:
        sid = next(self._hub._ids)
        self._hub._subs[sid] = (self, subject, deliver)
        return _LocalSubscription(self._hub, sid)

    async def close(self) -> None:
        if not self.closed:
            self._hub._open -= 1
        self.closed = True
        for sid in [sid for sid, (bus, _, _) in self._hub._subs.items() if bus is self]:
            del self._hub._subs[sid]
