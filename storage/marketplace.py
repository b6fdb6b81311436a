"""Marketplace items: an artist's merch, concerts and tracks."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from storage.database import Database, Record, micros

_COLUMNS = """id, artist_id, type, title, description, price, currency, external_url, image_url, metadata,
              starts_at, active, created_at, updated_at"""
_FIELDS = ("type", "title", "description", "price", "currency", "external_url", "image_url", "metadata")


def _amount(price: str | None) -> Decimal | None:
    return Decimal(price) if price is not None else None


def _item(r: Record) -> dict[str, Any]:
    metadata = r["metadata"]
    return {
        "id": str(r["id"]),
        "artist_id": str(r["artist_id"]),
        "type": r["type"],
        "title": r["title"],
        "description": r["description"],
        "price": f"{r['price']:.2f}" if r["price"] is not None else None,
        "currency": r["currency"],
        "external_url": r["external_url"],
        "image_url": r["image_url"],
        "metadata": json.loads(metadata) if isinstance(metadata, str) else metadata,
        "active": r["active"],
        "created_at": r["created_at"].isoformat(),
        "updated_at": r["updated_at"].isoformat(),
    }


class Marketplace:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def is_verified_artist(self, user_id: uuid.UUID) -> bool:
        found = await self._db.fetchval(
            """SELECT true FROM users u JOIN artist_profiles a ON a.user_id = u.id
               WHERE u.id = $1 AND a.verified""",
            user_id,
        )
        return bool(found)

    async def create(
        self, artist_id: uuid.UUID, item: dict[str, Any], starts_at: datetime | None
    ) -> dict[str, Any]:
        row = await self._db.fetchrow(
            f"""INSERT INTO marketplace_items (artist_id, type, title, description, price, currency,
                                               external_url, image_url, metadata, starts_at)
                VALUES ($1, $2, $3, $4, $5::numeric, $6, $7, $8, $9::jsonb, $10) RETURNING {_COLUMNS}""",
            artist_id,
            item["type"],
            item["title"],
            item["description"],
            _amount(item["price"]),
            item["currency"],
            item["external_url"],
            item["image_url"],
            item["metadata"],  # (the pool's jsonb codec encodes it)
            starts_at,
        )
        assert row is not None
        return _item(row)

    async def get(self, item_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM marketplace_items WHERE id = $1", item_id)
        return _item(row) if row is not None else None

    async def replace(
        self, item_id: uuid.UUID, item: dict[str, Any], starts_at: datetime | None
    ) -> dict[str, Any]:
        """Store the item's whole new state (the caller merged and checked the change)."""
        row = await self._db.fetchrow(
            f"""UPDATE marketplace_items SET type = $2, title = $3, description = $4, price = $5::numeric,
                       currency = $6, external_url = $7, image_url = $8, metadata = $9::jsonb,
                       starts_at = $10, updated_at = now()
                WHERE id = $1 RETURNING {_COLUMNS}""",
            item_id,
            *(_amount(item[f]) if f == "price" else item[f] for f in _FIELDS),
            starts_at,
        )
        assert row is not None
        return _item(row)

    async def deactivate(self, item_id: uuid.UUID) -> None:
        await self._db.execute(
            "UPDATE marketplace_items SET active = false, updated_at = now() WHERE id = $1", item_id
        )

    async def listed(
        self,
        *,
        artist_id: uuid.UUID | None,
        item_type: str | None,
        upcoming: bool,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[dict[str, Any]]:
        """Active items newest first; ``upcoming``: concerts not yet started, soonest first."""
        if upcoming:
            order, compare, key = "starts_at, id", ">", "starts_at"
            extra = "AND type = 'concert' AND starts_at > now()"
        else:
            order, compare, key = "created_at DESC, id DESC", "<", "created_at"
            extra = ""
        rows = await self._db.fetch(
            f"""SELECT {_COLUMNS} FROM marketplace_items
                WHERE active AND ($1::uuid IS NULL OR artist_id = $1)
                  AND ($2::text IS NULL OR type = $2) {extra}
                  AND ($3::timestamptz IS NULL OR ({key}, id) {compare} ($3, $4))
                ORDER BY {order} LIMIT $5""",
            artist_id,
            item_type,
            after[0] if after else None,
            after[1] if after else None,
            limit + 1,
        )
        return [{**_item(r), "_key": (micros(r[key]), str(r["id"]))} for r in rows]
