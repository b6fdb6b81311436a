"""REST shapes for follows, likes and their counts (REST.md "Social")."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.refs import UserRef

LikeableType = Literal["track_ref", "playlist", "playlist_item", "message", "feed_event"]
LIKEABLE_TYPES: tuple[str, ...] = ("track_ref", "playlist", "playlist_item", "message", "feed_event")
FOLLOWABLE_TYPES: tuple[str, ...] = ("user", "artist")


class FollowBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_id: uuid.UUID
    target_type: Literal["user", "artist"]


class FollowOut(BaseModel):
    follower_id: str
    followee_id: str
    followee_type: Literal["user", "artist"]
    created_at: str


class FollowEntry(BaseModel):
    user: UserRef
    followed_at: str


class FollowPage(BaseModel):
    items: list[FollowEntry]
    next_cursor: str | None


class LikeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entity_type: LikeableType
    entity_id: uuid.UUID


class LikeOut(BaseModel):
    entity_type: LikeableType
    entity_id: str
    liked_at: str
    likes_count: int


class LikerEntry(BaseModel):
    user: UserRef
    liked_at: str


class LikersPage(BaseModel):
    items: list[LikerEntry]
    next_cursor: str | None
    likes_count: int


class MyLikeEntry(BaseModel):
    entity_type: LikeableType
    entity_id: str
    liked_at: str


class MyLikesPage(BaseModel):
    items: list[MyLikeEntry]
    next_cursor: str | None


class StatsOut(BaseModel):
    entity_type: str = Field(
        description="track_ref, playlist, playlist_item, message, feed_event, user or artist"
    )
    entity_id: str
    likes_count: int
    follows_count: int
