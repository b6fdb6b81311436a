"""Linked accounts: tokens sealed before they reach the database, never read back out over REST."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from storage.database import Database, Record
from storage.sealing import Sealer

_OUT = "provider, provider_user_id, expires_at, last_sync_at, created_at"


def _out(r: Record) -> dict[str, Any]:
    return {k: r[k] for k in ("provider", "provider_user_id", "expires_at", "last_sync_at", "created_at")}


class LinkedAccountStore:
    def __init__(self, db: Database, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    @staticmethod
    def _context(user_id: uuid.UUID, provider: str, field: str) -> str:
        return f"{user_id}:{provider}:{field}"

    async def mine(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            f"SELECT {_OUT} FROM linked_accounts WHERE user_id = $1 ORDER BY provider", user_id
        )
        return [_out(r) for r in rows]

    async def put(
        self,
        user_id: uuid.UUID,
        provider: str,
        provider_user_id: str,
        access_token: str,
        refresh_token: str | None,
        expires_at: datetime | None,
    ) -> dict[str, Any]:
        access = self._sealer.seal(access_token, self._context(user_id, provider, "access"))
        refresh = (
            self._sealer.seal(refresh_token, self._context(user_id, provider, "refresh"))
            if refresh_token is not None
            else None
        )
        row = await self._db.fetchrow(
            f"""INSERT INTO linked_accounts (user_id, provider, provider_user_id, access_token, refresh_token,
                                             expires_at)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (user_id, provider) DO UPDATE
                SET provider_user_id = excluded.provider_user_id, access_token = excluded.access_token,
                    refresh_token = excluded.refresh_token, expires_at = excluded.expires_at,
                    updated_at = now()
                RETURNING {_OUT}""",
            user_id,
            provider,
            provider_user_id,
            access,
            refresh,
            expires_at,
        )
        assert row is not None
        return _out(row)

    async def remove(self, user_id: uuid.UUID, provider: str) -> bool:
        gone = await self._db.fetchval(
            "DELETE FROM linked_accounts WHERE user_id = $1 AND provider = $2 RETURNING true",
            user_id,
            provider,
        )
        return bool(gone)

    async def tokens(self, user_id: uuid.UUID, provider: str) -> tuple[str, str | None] | None:
        """The unsealed tokens, for a sync job on this server (never for a REST answer)."""
        row = await self._db.fetchrow(
            "SELECT access_token, refresh_token FROM linked_accounts WHERE user_id = $1 AND provider = $2",
            user_id,
            provider,
        )
        if row is None:
            return None
        access = self._sealer.open(row["access_token"], self._context(user_id, provider, "access"))
        refresh = row["refresh_token"]
        return access, (
            self._sealer.open(refresh, self._context(user_id, provider, "refresh"))
            if refresh is not None
            else None
        )
