"""REST shapes for personal blocks (REST.md "Blocks")."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

from protocol.refs import UserRef


class BlockBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: uuid.UUID


class BlockOut(BaseModel):
    """Someone the caller blocks, and since when."""

    user: UserRef
    created_at: str


class BlockPage(BaseModel):
    items: list[BlockOut]
    next_cursor: str | None
