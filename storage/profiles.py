"""Fan profiles and the artist part of them."""

from __future__ import annotations

import uuid
from typing import Any

from storage.database import Database, Record

_SELECT = """SELECT u.id, u.username, u.role, p.display_name, p.bio, p.avatar_url, p.favorite_genres,
                    p.onboarding_genres, a.links, a.verified
             FROM users u LEFT JOIN profiles p ON p.user_id = u.id
             LEFT JOIN artist_profiles a ON a.user_id = u.id"""
_EDITABLE = ("display_name", "bio", "avatar_url", "favorite_genres", "onboarding_genres")


def _profile(r: Record) -> dict[str, Any]:
    return {
        "user_id": str(r["id"]),
        "username": r["username"],
        "display_name": r["display_name"],
        "bio": r["bio"],
        "avatar_url": r["avatar_url"],
        "favorite_genres": list(r["favorite_genres"] or []),
        "onboarding_genres": list(r["onboarding_genres"] or []),
        "role": r["role"],
        "artist": {"links": list(r["links"]), "verified": r["verified"]} if r["links"] is not None else None,
    }


class Profiles:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def by_id(self, user_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self._db.fetchrow(f"{_SELECT} WHERE u.id = $1", user_id)
        return _profile(row) if row is not None else None

    async def by_username(self, username: str) -> dict[str, Any] | None:
        row = await self._db.fetchrow(f"{_SELECT} WHERE u.username = lower($1)", username)
        return _profile(row) if row is not None else None

    async def update(self, user_id: uuid.UUID, changes: dict[str, Any]) -> None:
        """Change only the given fields of the user's own profile."""
        fields = [f for f in _EDITABLE if f in changes]
        if not fields:
            return
        sets = ", ".join(f"{f} = ${i + 2}" for i, f in enumerate(fields))
        values = [changes[f] if changes[f] is not None or "genres" not in f else [] for f in fields]
        await self._db.execute(
            f"UPDATE profiles SET {sets}, updated_at = now() WHERE user_id = $1", user_id, *values
        )
