"""Senders: authenticated sockets sending ``chat.send`` on an open-loop schedule."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

from bench.chatwire import decode, stamped_text
from bench.roles.base import Role, Window, WorkerContext, sleep_until
from bench.wsclient import ConnectFailed, WsClient, connect

DEFAULT_REPLY_GRACE_S = 20.0
_REPLY_PREFIX = b'{"type":"reply"'


class SenderSocket(WsClient):
    """Skips events unread; pairs each reply with its op for the reply latency."""

    def __init__(self, group: Senders) -> None:
        super().__init__()
        self.group = group
        self.number = 0  # this socket's place among the role's senders
        self.sent: dict[int, int] = {}
        self.counting = True  # False once the sender gave up waiting: later replies are not acks
        self.hold_until_ns = 0  # honouring retry_after_ms: send nothing before this wall-clock time
        self.answered = asyncio.Event()  # set whenever no op awaits its reply
        self.answered.set()

    def on_message(self, payload: bytes) -> None:
        if not payload.startswith(_REPLY_PREFIX):
            return
        message = decode(payload)
        sent_ns = self.sent.pop(message.get("ref") or 0, None)
        if sent_ns is None:
            return
        if not self.counting:
            # Acked after the drain targets were fixed: counting it would expect deliveries
            # nobody waits for.
            self.group.tally.counters["late_replies"] += 1
            return
        if not self.sent:
            self.answered.set()
        group = self.group
        now = time.time_ns()
        if message.get("ok"):
            group.replies.append(now - sent_ns)
            group.tally.counters["acked"] += 1
            data = message.get("data") or {}
            seq = int(data.get("seq", 0))
            if seq > group.last_seq:
                group.last_seq = seq
            group.acked(self, int(message["ref"]), sent_ns, data)
        else:
            # Refused: its latency apart from the acks' (a refusal is quick, and is not an ack).
            group.refusals.append(now - sent_ns)
            error = message.get("error") or {}
            code = str(error.get("code", "unknown"))
            group.tally.errors[code] += 1
            group.tally.counters["refused"] += 1
            group.tally.counters[f"refused_{code}"] += 1
            retry_after_ms = error.get("retry_after_ms")
            honour = group.honour_retry_after and code == "rate_limited"
            if honour and isinstance(retry_after_ms, int | float):
                # As a client should (PROTOCOL.md "Errors"): nothing more until then.
                self.hold_until_ns = max(self.hold_until_ns, now + int(retry_after_ms * 1_000_000))

    def on_closed(self, code: int, by_server: bool) -> None:
        self.answered.set()
        if not self.group.closing:
            self.group.tally.errors[f"close {code}"] += 1


class Senders(Role):
    """One socket per token in ``room``; each sends ``rate`` messages a second.

    Spec keys: ``room``, ``tokens``, ``rate`` (per sender), ``messages`` (optional
    bound per sender on the planned sends; otherwise until the window ends), ``size`` (text length),
    ``reply_grace_s`` (how long to wait for the last replies; later ones are not counted as acks),
    ``honour_retry_after`` (default false: after a ``rate_limited`` reply with ``retry_after_ms``,
    a sender sends nothing until that many ms have passed; the sends its schedule planned
    meanwhile are skipped and counted as ``held_back``).
    Sends follow the clock, not the replies: a slow server gets a backlog, and
    the latencies show it. Acked replies' latency is ``reply chat.send``, refused ones'
    ``refused chat.send`` (counted as ``refused`` and ``refused_<code>``).
    """

    def __init__(self, spec: dict[str, Any], ctx: WorkerContext) -> None:
        super().__init__(spec, ctx)
        self.room: str = spec["room"]
        self.sockets: list[SenderSocket] = []
        self.replies = self.tally.series("reply chat.send")
        self.refusals = self.tally.series("refused chat.send")
        self.honour_retry_after = bool(spec.get("honour_retry_after", False))
        self.last_seq = 0
        self.closing = False

    async def prepare(self) -> None:
        async def open_one(token: str) -> None:
            socket = SenderSocket(self)
            try:
                await connect(socket, self.ctx.live, self.room, token=token, timeout=self.ctx.connect_timeout)
            except ConnectFailed as failed:
                self.tally.errors[failed.code] += 1
                return
            socket.number = len(self.sockets)
            self.sockets.append(socket)
            self.tally.counters["senders"] += 1

        await asyncio.gather(*(open_one(token) for token in self.spec["tokens"]))

    async def run(self, window: Window) -> dict[str, int]:
        await asyncio.gather(*(self._send(socket, window) for socket in self.sockets))
        return {self.room: self.last_seq} if self.last_seq else {}

    async def _send(self, socket: SenderSocket, window: Window) -> None:
        interval_ns = 1e9 / float(self.spec["rate"])
        bound: int | None = self.spec.get("messages")
        size = int(self.spec.get("size", 100))
        first_ns = window.start_ns + random.randrange(max(int(interval_ns), 1))
        counters = self.tally.counters
        index = 0
        while bound is None or index < bound:
            at = first_ns + int(index * interval_ns)
            if at >= window.end_ns:
                break
            if at < socket.hold_until_ns:
                index += 1
                counters["held_back"] += 1
                continue
            await sleep_until(at)
            now = time.time_ns()
            index += 1
            if now < socket.hold_until_ns:  # refused while this send waited for its time
                counters["held_back"] += 1
                continue
            socket.sent[index] = now
            socket.answered.clear()
            op = {"op": "chat.send", "ref": index, "data": {"text": self.text(socket, index, now, size)}}
            if not socket.send_json(op):
                socket.sent.pop(index)
                break
            counters["sent"] += 1
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(float(self.spec.get("reply_grace_s", DEFAULT_REPLY_GRACE_S))):
                await socket.answered.wait()
        socket.counting = False
        counters["unanswered"] += len(socket.sent)

    def text(self, socket: SenderSocket, ref: int, sent_ns: int, size: int) -> str:
        """The text of op ``ref`` (1, 2, ...) on ``socket``: the send time, then filler."""
        return stamped_text(sent_ns, size)

    def acked(self, socket: SenderSocket, ref: int, sent_ns: int, data: dict[str, Any]) -> None:
        """Op ``ref`` on ``socket``, sent at ``sent_ns``, was acknowledged with ``data``
        (``message_id``, ``seq``) in time to count."""

    async def close(self) -> None:
        self.closing = True
        await asyncio.gather(*(socket.close() for socket in self.sockets), return_exceptions=True)

    def open_sockets(self) -> int:
        return sum(1 for socket in self.sockets if not socket.closed.done())

    def counts(self) -> dict[str, int]:
        counts = dict(self.tally.counters)
        counts["errors"] = sum(self.tally.errors.values())
        return counts
