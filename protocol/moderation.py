"""REST shapes of the moderation log (REST.md "Moderation")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ModLogEntry(BaseModel):
    id: str
    action: str
    actor_id: str
    target_user_id: str | None
    room_id: str | None
    message_id: str | None
    reason: str | None
    metadata: dict[str, Any]
    created_at: str


class ModLogPage(BaseModel):
    items: list[ModLogEntry]
    next_cursor: str | None
