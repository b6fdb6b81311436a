"""Prometheus metrics, one registry per process (tests get their own)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


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

    def render(self) -> bytes:
        return generate_latest(self.registry)
