"""The bus over NATS (``nats-py``, an asyncio client, run through trio-asyncio).

Crossing the trio/asyncio bridge costs tens of µs, so publishing crosses it once per wake-up
of one flusher task, for everything published since, not once per message. Received messages
are handed to trio from nats-py's callbacks without a crossing (trio-asyncio runs asyncio's
callbacks inside the trio run, so a non-blocking trio call is allowed there).
"""

from __future__ import annotations

import contextlib
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


class _NatsSubscription:
    def __init__(self, sub: Any) -> None:
        self._sub = sub

    async def unsubscribe(self) -> None:
        with contextlib.suppress(
            nats.errors.Error, OSError
        ):  # the connection is gone: so is the subscription
            await trio_asyncio.aio_as_trio(self._sub.unsubscribe)()


class NatsBus:
    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._outgoing: deque[tuple[str, bytes]] = deque()
        self._wake = trio.Event()
        self.closed = False

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
        return cls(nc)

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

    async def _send(self, batch: list[tuple[str, bytes]]) -> None:
        for subject, data in batch:
            try:
                await self._nc.publish(subject, data)
            except (nats.errors.Error, OSError) as exc:  # at most once: dropped
                log.debug("NATS publish to %s dropped: %s", subject, exc)

    def publish(self, subject: str, data: bytes) -> None:
        if not self.closed:
            self._outgoing.append((subject, data))
            self._wake.set()

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        if self.closed:
            raise BusError("the bus is closed")
        try:
            msg: Msg = await trio_asyncio.aio_as_trio(self._nc.request)(subject, data, timeout=timeout)
        except nats.errors.NoRespondersError:
            raise NoResponders(subject) from None
        except nats.errors.TimeoutError:
            raise BusTimeout(subject) from None
        except (nats.errors.Error, OSError) as exc:
            raise BusError(str(exc) or type(exc).__name__) from None
        return bytes(msg.data)

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
