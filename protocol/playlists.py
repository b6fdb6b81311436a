"""REST shapes for playlists, their items and collaborators."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocol.refs import TrackOut, UserRef
from protocol.tracks import TrackInput

MAX_ITEMS = 1000
MAX_COLLABORATORS = 50


class CreatePlaylistBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, pattern=r"\S")
    description: str | None = Field(default=None, max_length=1000)
    is_public: bool = True


class UpdatePlaylistBody(BaseModel):
    """Fields to change; those left out stay as they are (a null description clears it)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"\S")
    description: str | None = Field(default=None, max_length=1000)
    is_public: bool | None = None

    @model_validator(mode="after")
    def _no_null_required(self) -> UpdatePlaylistBody:
        for field in ("name", "is_public"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


class AddItemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    track: TrackInput


class MoveItemBody(BaseModel):
    """Move the item to this 0-based position (past the end means last)."""

    model_config = ConfigDict(extra="forbid")
    position: int = Field(ge=0, le=MAX_ITEMS)


class AddCollaboratorBody(BaseModel):
    """The user to invite, by id or by username (one of the two)."""

    model_config = ConfigDict(extra="forbid")
    user_id: uuid.UUID | None = None
    username: str | None = Field(default=None, min_length=3, max_length=30)

    @model_validator(mode="after")
    def _one_of(self) -> AddCollaboratorBody:
        if (self.user_id is None) == (self.username is None):
            raise ValueError("give exactly one of user_id and username")
        return self


class PlaylistOut(BaseModel):
    id: str
    owner: UserRef
    name: str
    description: str | None
    is_public: bool
    items_count: int
    my_role: Literal["owner", "collaborator"] | None
    created_at: str
    updated_at: str


class PlaylistPage(BaseModel):
    items: list[PlaylistOut]
    next_cursor: str | None


class PlaylistItemOut(BaseModel):
    id: str
    playlist_id: str
    track: TrackOut
    added_by: UserRef | None
    position: int
    created_at: str


class PlaylistItemPage(BaseModel):
    items: list[PlaylistItemOut]
    next_cursor: str | None


class CollaboratorOut(BaseModel):
    user: UserRef
    added_at: str


class CollaboratorPage(BaseModel):
    items: list[CollaboratorOut]
    next_cursor: str | None
