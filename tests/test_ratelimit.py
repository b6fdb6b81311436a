from __future__ import annotations

from actors.ratelimit import RateLimiter


def test_chat_burst_then_refill() -> None:
    limits = RateLimiter(chat_burst=5, chat_window_s=5.0, ops_per_second=30)
    assert [limits.check("u", "chat.send", 0.0) for _ in range(5)] == [0.0] * 5
    wait = limits.check("u", "chat.send", 0.0)
    assert wait == 1.0  # one token back per second
    assert limits.check("u", "ping", 0.0) == 0.0  # a refused chat did not spend an op token
    assert limits.check("u", "chat.send", 1.0) == 0.0
    assert limits.check("other", "chat.send", 0.0) == 0.0  # per user


def test_ops_per_second() -> None:
    limits = RateLimiter(chat_burst=5, chat_window_s=5.0, ops_per_second=30)
    assert all(limits.check("u", "ping", 0.0) == 0.0 for _ in range(30))
    assert limits.check("u", "ping", 0.0) > 0


def test_leaving_does_not_reset_a_spent_limit() -> None:
    limits = RateLimiter(chat_burst=2, chat_window_s=10.0, ops_per_second=30)
    limits.check("u", "chat.send", 0.0)
    limits.check("u", "chat.send", 0.0)
    limits.forget_if_rested("u", 0.1)  # left and came back at once: still limited
    assert limits.check("u", "chat.send", 0.1) > 0
    limits.forget_if_rested("u", 100.0)  # rested: the buckets go
    assert limits.check("u", "chat.send", 100.0) == 0.0
