"""Prometheus metrics, one registry per process (tests get their own)."""

from __future__ import annotations

from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_MAX_CHILDREN = 1024


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "seda_http_requests_total",
            "REST requests served",
            ["method", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "seda_http_request_seconds", "REST request latency", registry=self.registry
        )
        self.live_connections = Gauge("seda_live_connections", "open live sockets", registry=self.registry)
        self.live_rooms = Gauge("seda_live_rooms", "running room actors", registry=self.registry)
        self.journal_batches = Counter(
            "seda_journal_batches_total", "journal batches committed", registry=self.registry
        )
        self.journal_events = Counter(
            "seda_journal_events_total", "durable events committed", registry=self.registry
        )
        self.journal_commit_seconds = Histogram(
            "seda_journal_commit_seconds",
            "time from a journal batch's write to its commit",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.registry,
        )
        self.journal_batch_events = Histogram(
            "seda_journal_batch_events",
            "durable events per committed journal batch",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=self.registry,
        )
        self.journal = JournalStats()

        self._request_children: dict[tuple[str, int], Counter] = {}

    def journal_committed(self, events: int, seconds: float) -> None:
        """One journal batch of ``events`` durable events committed in ``seconds``."""
        self.journal_batches.inc()
        self.journal_events.inc(events)
        self.journal_commit_seconds.observe(seconds)
        self.journal_batch_events.observe(events)
        self.journal.record(events, seconds)

    def count_request(self, method: str, status: int) -> None:
        """One REST request served. Each label child is looked up once (``labels()`` costs a lock
        and a dict walk per call), and a method outside HTTP's own is counted as ``OTHER``: the
        method comes from the client, and a label value per made-up method would grow for ever."""
        key = (method, status)
        child = self._request_children.get(key)
        if child is None:
            label = method if method in _METHODS else "OTHER"
            child = self._request_children.setdefault(key, self.http_requests.labels(label, str(status)))
            if len(self._request_children) > _MAX_CHILDREN:  # made-up methods: keep the cache bounded
                self._request_children.clear()
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of a sorted, non-empty list."""
    rank = max(1, round(fraction * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


class JournalStats:
    """The journal's recent batches, for the admin console (``GET /api/v1/admin/journal``): totals
    since start and the last ``window`` batches' commit latency and size, summarised on request."""

    def __init__(self, window: int = 1000) -> None:
        self.batches = 0
        self.events = 0
        self._recent: deque[tuple[int, float]] = deque(maxlen=window)

    def record(self, events: int, seconds: float) -> None:
        self.batches += 1
        self.events += events
        self._recent.append((events, seconds))

    def summary(self) -> dict[str, Any]:
        recent = list(self._recent)
        out: dict[str, Any] = {"batches": self.batches, "events": self.events, "recent_batches": len(recent)}
        if not recent:
            out["commit_ms"] = out["batch_events"] = None
            return out
        latencies = sorted(s * 1000 for _, s in recent)
        sizes = sorted(float(n) for n, _ in recent)
        out["commit_ms"] = {
            "mean": round(sum(latencies) / len(latencies), 3),
            "p50": round(_percentile(latencies, 0.5), 3),
            "p90": round(_percentile(latencies, 0.9), 3),
            "p99": round(_percentile(latencies, 0.99), 3),
            "max": round(latencies[-1], 3),
        }
        out["batch_events"] = {
            "mean": round(sum(sizes) / len(sizes), 2),
            "p50": _percentile(sizes, 0.5),
            "p90": _percentile(sizes, 0.9),
            "p99": _percentile(sizes, 0.99),
            "max": sizes[-1],
        }
        return out
