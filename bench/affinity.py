"""CPU pinning: the server on one core, the harness on the others, so neither steals from the other."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class CpuSplit:
    server: frozenset[int]
    harness: frozenset[int]


def split_cpus() -> CpuSplit | None:
    """The first allowed CPU for the server, the rest for the harness; None with fewer than two."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return CpuSplit(frozenset(cpus[:1]), frozenset(cpus[1:]))


def _threads(pid: int) -> list[int]:
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return [pid]


def pin(pids: Iterable[int], cpus: frozenset[int], *, descendants: bool = True) -> None:
    """Pin every thread of these processes (and of their descendants); what they start later inherits it.

    Like ``taskset -a -c``: ``sched_setaffinity`` on a pid moves only that one thread.
    """
    seen: set[int] = set()
    for pid in pids:
        try:
            children = psutil.Process(pid).children(recursive=True) if descendants else []
        except psutil.NoSuchProcess:
            continue
        family = [pid, *(child.pid for child in children)]
        for member in family:
            if member in seen:
                continue
            seen.add(member)
            for tid in _threads(member):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.sched_setaffinity(tid, cpus)


def describe(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))
