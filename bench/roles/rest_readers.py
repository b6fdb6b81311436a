"""REST readers: GET requests at a target rate, open loop, latency counted from the scheduled time."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

from bench.httpclient import HttpError, HttpPool
from bench.roles.base import Role, Window, WorkerContext, sleep_until


class RestReaders(Role):
    """Spec keys: ``rate`` (requests/s), ``targets`` (``[name, path, weight]``), ``token``
    (optional bearer), ``concurrency`` (keep-alive connections, so requests in flight, at most).

    A request that has to wait for a free slot keeps its scheduled start, so a
    server that falls behind shows up in the latencies, not in a lower request rate
    the harness quietly chose for it.
    """

    def __init__(self, spec: dict[str, Any], ctx: WorkerContext) -> None:
        super().__init__(spec, ctx)
        headers = {"Authorization": f"Bearer {spec['token']}"} if spec.get("token") else {}
        self.pool = HttpPool(ctx.http, size=int(spec.get("concurrency", 64)), headers=headers)

    async def run(self, window: Window) -> dict[str, int]:
        targets: list[tuple[str, str, float]] = [(t[0], t[1], float(t[2])) for t in self.spec["targets"]]
        names = [t[0] for t in targets]
        paths = [t[1] for t in targets]
        weights = [t[2] for t in targets]
        interval_ns = 1e9 / float(self.spec["rate"])
        first_ns = window.start_ns + random.randrange(max(int(interval_ns), 1))
        tasks: set[asyncio.Task[None]] = set()
        index = 0
        while True:
            at = first_ns + int(index * interval_ns)
            if at >= window.end_ns:
                break
            await sleep_until(at)
            pick = random.choices(range(len(targets)), weights)[0]
            task = asyncio.ensure_future(self._get(names[pick], paths[pick], at))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
        if tasks:
            await asyncio.gather(*tasks)
        return {}

    async def _get(self, name: str, path: str, scheduled_ns: int) -> None:
        counters = self.tally.counters
        try:
            response = await self.pool.get(path)
        except HttpError as exc:
            self.tally.errors[f"http {exc}"] += 1
            return
        counters["requests"] += 1
        self.tally.series(f"rest {name}").append(time.time_ns() - scheduled_ns)
        if response.status >= 400:
            try:
                code = json.loads(response.body)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "?"
            self.tally.errors[f"http {response.status} {code}"] += 1
        else:
            counters["ok"] += 1

    async def close(self) -> None:
        self.pool.close()

    def counts(self) -> dict[str, int]:
        counts = dict(self.tally.counters)
        counts["errors"] = sum(self.tally.errors.values())
        return counts
