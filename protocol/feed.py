"""REST shapes of the newsfeed (REST.md "Newsfeed")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from protocol.refs import RoomRef, TrackOut, UserRef

ReactionType = Literal["clap", "fire", "heart", "star", "wave"]
REACTION_TYPES: tuple[str, ...] = ("clap", "fire", "heart", "star", "wave")
FeedEventType = Literal[
    "room_created",
    "room_live_started",
    "user_joined_room",
    "track_added",
    "dj_set_started",
    "chat_pinned",
    "playlist_created",
    "user_followed",
]


class PlaylistRef(BaseModel):
    id: str
    name: str


class FeedItem(BaseModel):
    id: str
    type: FeedEventType
    actor: UserRef
    room: RoomRef | None
    playlist: PlaylistRef | None
    track: TrackOut | None
    target_user: UserRef | None
    created_at: str
    collapsed_count: int
    actors: list[UserRef]
    reactions: dict[str, int]
    my_reactions: list[ReactionType]


class FeedPage(BaseModel):
    items: list[FeedItem]
    next_cursor: str | None


class ReactionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: ReactionType


class ReactionOut(BaseModel):
    event_id: str
    type: ReactionType
