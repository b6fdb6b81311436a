"""Limits on login and sign-up: failed logins per account, attempts per client address.

Both answer ``RateLimited`` (429 with Retry-After). Time comes from ``clock`` (trio's by
default, so tests can drive it with a MockClock).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import trio

from actors.ratelimit import TokenBucket
from protocol.errors import RateLimited
from server.config import Network

# An account's first lockout lasts a minute; each one after it while the account has not
# rested twice as long, up to this.
FIRST_LOCKOUT_S = 60.0
MAX_LOCKOUT_S = 15 * 60.0
# How often the tables drop entries that no longer limit anything.
_SWEEP_EVERY_S = 60.0
# At most this many accounts, and as many addresses, are held: a flood of made-up logins or
# addresses between sweeps evicts the oldest entry rather than growing memory without bound.
# (At a few hundred logins/s per node, an entry evicted this way is minutes old.)
MAX_ENTRIES = 100_000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_ip(text: str) -> IPAddress | None:
    """An address from a peer or an X-Forwarded-For entry (``[v6]:port`` and ``v4:port`` too)."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _key(address: IPAddress) -> str:
    """The rate-limit key: the address, or for IPv6 its /64 (one host usually owns the whole /64)."""
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: tuple[Network, ...]) -> str:
    """Who the client is, as a rate-limit key.

    The socket's peer, unless the peer is a declared proxy: then ``X-Forwarded-For`` is walked
    from the right, skipping declared proxies, and the first other address is the client (the
    entries left of it are whatever the client sent, so never trusted).
    """
    address = _parse_ip(peer or "")
    if address is None:
        return peer or "unknown"
    if not trusted:
        return _key(address)
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not any(address in network for network in trusted):
            break
        forwarded = _parse_ip(hop)
        if forwarded is None:  # not an address: our proxy's own view is all we can trust
            break
        address = forwarded
    return _key(address)


@dataclass(slots=True)
class _Account:
    failures: TokenBucket
    lockouts: int = 0  # in a row, without a success or a rest
    locked_until: float = -math.inf


class AuthLimits:
    """Failed logins per account (with lockouts that double) and attempts per client address."""

    def __init__(
        self,
        *,
        fails_per_min: int,
        per_min_per_addr: int,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.fails_per_min = fails_per_min
        self.per_min_per_addr = per_min_per_addr
        self._clock = clock
        self._accounts: dict[str, _Account] = {}
        self._addresses: dict[str, TokenBucket] = {}
        self._swept = -math.inf

    def attempt_from(self, address: str) -> None:
        """Count one login or sign-up attempt from ``address``; RateLimited if it has none left."""
        if not self.per_min_per_addr:
            return
        now = self._sweep()
        bucket = self._addresses.get(address)
        if bucket is None:
            _make_room(self._addresses)
            bucket = self._addresses[address] = TokenBucket.full(
                self.per_min_per_addr, self.per_min_per_addr / 60, now
            )
        wait = bucket.take(now)
        if wait:
            raise RateLimited("too many sign-in attempts from this address", retry_after_ms=_ms(wait))

    def login_attempt(self, account: str) -> None:
        """Before checking a password for ``account``: RateLimited while it is locked out, or
        while attempts in flight have spent what it has left (so concurrency cannot exceed it)."""
        if not self.fails_per_min:
            return
        now = self._sweep()
        entry = self._accounts.get(account)
        if entry is None:
            _make_room(self._accounts)
            entry = self._accounts[account] = _Account(self._full_failures(now))
        elif now >= entry.locked_until + MAX_LOCKOUT_S:
            entry.lockouts = 0  # rested since its last lockout: start over
        wait = entry.locked_until - now
        if wait <= 0:
            wait = entry.failures.take(now)
        if wait > 0:
            raise RateLimited("too many failed sign-ins for this account", retry_after_ms=_ms(wait))

    def login_failed(self, account: str) -> None:
        """The password was wrong; the failure that spent the account's last try locks it out."""
        entry = self._accounts.get(account)
        if not self.fails_per_min or entry is None:
            return
        now = self._clock()
        if entry.locked_until <= now and _level(entry.failures, now) < 1:
            entry.locked_until = now + min(FIRST_LOCKOUT_S * 2**entry.lockouts, MAX_LOCKOUT_S)
            entry.lockouts += 1
            entry.failures = self._full_failures(entry.locked_until)

    def login_abandoned(self, account: str) -> None:
        """The password was never checked (the request failed or was cancelled): the try is given back."""
        entry = self._accounts.get(account)
        if entry is not None:
            entry.failures.tokens = min(entry.failures.capacity, entry.failures.tokens + 1)

    def login_succeeded(self, account: str) -> None:
        """The password was right: the account's failures and lockouts are forgotten."""
        self._accounts.pop(account, None)

    def _full_failures(self, now: float) -> TokenBucket:
        return TokenBucket.full(self.fails_per_min, self.fails_per_min / 60, now)

    def _sweep(self) -> float:
        """The time now; at most once a minute, drop entries that no longer limit anything."""
        now = self._clock()
        if now - self._swept < _SWEEP_EVERY_S:
            return now
        self._swept = now
        self._addresses = {key: b for key, b in self._addresses.items() if not _refilled(b, now)}
        self._accounts = {
            key: a
            for key, a in self._accounts.items()
            if not (now >= a.locked_until + MAX_LOCKOUT_S and _refilled(a.failures, now))
        }
        return now

    @property
    def entries(self) -> int:
        """Accounts and addresses held (rested ones are dropped within a minute)."""
        return len(self._accounts) + len(self._addresses)


def _make_room(table: dict[str, Any]) -> None:
    """Evict the oldest entries (dicts keep insertion order) until one more fits."""
    while len(table) >= MAX_ENTRIES:
        del table[next(iter(table))]


def _level(bucket: TokenBucket, now: float) -> float:
    """The tokens ``bucket`` holds at ``now``, without taking one."""
    return min(bucket.capacity, bucket.tokens + max(0.0, now - bucket.updated) * bucket.rate)


def _refilled(bucket: TokenBucket, now: float) -> bool:
    return _level(bucket, now) >= bucket.capacity


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
