"""The life of a role inside a worker: prepare, run in the window, drain, close, report."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from bench.stats import Tally
from bench.wsclient import LiveEndpoint


@dataclass(frozen=True)
class WorkerContext:
    """What every role of a worker shares."""

    live: LiveEndpoint
    http: str
    connect_timeout: float
    index: int


@dataclass(frozen=True)
class Window:
    """The measured window, in wall-clock nanoseconds: activity starts at ``start_ns``
    and stops by ``end_ns`` at the latest (earlier when a role's message count is reached)."""

    start_ns: int
    end_ns: int

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


async def sleep_until(wall_ns: int) -> None:
    delay = (wall_ns - time.time_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


class Role:
    """One job in a worker. Every coroutine here must end by itself (bounded by its deadline)."""

    def __init__(self, spec: dict[str, Any], ctx: WorkerContext) -> None:
        self.spec = spec
        self.ctx = ctx
        self.tally = Tally()

    async def prepare(self) -> None:
        """Before the window: open the sockets that are not what is measured."""

    async def run(self, window: Window) -> dict[str, int]:
        """The active part. Returns, per room, the last ``seq`` this role produced (senders).

        A role may add other totals under names that are not room ids (``mentions …``):
        the coordinator merges every worker's by maximum and hands them all to ``drain``."""
        raise NotImplementedError

    async def drain(self, targets: dict[str, int], deadline_ns: int) -> None:
        """After every sender stopped: wait until this role saw ``targets`` (room -> seq)."""

    async def close(self) -> None:
        """Close every socket politely."""

    def open_sockets(self) -> int:
        """Sockets this role holds open now (for the server's memory per socket)."""
        return 0

    def counts(self) -> dict[str, int]:
        """Running totals for the progress bar."""
        return dict(self.tally.counters)

    def result(self) -> Tally:
        return self.tally
