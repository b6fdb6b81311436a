"""REST shapes for rooms and chat history."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

RoomType = Literal["public", "genre", "artist", "private"]
Visibility = Literal["public", "unlisted", "private"]


def _labels(values: list[str]) -> list[str]:
    cleaned: list[str] = []
    for value in values:
        label = value.strip().lower()
        if not 1 <= len(label) <= 40:
            raise ValueError("each entry must be 1-40 characters")
        if label not in cleaned:
            cleaned.append(label)
    return cleaned


Labels = Annotated[list[str], Field(max_length=10), AfterValidator(_labels)]


class CreateRoomBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    type: RoomType = "public"
    visibility: Visibility | None = None
    slug: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    description: str | None = Field(default=None, max_length=2000)
    genres: Labels = Field(default_factory=list)
    tags: Labels = Field(default_factory=list)

    def resolved_visibility(self) -> str:
        """A private-type room is always private; otherwise public unless said."""
        if self.type == "private":
            return "private"
        return self.visibility or "public"


class UpdateRoomBody(BaseModel):
    """Fields to change; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    visibility: Visibility | None = None
    genres: Labels | None = None
    tags: Labels | None = None


class RoleChange(BaseModel):
    """The live side of a role change (REST-only op ``member.role``)."""

    user_id: str
    role: Literal["moderator", "member"]


class MemberRoleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["moderator", "member"]


class DiscoverQuery(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=512)
    q: str | None = Field(default=None, min_length=1, max_length=100)
    type: RoomType | None = None
    genre: str | None = Field(default=None, min_length=1, max_length=40)
    tag: str | None = Field(default=None, min_length=1, max_length=40)


class TransferBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: uuid.UUID


class OwnerChange(BaseModel):
    """The live side of an ownership transfer (REST-only op ``room.transfer``)."""

    new_owner_id: str


class InviteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: uuid.UUID


class JoinRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str | None = Field(default=None, max_length=500)


class DenyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=500)


class RoomOut(BaseModel):
    id: str
    slug: str
    name: str
    type: RoomType
    visibility: Visibility
    owner_id: str
    description: str | None
    genres: list[str]
    tags: list[str]
    pinned_track: dict[str, Any] | None
    pinned_message_ids: list[str]
    listeners: int
    created_at: str


class MessageOut(BaseModel):
    id: str
    user_id: str
    username: str
    text: str
    reply_to: str | None
    parent_id: str | None
    track: dict[str, Any] | None
    mentions: list[str]
    reactions: dict[str, int]
    at: int
    seq: int


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None
