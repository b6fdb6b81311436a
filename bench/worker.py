"""A worker process: drives its share of the sockets on orders from the parent.

The parent writes JSON lines to the worker's stdin and reads JSON lines from its
stdout (stderr is left for tracebacks):

    parent -> {"spec": {...}}                    roles to run, endpoints, where to write results
    worker -> {"progress": {...}}                running counts, every 0.25 s
    worker -> {"ready": true}                    every role prepared (sockets open)
    parent -> {"go": {"start_ns", "end_ns"}}     the measured window, wall clock
    worker -> {"sent": {room: seq}}              every role's active part ended (and other totals
                                                 a role's drain waits for, named apart from rooms)
    parent -> {"drain": {"targets", "deadline_ns"}}
    worker -> {"drained": {"cpu_s", "wall_s"}}   every listener saw the targets (or gave up)
    parent -> {"close": true}
    worker -> {"done": true}                     results pickled to spec["result_path"]
"""

from __future__ import annotations

import asyncio
import gc
import json
import pickle
import resource
import sys
import time
import traceback
from collections import Counter
from typing import Any

from bench.roles.base import Role, Window, WorkerContext
from bench.roles.blocks import Blockers, StampSenders
from bench.roles.joiners import Joiners
from bench.roles.listeners import Listeners
from bench.roles.notifications import MentionSenders, Notified
from bench.roles.rest_readers import RestReaders
from bench.roles.senders import Senders
from bench.roles.voting import Conductor, Voters
from bench.stats import Tally
from bench.wsclient import LiveEndpoint

ROLE_KINDS: dict[str, type[Role]] = {
    "listeners": Listeners,
    "senders": Senders,
    "joiners": Joiners,
    "voters": Voters,
    "conductor": Conductor,
    "rest": RestReaders,
    "mention_senders": MentionSenders,
    "notified": Notified,
    "blockers": Blockers,
    "stamp_senders": StampSenders,
}
PROGRESS_EVERY_S = 0.25


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _save_result(path: str, result: dict[str, Any]) -> None:
    with open(path, "wb") as out:
        pickle.dump(result, out)


class Worker:
    def __init__(self, orders: asyncio.StreamReader) -> None:
        self.orders = orders
        self.roles: list[Role] = []

    async def expect(self, key: str) -> Any:
        line = await self.orders.readline()
        if not line:
            raise SystemExit(f"worker: the parent went away while waiting for {key!r}")
        message = json.loads(line)
        if key not in message:
            raise SystemExit(f"worker: expected {key!r}, got {sorted(message)}")
        return message[key]

    async def report_progress(self) -> None:
        while True:
            totals: Counter[str] = Counter()
            for role in self.roles:
                totals.update(role.counts())
            say({"progress": dict(totals)})
            await asyncio.sleep(PROGRESS_EVERY_S)

    async def run(self) -> None:
        spec = await self.expect("spec")
        ctx = WorkerContext(
            live=LiveEndpoint(**spec["live"]),
            http=spec["http"],
            connect_timeout=float(spec["connect_timeout"]),
            index=int(spec["index"]),
        )
        self.roles = [ROLE_KINDS[role["kind"]](role, ctx) for role in spec["roles"]]
        progress = asyncio.ensure_future(self.report_progress())
        await asyncio.gather(*(role.prepare() for role in self.roles))
        say({"ready": True})

        go = await self.expect("go")
        window = Window(int(go["start_ns"]), int(go["end_ns"]))
        # Measurement hygiene: no collector pauses inside the window (our objects are acyclic).
        gc.collect()
        gc.freeze()
        gc.disable()
        cpu_before = cpu_seconds()
        wall_before = time.time_ns()
        produced = await asyncio.gather(*(role.run(window) for role in self.roles))
        last_seqs: dict[str, int] = {}
        for seqs in produced:
            for room, seq in seqs.items():
                last_seqs[room] = max(seq, last_seqs.get(room, 0))
        say({"sent": last_seqs})

        drain = await self.expect("drain")
        targets = {str(room): int(seq) for room, seq in drain["targets"].items()}
        await asyncio.gather(*(role.drain(targets, int(drain["deadline_ns"])) for role in self.roles))
        sockets = sum(role.open_sockets() for role in self.roles)
        cpu_s = cpu_seconds() - cpu_before
        wall_s = max(time.time_ns() - wall_before, 1) / 1e9
        gc.enable()
        say({"drained": {"cpu_s": cpu_s, "wall_s": wall_s}})

        await self.expect("close")
        progress.cancel()
        await asyncio.gather(*(role.close() for role in self.roles))
        total = Tally()
        total.counters["sockets"] = sockets
        for role in self.roles:
            total.add(role.result())
        _save_result(spec["result_path"], {"tally": total.to_wire(), "cpu_s": cpu_s, "wall_s": wall_s})
        say({"done": True})


async def _main() -> None:
    loop = asyncio.get_running_loop()
    orders = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(orders), sys.stdin)
    await Worker(orders).run()


def main() -> None:
    raise_fd_limit()
    try:
        asyncio.run(_main())
    except SystemExit:
        raise
    except BaseException:
        say({"error": traceback.format_exc()})
        raise


if __name__ == "__main__":
    main()
