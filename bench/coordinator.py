"""The parent's side of a run: start the workers, open the window for all at once, merge results."""

from __future__ import annotations

import asyncio
import json
import pickle
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.progress import ProgressBar
from bench.stats import Tally
from bench.target import MachineSample, ServerMonitor, ServerSample
from bench.worker import cpu_seconds
from bench.wsclient import LiveEndpoint

START_LEAD_S = 0.3  # between "go" and the window's start, so every worker starts on time


class WorkerFailed(RuntimeError):
    pass


@dataclass
class WorkerOutcome:
    cpu_s: float
    wall_s: float

    @property
    def utilisation(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s else 0.0


@dataclass
class RunOutcome:
    """Everything a run measured, before any scenario reads it."""

    tally: Tally
    workers: list[WorkerOutcome]
    start_ns: int
    end_ns: int
    sent_ns: int
    drained_ns: int
    targets: dict[str, int]
    server: dict[str, ServerSample] = field(default_factory=dict)
    machine: tuple[MachineSample, MachineSample] | None = None
    coordinator_cpu_s: float = 0.0


@dataclass(frozen=True)
class RunPlan:
    """What each worker runs (its roles), and how long the window is."""

    workers: list[list[dict[str, Any]]]
    window_s: float
    drain_s: float
    connections: int  # sockets the workers open before the window (for the progress bar)


def _load_result(path: Path) -> dict[str, Any]:
    with open(path, "rb") as src:
        result: dict[str, Any] = pickle.load(src)  # written by our own worker
    return result


class Coordinator:
    def __init__(
        self,
        plan: RunPlan,
        *,
        live: LiveEndpoint,
        http: str,
        connect_timeout: float,
        progress: ProgressBar,
        monitor: ServerMonitor | None,
    ) -> None:
        self.plan = plan
        self.live = live
        self.http = http
        self.connect_timeout = connect_timeout
        self.progress = progress
        self.monitor = monitor
        self._inbox: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()
        self._counts: list[dict[str, int]] = [{} for _ in plan.workers]
        self._processes: list[asyncio.subprocess.Process] = []

    async def run(self) -> RunOutcome:
        samples: dict[str, ServerSample] = {}
        self._sample(samples, "baseline")
        with tempfile.TemporaryDirectory(prefix="seda-bench-") as tmp:
            try:
                return await self._run(Path(tmp), samples)
            finally:
                await self._stop_workers()

    # ---- phases ------------------------------------------------------------------------------

    async def _run(self, tmp: Path, samples: dict[str, ServerSample]) -> RunOutcome:
        readers = []
        for index, roles in enumerate(self.plan.workers):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 24,
            )
            self._processes.append(process)
            readers.append(asyncio.ensure_future(self._read(index, process)))
            spec = {
                "index": index,
                "roles": roles,
                "live": asdict(self.live),
                "http": self.http,
                "connect_timeout": self.connect_timeout,
                "result_path": str(tmp / f"worker-{index}.pickle"),
            }
            await self._tell(index, {"spec": spec})

        await self._gather("ready", "connect")
        self._sample(samples, "ready")

        start_ns = time.time_ns() + int(START_LEAD_S * 1e9)
        end_ns = start_ns + int(self.plan.window_s * 1e9)
        await self._tell_all({"go": {"start_ns": start_ns, "end_ns": end_ns}})
        await asyncio.sleep(max((start_ns - time.time_ns()) / 1e9, 0))
        self._sample(samples, "start")
        machine_start = MachineSample.now()
        coordinator_cpu = cpu_seconds()
        sent = await self._gather("sent", "run", window=(start_ns, end_ns))
        sent_ns = time.time_ns()
        self._sample(samples, "sent")

        targets: dict[str, int] = {}
        for seqs in sent:
            for room, seq in seqs.items():
                targets[room] = max(int(seq), targets.get(room, 0))
        deadline_ns = time.time_ns() + int(self.plan.drain_s * 1e9)
        await self._tell_all({"drain": {"targets": targets, "deadline_ns": deadline_ns}})
        drained = await self._gather("drained", "drain")
        drained_ns = time.time_ns()
        self._sample(samples, "drained")
        machine = (machine_start, MachineSample.now())
        coordinator_cpu = cpu_seconds() - coordinator_cpu

        await self._tell_all({"close": True})
        await self._gather("done", "close")
        for reader in readers:
            reader.cancel()
        tally = Tally()
        for index in range(len(self.plan.workers)):
            tally.add(Tally.from_wire(_load_result(tmp / f"worker-{index}.pickle")["tally"]))
        self.progress.done()
        return RunOutcome(
            tally=tally,
            workers=[WorkerOutcome(float(d["cpu_s"]), float(d["wall_s"])) for d in drained],
            start_ns=start_ns,
            end_ns=end_ns,
            sent_ns=sent_ns,
            drained_ns=drained_ns,
            targets=targets,
            server=samples,
            machine=machine,
            coordinator_cpu_s=coordinator_cpu,
        )

    # ---- messages ----------------------------------------------------------------------------

    async def _read(self, index: int, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            await self._inbox.put((index, json.loads(line)))
        await self._inbox.put((index, {"eof": await process.wait()}))

    async def _tell(self, index: int, message: dict[str, Any]) -> None:
        stdin = self._processes[index].stdin
        assert stdin is not None
        stdin.write(json.dumps(message).encode() + b"\n")
        await stdin.drain()

    async def _tell_all(self, message: dict[str, Any]) -> None:
        for index in range(len(self._processes)):
            await self._tell(index, message)

    async def _gather(self, key: str, phase: str, window: tuple[int, int] | None = None) -> list[Any]:
        """Wait until every worker said ``key``; show progress meanwhile."""
        answers: list[Any] = [None] * len(self._processes)
        answered: set[int] = set()
        while len(answered) < len(answers):
            index, message = await self._inbox.get()
            if "progress" in message:
                self._counts[index] = message["progress"]
                self._show(phase, window)
            elif "error" in message:
                raise WorkerFailed(f"worker {index} failed:\n{message['error']}")
            elif "eof" in message:
                if index in answered and message["eof"] == 0:
                    continue  # it said "done" and exited before the others said so
                raise WorkerFailed(f"worker {index} exited ({message['eof']}) while waiting for {key!r}")
            elif key in message:
                answers[index] = message[key]
                answered.add(index)
        return answers

    def _show(self, phase: str, window: tuple[int, int] | None) -> None:
        totals: Counter[str] = Counter()
        for counts in self._counts:
            totals.update(counts)
        fraction: float | None = None
        if phase == "connect" and self.plan.connections:
            fraction = totals["connected"] / self.plan.connections
        elif window is not None:
            start_ns, end_ns = window
            fraction = (time.time_ns() - start_ns) / max(end_ns - start_ns, 1)
        self.progress.show(phase, fraction, dict(totals))

    def _sample(self, samples: dict[str, ServerSample], name: str) -> None:
        if self.monitor is not None:
            sample = self.monitor.sample()
            if sample is not None:
                samples[name] = sample

    async def _stop_workers(self) -> None:
        """After "done" they exit by themselves; after a failure, EOF on stdin or a kill ends them."""
        for process in self._processes:
            if process.returncode is None:
                if process.stdin is not None:
                    process.stdin.close()
                try:
                    async with asyncio.timeout(5):
                        await process.wait()
                except TimeoutError:
                    process.kill()
                    await process.wait()
