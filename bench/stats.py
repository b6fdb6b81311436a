"""What a run measures, in a form worker processes can add up: counters, errors, samples, marks."""

from __future__ import annotations

import math
import statistics
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Series whose names start with this hold wall-clock times, not durations: no percentiles of them.
ABSOLUTE = "at"


def new_samples() -> array[int]:
    """Nanosecond samples (latencies, or absolute wall-clock times where a name says so)."""
    return array("q")


@dataclass
class Tally:
    """Everything one role (or one worker, or the whole run) measured; :meth:`add` merges two.

    - ``counters``: events counted (``deliveries``, ``acked``, ``missed_seq``, ...);
    - ``errors``: failures by code: error replies by their ``code``, closes as
      ``close NNNN``, refused upgrades as ``http NNN``, failed connects as
      ``connect ECONNREFUSED`` or ``timeout``;
    - ``samples``: nanosecond values by name (``delivery``, ``reply chat.send``, ``connect``);
    - ``marks``: values merged by maximum (the wall-clock time of the last delivery, say).
    """

    counters: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    samples: dict[str, array[int]] = field(default_factory=dict)
    marks: dict[str, int] = field(default_factory=dict)

    def series(self, name: str) -> array[int]:
        found = self.samples.get(name)
        if found is None:
            found = self.samples[name] = new_samples()
        return found

    def mark(self, name: str, value: int) -> None:
        if value > self.marks.get(name, value - 1):
            self.marks[name] = value

    def add(self, other: Tally) -> None:
        self.counters.update(other.counters)
        self.errors.update(other.errors)
        for name, values in other.samples.items():
            self.series(name).extend(values)
        for name, value in other.marks.items():
            self.mark(name, value)

    def to_wire(self) -> dict[str, Any]:
        """A picklable form (plain dicts, arrays) for the trip from a worker to the parent."""
        return {
            "counters": dict(self.counters),
            "errors": dict(self.errors),
            "samples": dict(self.samples),
            "marks": dict(self.marks),
        }

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> Tally:
        return cls(
            Counter(wire["counters"]), Counter(wire["errors"]), dict(wire["samples"]), dict(wire["marks"])
        )


@dataclass(frozen=True)
class Summary:
    """Percentiles of a sample, in milliseconds."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, values_ns: array[int] | list[int]) -> Summary | None:
        if not values_ns:
            return None
        ordered = sorted(values_ns)
        return cls(
            len(ordered),
            percentile(ordered, 50) / 1e6,
            percentile(ordered, 90) / 1e6,
            percentile(ordered, 99) / 1e6,
            ordered[-1] / 1e6,
        )

    def to_json(self) -> dict[str, float]:
        return {
            "count": self.count,
            "p50": round(self.p50, 3),
            "p90": round(self.p90, 3),
            "p99": round(self.p99, 3),
            "max": round(self.max, 3),
        }


def percentile(ordered: list[int], pct: float) -> int:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(values_ms: list[float]) -> dict[str, float]:
    """n, p50, p95, p99 and max of a probe's latencies in ms (one decimal), as its table and JSON show."""
    ordered = sorted(values_ms)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 1),
        "max_ms": round(ordered[-1], 1),
    }
