"""Users and their profiles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from protocol.errors import Conflict
from storage.database import Database, Record

ROLES = ("user", "artist", "admin", "super_admin")


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    email: str
    username: str
    role: str
    created_at: datetime

    @classmethod
    def from_record(cls, r: Record) -> User:
        return cls(r["id"], r["email"], r["username"], r["role"], r["created_at"])

    def public(self) -> dict[str, Any]:
        """The user as the API shows it to its owner."""
        return {
            "id": str(self.id),
            "email": self.email,
            "username": self.username,
            "role": self.role,
            "created_at": self.created_at.isoformat(),
        }


_COLUMNS = "id, email, username, role, created_at"


async def _insert_user(
    conn: asyncpg.Connection, email: str, username: str, password_hash: str, role: str
) -> Record:
    try:
        row = await conn.fetchrow(
            f"""INSERT INTO users (email, username, password_hash, role)
                VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}""",
            email,
            username,
            password_hash,
            role,
        )
    except asyncpg.UniqueViolationError as exc:
        field = "username" if "username" in (exc.constraint_name or "") else "email"
        raise Conflict(f"that {field} is already taken", field=field) from None
    assert row is not None
    await conn.execute("INSERT INTO profiles (user_id) VALUES ($1)", row["id"])
    return row


class Users:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, *, email: str, username: str, password_hash: str, role: str = "user") -> User:
        """Insert a user and an empty profile; a taken username or email is a Conflict naming it."""
        row = await self._db.run(_insert_user, email, username.lower(), password_hash, role)
        return User.from_record(row)

    async def credentials(self, login: str) -> tuple[User, str] | None:
        """The user whose username or email is ``login`` (case-insensitive), with the password hash."""
        row = await self._db.fetchrow(
            f"""SELECT {_COLUMNS}, password_hash FROM users
                WHERE username = lower($1) OR lower(email) = lower($1)
                ORDER BY (username = lower($1)) DESC LIMIT 1""",
            login,
        )
        if row is None:
            return None
        return User.from_record(row), row["password_hash"]

    async def get(self, user_id: uuid.UUID) -> User | None:
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
        return None if row is None else User.from_record(row)

    async def by_username(self, username: str) -> User | None:
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE username = lower($1)", username)
        return None if row is None else User.from_record(row)

    async def update_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        await self._db.execute(
            "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1", user_id, password_hash
        )
