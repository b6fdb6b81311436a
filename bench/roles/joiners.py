"""Joiners: clients that all connect when the window opens; the connect is what is measured."""

from __future__ import annotations

import asyncio
from typing import Any

from bench.roles.base import Role, Window, WorkerContext, sleep_until
from bench.wsclient import ConnectFailed, WsClient, connect


class JoinerSocket(WsClient):
    def __init__(self, group: Joiners) -> None:
        super().__init__()
        self.group = group

    def on_closed(self, code: int, by_server: bool) -> None:
        if not self.group.closing:
            self.group.tally.errors[f"close {code}"] += 1


class Joiners(Role):
    """``count`` guests of ``room`` connect at the window's start, ``concurrency`` at a time
    (0: all at once); each records connect + upgrade + welcome time. They stay until closed."""

    def __init__(self, spec: dict[str, Any], ctx: WorkerContext) -> None:
        super().__init__(spec, ctx)
        self.sockets: list[JoinerSocket] = []
        self.closing = False

    async def run(self, window: Window) -> dict[str, int]:
        count = int(self.spec["count"])
        concurrency = int(self.spec.get("concurrency") or 0) or count
        limit = asyncio.Semaphore(max(concurrency, 1))
        samples = self.tally.series("connect")

        async def join() -> None:
            async with limit:
                socket = JoinerSocket(self)
                try:
                    await connect(socket, self.ctx.live, self.spec["room"], timeout=self.ctx.connect_timeout)
                except ConnectFailed as failed:
                    self.tally.errors[failed.code] += 1
                    return
                self.sockets.append(socket)
                self.tally.counters["connected"] += 1
                samples.append(socket.welcomed_ns - socket.started_ns)
                self.tally.mark("last_welcome_ns", socket.welcomed_ns)

        await sleep_until(window.start_ns)
        await asyncio.gather(*(join() for _ in range(count)))
        return {}

    async def close(self) -> None:
        self.closing = True
        await asyncio.gather(*(socket.close() for socket in self.sockets), return_exceptions=True)

    def open_sockets(self) -> int:
        return sum(1 for socket in self.sockets if not socket.closed.done())

    def counts(self) -> dict[str, int]:
        counts = dict(self.tally.counters)
        counts["errors"] = sum(self.tally.errors.values())
        return counts
