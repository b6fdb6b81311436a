"""Listeners: sockets that sit in a room and count what reaches them, seq by seq.

Each client checks that the ``seq`` values it sees are contiguous: a jump
counts the skipped numbers as missed, a repeat counts as a duplicate. A client
keeps its last ``seq`` across reconnects (resume scenario), so the check spans
every socket it ever had.
"""

from __future__ import annotations

import asyncio
import random
import time
from array import array
from typing import Any, ClassVar

from bench.chatwire import decode, fast_chat, stamp_of
from bench.roles.base import Role, Window, WorkerContext, sleep_until
from bench.stats import Tally
from bench.wsclient import ConnectFailed, WsClient, connect

RETRY_DELAY_S = 0.05
MAX_RECONNECT_ATTEMPTS = 20
_STUB = b'"hidden":true'  # in a chat.message: a blocked author's stub (personal blocks)


class ClientState:
    """One listening client, across all the sockets it opens."""

    __slots__ = ("index", "last_seq", "reconnecting", "socket", "token")

    def __init__(self, index: int, token: str | None) -> None:
        self.index = index
        self.token = token
        self.last_seq = -1  # unknown until the first welcome
        self.socket: ListenerSocket | None = None
        self.reconnecting = False


class ListenerSocket(WsClient):
    """A socket whose chat messages are read on the fast path (``seq`` and stamp only)."""

    def __init__(self, group: Listeners, state: ClientState) -> None:
        super().__init__()
        self.group = group
        self.state = state

    def on_welcome(self, welcome: dict[str, Any]) -> None:
        self.group.welcomed(self.state, welcome["data"])

    def on_message(self, payload: bytes) -> None:
        fast = fast_chat(payload)
        if fast is None:
            self.on_decoded(decode(payload))
            return
        seq, sent_ns = fast
        group = self.group
        state = self.state
        last = state.last_seq
        if seq != last + 1:
            if seq <= last:
                group.duplicates += 1
                return
            group.missed += seq - last - 1
        state.last_seq = seq
        now = time.time_ns()
        group.deliveries += 1
        group.last_delivery_ns = now
        if sent_ns:
            group.latencies.append(now - sent_ns)
        elif _STUB in payload:
            # A blocked author's stub (personal blocks) for a socket that blocks nobody.
            group.tally.counters["stubs_unexpected"] += 1

    def on_decoded(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "event":
            seq = message.get("seq")
            if isinstance(seq, int) and not self.group.check_seq(self.state, seq):
                return
            if message.get("name") == "chat.message":
                now = time.time_ns()
                self.group.deliveries += 1
                self.group.last_delivery_ns = now
                data = message.get("data", {})
                sent_ns = stamp_of(data.get("text"))
                if sent_ns:
                    self.group.latencies.append(now - sent_ns)
                elif data.get("hidden") is True:
                    self.group.tally.counters["stubs_unexpected"] += 1
            else:
                self.on_event(message)
        elif kind == "reply":
            self.on_reply(message)

    def on_event(self, message: dict[str, Any]) -> None:
        """An event other than ``chat.message`` (already seq-checked)."""

    def on_reply(self, message: dict[str, Any]) -> None:
        if not message.get("ok"):
            self.group.tally.errors[message.get("error", {}).get("code", "unknown")] += 1

    def on_closed(self, code: int, by_server: bool) -> None:
        self.group.socket_closed(self, code)


class Listeners(Role):
    """``count`` clients in ``room`` (guests unless ``tokens`` are given).

    Spec keys: ``room``, ``count``, ``tokens`` (optional, one per client),
    ``concurrency`` (connects in flight while preparing), ``hold`` (stay until the
    window ends), ``drops`` (optional, per client: how many times it drops its
    socket and resumes with ``since`` during the first ``drop_window_s`` of the window).
    """

    socket_class: ClassVar[type[ListenerSocket]] = ListenerSocket

    def __init__(self, spec: dict[str, Any], ctx: WorkerContext) -> None:
        super().__init__(spec, ctx)
        self.room: str = spec["room"]
        tokens: list[str | None] = list(spec.get("tokens") or [None] * spec["count"])
        self.clients = [ClientState(i, token) for i, token in enumerate(tokens)]
        self.resumes: bool = bool(spec.get("drops"))
        self.deliveries = 0
        self.missed = 0
        self.duplicates = 0
        self.last_delivery_ns = 0
        self.latencies: array[int] = self.tally.series("delivery")
        self._closing = False
        self._reconnects: set[asyncio.Task[None]] = set()

    # ---- what sockets report -----------------------------------------------------------------

    def check_seq(self, state: ClientState, seq: int) -> bool:
        """Record ``seq`` for this client; False if it is a duplicate."""
        last = state.last_seq
        if seq <= last:
            self.duplicates += 1
            return False
        if seq != last + 1:
            self.missed += seq - last - 1
        state.last_seq = seq
        return True

    def welcomed(self, state: ClientState, data: dict[str, Any]) -> None:
        seq = int(data["seq"])
        if state.last_seq < 0:
            state.last_seq = seq
            return
        counters = self.tally.counters
        if data.get("resumed"):
            counters["resumed"] += 1
            counters["replayed"] += int(data.get("replayed", 0))
        else:
            # The welcome is authoritative, but what this client missed is lost to it.
            counters["not_resumed"] += 1
            if seq > state.last_seq:
                self.missed += seq - state.last_seq
            state.last_seq = max(state.last_seq, seq)

    def socket_closed(self, socket: ListenerSocket, code: int) -> None:
        if self._closing and code in (1000, 1001):
            return
        self.tally.errors[f"close {code}"] += 1
        if self.resumes and not self._closing and socket.state.socket is socket:
            # 1001, 1011 and 4009 all mean: reconnect with since.
            self._start_reconnect(socket.state)

    # ---- the role ----------------------------------------------------------------------------

    async def prepare(self) -> None:
        limit = asyncio.Semaphore(int(self.spec.get("concurrency", 200)))

        async def open_one(state: ClientState) -> None:
            async with limit:
                await self._open(state, sample="connect")

        await asyncio.gather(*(open_one(state) for state in self.clients))

    async def run(self, window: Window) -> dict[str, int]:
        if self.resumes:
            drops: list[int] = self.spec["drops"]
            spread_ns = int(float(self.spec["drop_window_s"]) * 1e9)
            await asyncio.gather(
                *(
                    self._drop_and_resume(state, window.start_ns, spread_ns, count)
                    for state, count in zip(self.clients, drops, strict=True)
                )
            )
        if self.spec.get("hold"):
            await sleep_until(window.end_ns)
        return {}

    async def drain(self, targets: dict[str, int], deadline_ns: int) -> None:
        target = targets.get(self.room)
        if target is None:
            return
        while time.time_ns() < deadline_ns:
            if all(not self._can_progress(state) or state.last_seq >= target for state in self.clients):
                break
            await asyncio.sleep(0.01)
        if self._reconnects:
            await asyncio.gather(*self._reconnects, return_exceptions=True)
        self.tally.counters["undelivered"] += sum(
            target - state.last_seq for state in self.clients if 0 <= state.last_seq < target
        )

    async def close(self) -> None:
        self._closing = True
        for task in self._reconnects:
            task.cancel()
        await asyncio.gather(
            *(state.socket.close() for state in self.clients if state.socket is not None),
            return_exceptions=True,
        )

    def open_sockets(self) -> int:
        return sum(1 for state in self.clients if state.socket is not None and not state.socket.closed.done())

    def counts(self) -> dict[str, int]:
        counts = dict(self.tally.counters)
        counts["deliveries"] = self.deliveries
        counts["errors"] = sum(self.tally.errors.values())
        return counts

    def result(self) -> Tally:
        counters = self.tally.counters
        counters["deliveries"] = self.deliveries
        counters["missed_seq"] = self.missed
        counters["duplicate_seq"] = self.duplicates
        counters["clients"] = len(self.clients)
        counters["final_seq_sum"] = sum(max(state.last_seq, 0) for state in self.clients)
        if self.last_delivery_ns:
            self.tally.mark("last_delivery_ns", self.last_delivery_ns)
        return self.tally

    # ---- sockets -----------------------------------------------------------------------------

    def _can_progress(self, state: ClientState) -> bool:
        socket = state.socket
        return socket is not None and (not socket.closed.done() or self.resumes)

    async def _open(self, state: ClientState, *, sample: str) -> bool:
        socket = self.socket_class(self, state)
        since = state.last_seq if state.last_seq >= 0 else None
        try:
            await connect(
                socket,
                self.ctx.live,
                self.room,
                token=state.token,
                since=since,
                timeout=self.ctx.connect_timeout,
            )
        except ConnectFailed as failed:
            self.tally.errors[failed.code] += 1
            return False
        state.socket = socket
        self.tally.counters["connected"] += 1
        self.tally.series(sample).append(socket.welcomed_ns - socket.started_ns)
        self.tally.mark("last_welcome_ns", socket.welcomed_ns)
        return True

    async def _drop_and_resume(self, state: ClientState, start_ns: int, spread_ns: int, count: int) -> None:
        times = sorted(start_ns + random.randrange(max(spread_ns, 1)) for _ in range(count))
        for at in times:
            await sleep_until(at)
            socket = state.socket
            if self._closing or state.reconnecting or socket is None or socket.closed.done():
                continue  # already away (the server closed it): this drop is not needed
            socket.abort()
            self.tally.counters["reconnects"] += 1
            await self._reopen(state)

    def _start_reconnect(self, state: ClientState) -> None:
        if state.reconnecting:
            return
        self.tally.counters["server_close_resumes"] += 1
        task = asyncio.ensure_future(self._reopen(state))
        self._reconnects.add(task)
        task.add_done_callback(self._reconnects.discard)

    async def _reopen(self, state: ClientState) -> None:
        state.reconnecting = True
        try:
            for _ in range(MAX_RECONNECT_ATTEMPTS):
                if self._closing or await self._open(state, sample="reconnect"):
                    return
                await asyncio.sleep(RETRY_DELAY_S)
            self.tally.errors["gave up reconnecting"] += 1
        finally:
            state.reconnecting = False
