"""REST shapes of recommendations (REST.md "Recommendations and linked accounts").

A recommendation's ``id`` is ``"<entity_type>:<entity_id>"`` (``room:…``, ``playlist:…``,
``artist:…``, the artist's user id): stable for as long as the entity exists and enough to
dismiss it, so nothing about a recommendation is stored but its dismissal.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.refs import UserRef

RecommendationType = Literal["rooms", "playlists", "artists"]
EntityType = Literal["room", "playlist", "artist"]
# ?type= (plural, like search) -> the entity_type of its items
ENTITY_TYPES: dict[str, EntityType] = {"rooms": "room", "playlists": "playlist", "artists": "artist"}


def recommendation_id(entity_type: str, entity_id: str) -> str:
    return f"{entity_type}:{entity_id}"


def parse_recommendation_id(raw: str) -> tuple[EntityType, uuid.UUID] | None:
    """(entity_type, entity_id) from an id exactly as this API gives them out (the uuid in its
    canonical lower-case form: one entity, one id); None for anything else."""
    kind, _, rest = raw.partition(":")
    for entity_type in ENTITY_TYPES.values():
        if kind == entity_type:
            try:
                entity_id = uuid.UUID(rest)
            except ValueError:
                return None
            return (entity_type, entity_id) if str(entity_id) == rest else None
    return None


class _Summary(BaseModel):
    # A summary has exactly its own fields, so a room's never passes for a playlist's.
    model_config = ConfigDict(extra="forbid")


class RoomSummary(_Summary):
    id: str
    slug: str
    name: str
    description: str | None
    genres: list[str]
    owner: UserRef | None


class PlaylistSummary(_Summary):
    id: str
    name: str
    description: str | None
    owner: UserRef
    items_count: int


class ArtistSummary(_Summary):
    user: UserRef
    artist_name: str
    verified: bool


class RecommendationOut(BaseModel):
    id: str = Field(description="'<entity_type>:<entity_id>': what POST …/:id/dismiss takes")
    entity_type: EntityType
    entity_id: str = Field(description="The room's, playlist's, or artist's user id")
    entity: RoomSummary | PlaylistSummary | ArtistSummary
    score: float = Field(description="The sum of the entity's signals; items come highest first")
    reason: str = Field(description="Its strongest signal in words, e.g. 'Because you follow ana'")


class RecommendationList(BaseModel):
    items: list[RecommendationOut]
