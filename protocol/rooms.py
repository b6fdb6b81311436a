"""REST shapes for rooms, their members and join requests, and chat history."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from protocol.refs import TrackOut

RoomType = Literal["public", "genre", "artist", "private"]
Visibility = Literal["public", "unlisted", "private"]
MemberRole = Literal["owner", "moderator", "member"]


def _labels(values: list[str]) -> list[str]:
    cleaned: list[str] = []
    for value in values:
        label = value.strip().lower()
        if not 1 <= len(label) <= 40:
            raise ValueError("each entry must be 1-40 characters")
        if label not in cleaned:
            cleaned.append(label)
    return cleaned


def _name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may be left out to keep it, but not null")
    return value


def _never_null(schema: dict[str, Any]) -> None:
    """The JSON schema of a field that may be left out but is never null."""
    options = [option for option in schema.pop("anyOf", []) if option.get("type") != "null"]
    if len(options) == 1:
        schema.update(options[0])
    schema.pop("default", None)


Labels = Annotated[list[str], Field(max_length=10), AfterValidator(_labels)]
RoomName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_name)]


class CreateRoomBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: RoomName
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
    """Fields to change; those left out stay as they are (only ``description`` may be null, to clear it)."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[RoomName | None, BeforeValidator(_not_null), Field(json_schema_extra=_never_null)] = None
    description: str | None = Field(default=None, max_length=2000)
    visibility: Annotated[
        Visibility | None, BeforeValidator(_not_null), Field(json_schema_extra=_never_null)
    ] = None
    genres: Annotated[Labels | None, BeforeValidator(_not_null), Field(json_schema_extra=_never_null)] = None
    tags: Annotated[Labels | None, BeforeValidator(_not_null), Field(json_schema_extra=_never_null)] = None


class RoleChange(BaseModel):
    """The live side of a role change (REST-only op ``member.role``)."""

    user_id: str
    role: Literal["moderator", "member"]


class MemberRoleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["moderator", "member"]


class DiscoverQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=20, ge=1, le=100, description="Page size")
    cursor: str | None = Field(
        default=None, max_length=512, description="The next_cursor of the previous page"
    )
    q: str | None = Field(
        default=None, min_length=1, max_length=100, description="Part of the name, or a whole tag or genre"
    )
    type: RoomType | None = Field(default=None, description="Only rooms of this type")
    genre: str | None = Field(
        default=None, min_length=1, max_length=40, description="Only rooms with this genre"
    )
    tag: str | None = Field(default=None, min_length=1, max_length=40, description="Only rooms with this tag")


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
    """A room; ``listeners`` is how many people are in it right now."""

    id: str
    slug: str
    name: str
    type: RoomType
    visibility: Visibility
    owner_id: str
    description: str | None
    genres: list[str]
    tags: list[str]
    pinned_track: TrackOut | None
    pinned_message_ids: list[str]
    listeners: int
    created_at: str


class RoomPage(BaseModel):
    """A page of rooms, newest first."""

    items: list[RoomOut]
    next_cursor: str | None


class TrendingRoomOut(RoomOut):
    score: int = Field(description="10 per listener now, plus 1 per chat message in the last 24 hours")


class TrendingPage(BaseModel):
    """The rooms trending now, best first: one page (``next_cursor`` is always null)."""

    items: list[TrendingRoomOut]
    next_cursor: str | None


class MembershipOut(BaseModel):
    """The caller's membership of the room."""

    room_id: str
    role: MemberRole


class MemberUserOut(BaseModel):
    id: str
    username: str
    display_name: str | None
    avatar_url: str | None


class MemberOut(BaseModel):
    user: MemberUserOut
    role: MemberRole
    joined_at: str


class MemberPage(BaseModel):
    """A page of members, in join order."""

    items: list[MemberOut]
    next_cursor: str | None


class MemberRoleOut(BaseModel):
    """The member's new role."""

    user_id: str
    role: Literal["moderator", "member"]


class InviteOut(BaseModel):
    """The invited user is now a member."""

    room_id: str
    user_id: str
    role: Literal["member"]


class JoinRequestOut(BaseModel):
    """A request to join a private room."""

    id: str
    room_id: str
    user_id: str
    message: str | None
    status: Literal["pending", "approved", "denied"]
    reason: str | None
    created_at: str
    decided_at: str | None


class JoinRequestPage(BaseModel):
    """A page of pending join requests, oldest first."""

    items: list[JoinRequestOut]
    next_cursor: str | None


class MessageOut(BaseModel):
    """A chat message; ``parent_id`` (= ``reply_to``) is the message it replies to."""

    id: str
    user_id: str
    username: str
    text: str
    reply_to: str | None
    parent_id: str | None
    track: TrackOut | None
    mentions: list[str]
    reactions: dict[str, int]
    at: int
    seq: int


class HiddenMessageOut(BaseModel):
    """A message by someone the reader blocks: only where it was (PROTOCOL.md "Personal blocks")."""

    id: str
    user_id: str
    hidden: Literal[True]
    seq: int


class MessagePage(BaseModel):
    """A page of chat history, newest first."""

    items: list[MessageOut | HiddenMessageOut]
    next_cursor: str | None
