"""Passwords (Argon2id) and access tokens (HS256 JWT with ``sub`` and ``role``)."""

from __future__ import annotations

import math
import os
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import jwt
import trio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from protocol.errors import RateLimited, Unauthorized

T = TypeVar("T")

ROLES = frozenset({"user", "artist", "admin", "super_admin"})
ADMIN_ROLES = frozenset({"admin", "super_admin"})
_hasher = PasswordHasher()  # argon2-cffi's defaults are Argon2id (RFC 9106 low-memory profile)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# A hash of a random password, verified when a login names nobody, so that
# unknown users and wrong passwords take the same time.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, where the OS has one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


class PasswordHashing:
    """Argon2 off the event loop, at most ``slots`` at once (each takes 64 MiB and its lanes' threads).

    A caller waits at most ``wait_s`` for a slot, then gets RateLimited: a flood of sign-ins
    queues briefly and is turned away, instead of holding a thread and 64 MiB per request.
    """

    def __init__(self, slots: int, wait_s: float = 5.0) -> None:
        self.slots = slots
        self.wait_s = wait_s
        self._limiter = trio.CapacityLimiter(slots)
        # The threads are limited by the slots; trio's default thread limiter must not add its own.
        self._threads = trio.CapacityLimiter(math.inf)

    @property
    def in_use(self) -> int:
        return int(self._limiter.borrowed_tokens)

    async def hash(self, password: str) -> str:
        return await self._run(lambda: hash_password(password))

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._run(lambda: verify_password(password_hash, password))

    async def _run(self, work: Callable[[], T]) -> T:
        acquired = False
        with trio.move_on_after(self.wait_s):
            await self._limiter.acquire()
            acquired = True
        if not acquired:
            raise RateLimited("too many sign-ins in progress, try again shortly", retry_after_ms=1000)
        try:
            # Not abandoned on cancel: the slot stays taken until the thread's hash is done.
            return await trio.to_thread.run_sync(work, limiter=self._threads)
        finally:
            self._limiter.release()


def load_or_create_secret(
    configured: str | None,
    data_dir: Path,
    *,
    name: str = "jwt_secret",
    make: Callable[[], str] = lambda: secrets.token_urlsafe(48),
) -> str:
    """A secret: the configured one if set, else one generated once into the data dir as ``name``."""
    if configured:
        return configured
    path = data_dir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    secret = make()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(secret)
    tmp.chmod(0o600)
    tmp.replace(path)
    return secret


@dataclass(frozen=True)
class Principal:
    """Who a valid token says the caller is."""

    user_id: uuid.UUID
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES


class TokenIssuer:
    def __init__(self, secret: str, ttl_s: int) -> None:
        self._secret = secret
        self.ttl_s = ttl_s

    def issue(self, user_id: uuid.UUID, role: str, *, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = {"sub": str(user_id), "role": role, "iat": issued, "exp": issued + self.ttl_s}
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> Principal:
        """Check signature (HS256 only), expiry and claims; any failure is Unauthorized."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"require": ["sub", "exp"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired", field="token") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("invalid token", field="token") from None
        try:
            user_id = uuid.UUID(str(claims["sub"]))
        except ValueError:
            raise Unauthorized("invalid token subject", field="token") from None
        role = claims.get("role", "user")
        # Supabase-style tokens carry role "authenticated"; the app role then defaults to user.
        if role == "authenticated" or role is None:
            role = "user"
        if role not in ROLES:
            raise Unauthorized("invalid token role", field="token")
        return Principal(user_id, role)
