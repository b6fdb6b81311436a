"""Prometheus metrics, one registry per process (tests get their own)."""

from __future__ import annotations

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

        self._request_children: dict[tuple[str, int], Counter] = {}

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
