"""A socket for low-volume work: send an op, await its reply, wait for an event."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from bench.chatwire import decode
from bench.wsclient import WsClient

Message = dict[str, Any]

_REPLY_PREFIX = b'{"type":"reply"'


class OpFailed(Exception):
    """An op answered ``ok: false``."""

    def __init__(self, op: str, error: dict[str, Any]) -> None:
        super().__init__(f"{op}: {error.get('code')}: {error.get('message')}")
        self.code = str(error.get("code", "unknown"))
        self.retry_after_ms = int(error.get("retry_after_ms") or 0)


class ControlSocket(WsClient):
    """Every message is decoded; ``request`` pairs replies with ops by ``ref``."""

    def __init__(self, *, events: bool = True) -> None:
        super().__init__()
        self._refs = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self._watchers: list[tuple[Callable[[Message], bool], asyncio.Future[Message]]] = []
        self._events = events

    def on_message(self, payload: bytes) -> None:
        if not self._events and not payload.startswith(_REPLY_PREFIX):
            return
        message = decode(payload)
        if message.get("type") == "reply":
            waiter = self._pending.pop(message.get("ref") or 0, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
            return
        self.on_event(message)
        for watcher in list(self._watchers):
            pred, future = watcher
            if not future.done() and pred(message):
                future.set_result(message)
                self._watchers.remove(watcher)

    def on_event(self, message: Message) -> None:
        """Any message that is not a reply."""

    def on_closed(self, code: int, by_server: bool) -> None:
        for future in [*self._pending.values(), *(f for _, f in self._watchers)]:
            if not future.done():
                future.set_exception(ConnectionError(f"socket closed ({code})"))

    async def request(self, op: str, data: dict[str, Any] | None = None, timeout: float = 30) -> Message:
        """Send ``op`` and return its reply's ``data``; OpFailed if it was refused."""
        ref = next(self._refs)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        message: Message = {"op": op, "ref": ref}
        if data is not None:
            message["data"] = data
        if not self.send_json(message):
            self._pending.pop(ref, None)
            raise ConnectionError(f"{op}: the socket is closed")
        async with asyncio.timeout(timeout):
            reply = await future
        if not reply.get("ok"):
            raise OpFailed(op, reply.get("error") or {})
        result: Message = reply.get("data") or {}
        return result

    async def wait_event(self, pred: Callable[[Message], bool], timeout: float) -> Message:
        """The next message (after this call) for which ``pred`` is true."""
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._watchers.append((pred, future))
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            if not future.done():
                self._watchers.remove((pred, future))


def is_event(name: str) -> Callable[[Message], bool]:
    return lambda m: m.get("type") == "event" and m.get("name") == name


async def send_with_retry(
    socket: ControlSocket, op: str, data: dict[str, Any], attempts: int = 50
) -> Message:
    """``request``, waiting out ``rate_limited`` refusals (for setup work against default limits)."""
    for _ in range(attempts - 1):
        try:
            return await socket.request(op, data)
        except OpFailed as failed:
            if failed.code != "rate_limited":
                raise
            await asyncio.sleep(max(failed.retry_after_ms, 50) / 1000)
    return await socket.request(op, data)
