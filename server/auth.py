"""Passwords (Argon2id) and access tokens (HS256 JWT with ``sub`` and ``role``)."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from protocol.errors import Unauthorized

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
