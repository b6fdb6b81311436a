"""The bus over NATS (``nats-py``, an asyncio client, run through trio-asyncio).

Crossing the trio/asyncio bridge costs tens of µs, so publishing crosses it once per wake-up
of one flusher task, for everything published since, not once per message. Received messages
are handed to trio from nats-py's callbacks without a crossing (trio-asyncio runs asyncio's
callbacks inside the trio run, so a non-blocking trio call is allowed there).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections import deque
from typing import Any

import nats
import nats.errors
import trio
import trio_asyncio
from nats.aio.client import Client
from nats.aio.msg import Msg

from server.cluster.bus import BusError, BusMessage, BusTimeout, Deliver, NoResponders, Subscription

log = logging.getLogger("seda.bus")

CONNECT_TIMEOUT_S = 5.0
NO_RESPONDERS = "503"  # the status NATS answers a request with when nobody subscribes


class _NatsSubscription:
    def __init__(self, sub: Any) -> None:
        self._sub = sub

    async def unsubscribe(self) -> None:
        with contextlib.suppress(
            nats.errors.Error, OSError
        ):  # the connection is gone: so is the subscription
            await trio_asyncio.aio_as_trio(self._sub.unsubscribe)()


class _Waiter:
    __slots__ = ("data", "done", "no_responders")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.data = b""
        self.no_responders = False


class NatsBus:
    """Requests go out with the publishes (no bridge crossing of their own) and come back on
    one inbox subscription per connection; NATS's "no responders" status (503) answers a
    request nobody subscribes to."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._outgoing: deque[tuple[str, bytes, str]] = deque()
        self._wake = trio.Event()
        self.closed = False
        self._inbox = nc.new_inbox()
        self._tokens = itertools.count(1)
        self._waiting: dict[str, _Waiter] = {}

    @classmethod
    async def connect(cls, url: str, *, name: str = "seda") -> NatsBus:
        """Connected (or BusError); it reconnects by itself for as long as it runs."""

        async def on_disconnect() -> None:
            log.warning("NATS connection lost; reconnecting")

        async def on_reconnect() -> None:
            log.info("NATS connection back")

        async def on_error(error: Exception) -> None:
            log.debug("NATS: %s", error)

        try:
            nc = await trio_asyncio.aio_as_trio(nats.connect)(
                url,
                name=name,
                no_echo=True,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.25,
                connect_timeout=CONNECT_TIMEOUT_S,
                ping_interval=5,
                max_outstanding_pings=2,
                disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect,
                error_cb=on_error,
            )
        except (nats.errors.Error, OSError) as exc:
            raise BusError(f"cannot reach NATS at {url}: {exc}") from exc
        bus = cls(nc)
        await bus._listen_for_replies()
        return bus

    async def _listen_for_replies(self) -> None:
        async def on_reply(msg: Msg) -> None:
            waiter = self._waiting.pop(msg.subject.rpartition(".")[2], None)
            if waiter is None:
                return  # its requester gave up
            if msg.headers and msg.headers.get("Status") == NO_RESPONDERS:
                waiter.no_responders = True
            else:
                waiter.data = bytes(msg.data)
            waiter.done.set()

        await trio_asyncio.aio_as_trio(self._nc.subscribe)(f"{self._inbox}.*", cb=on_reply)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The flusher: everything published since the last wake-up, in one bridge crossing."""
        task_status.started()
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            batch = list(self._outgoing)
            self._outgoing.clear()
            if batch:
                await trio_asyncio.aio_as_trio(self._send)(batch)

    async def _send(self, batch: list[tuple[str, bytes, str]]) -> None:
        for subject, data, reply in batch:
            try:
                await self._nc.publish(subject, data, reply=reply)
            except (nats.errors.Error, OSError) as exc:  # at most once: dropped
                log.debug("NATS publish to %s dropped: %s", subject, exc)

    def publish(self, subject: str, data: bytes) -> None:
        if not self.closed:
            self._outgoing.append((subject, data, ""))
            self._wake.set()

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        if self.closed:
            raise BusError("the bus is closed")
        if not self._nc.is_connected:
            raise BusError("NATS is not connected")
        token = str(next(self._tokens))
        waiter = self._waiting[token] = _Waiter()
        try:
            self._outgoing.append((subject, data, f"{self._inbox}.{token}"))
            self._wake.set()
            with trio.move_on_after(timeout):
                await waiter.done.wait()
        finally:
            self._waiting.pop(token, None)
        if not waiter.done.is_set():
            raise BusTimeout(subject)
        if waiter.no_responders:
            raise NoResponders(subject)
        return waiter.data

    async def subscribe(self, subject: str, deliver: Deliver) -> Subscription:
        async def on_message(msg: Msg) -> None:
            deliver(BusMessage(msg.subject, bytes(msg.data), msg.reply or None))

        try:
            sub = await trio_asyncio.aio_as_trio(self._nc.subscribe)(subject, cb=on_message)
        except (nats.errors.Error, OSError) as exc:
            raise BusError(str(exc) or type(exc).__name__) from None
        return _NatsSubscription(sub)

    async def close(self) -> None:
        self.closed = True
        with contextlib.suppress(nats.errors.Error, OSError):
            await trio_asyncio.aio_as_trio(self._nc.close)()
