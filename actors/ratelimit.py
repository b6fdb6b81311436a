"""Token buckets for the per-user, per-room op limits (time is passed in)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second; one op takes one."""

    capacity: float
    rate: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, capacity: float, rate: float, now: float) -> TokenBucket:
        return cls(capacity, rate, capacity, now)

    def take(self, now: float) -> float:
        """Take a token; returns 0 when allowed, else the seconds until one is available."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    """Per-key buckets for chat and for ops of any kind (PROTOCOL.md "Limits")."""

    def __init__(self, chat_burst: int, chat_window_s: float, ops_per_second: int) -> None:
        self._chat = (float(chat_burst), chat_burst / chat_window_s)
        self._ops = (float(ops_per_second), float(ops_per_second))
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def check(self, key: str, op: str, now: float) -> float:
        """0 if ``key`` may run ``op`` now, else the wait in seconds. Only allowed ops take tokens."""
        ops = self._bucket(key, "ops", self._ops, now)
        wait = ops.take(now)
        if wait:
            return wait
        if op == "chat.send":
            wait = self._bucket(key, "chat", self._chat, now).take(now)
            if wait:
                ops.tokens = min(ops.capacity, ops.tokens + 1)  # refused ops cost nothing
        return wait

    def forget_if_rested(self, key: str, now: float) -> None:
        """Drop ``key``'s buckets once they have refilled (so reconnecting never resets a limit)."""
        buckets = [self._buckets.get((key, kind)) for kind in ("ops", "chat")]
        for bucket in buckets:
            if bucket is not None:
                bucket.tokens = min(
                    bucket.capacity, bucket.tokens + max(0.0, now - bucket.updated) * bucket.rate
                )
                bucket.updated = now
                if bucket.tokens < bucket.capacity:
                    return
        self._buckets.pop((key, "ops"), None)
        self._buckets.pop((key, "chat"), None)

    def _bucket(self, key: str, kind: str, spec: tuple[float, float], now: float) -> TokenBucket:
        bucket = self._buckets.get((key, kind))
        if bucket is None:
            bucket = self._buckets[(key, kind)] = TokenBucket.full(spec[0], spec[1], now)
        return bucket
