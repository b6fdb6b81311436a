"""REST shapes of global search (REST.md "Search").

Every hit carries its ``score``: higher is better, in [0, 1]. The thirds are tiers: above
2/3 every query word (or a near spelling of it) is in the name, above 1/3 every word is
somewhere (tags, genres, description, a track's artist), below that some word is.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, RootModel

from protocol.refs import TrackOut, UserRef
from protocol.rooms import Visibility

SearchType = Literal["rooms", "artists", "playlists", "tracks", "users"]
GROUPED_EACH = 5  # hits of each type in the answer without ``type``

MAX_QUERY = 200


def _trimmed(value: str) -> str:
    """The search text, trimmed: 1-200 characters are left, or it is refused."""
    text = value.strip()
    if not 1 <= len(text) <= MAX_QUERY:
        raise ValueError(f"must be 1-{MAX_QUERY} characters once surrounding spaces are trimmed")
    return text


# No maxLength in the schema: 200 characters between surrounding spaces are fine.
SearchText = Annotated[str, Field(min_length=1), AfterValidator(_trimmed)]

Score = Annotated[float, Field(ge=0, le=1, description="Higher is better; ties are ordered by id")]


class RoomHit(BaseModel):
    """A public room, or a private one the caller is a member of (never an unlisted one)."""

    id: str
    slug: str
    name: str
    description: str | None
    genres: list[str]
    tags: list[str]
    visibility: Visibility
    score: Score


class ArtistHit(BaseModel):
    user: UserRef
    artist_name: str
    verified: bool
    score: Score


class PlaylistHit(BaseModel):
    """A public playlist, or a private one the caller owns or collaborates on."""

    id: str
    name: str
    description: str | None
    is_public: bool
    items_count: int
    owner: UserRef
    score: Score


class TrackHit(BaseModel):
    track: TrackOut
    score: Score


class UserHit(UserRef):
    """A user found by username or display name."""

    score: Score


class SearchGroups(BaseModel):
    """Without ``type``: the best few of every type."""

    rooms: list[RoomHit]
    artists: list[ArtistHit]
    playlists: list[PlaylistHit]
    tracks: list[TrackHit]
    users: list[UserHit]


class RoomHits(BaseModel):
    """``type=rooms``: a page, best first."""

    items: list[RoomHit]
    next_cursor: str | None


class ArtistHits(BaseModel):
    """``type=artists``: a page, best first."""

    items: list[ArtistHit]
    next_cursor: str | None


class PlaylistHits(BaseModel):
    """``type=playlists``: a page, best first."""

    items: list[PlaylistHit]
    next_cursor: str | None


class TrackHits(BaseModel):
    """``type=tracks``: a page, best first."""

    items: list[TrackHit]
    next_cursor: str | None


class UserHits(BaseModel):
    """``type=users``: a page, best first."""

    items: list[UserHit]
    next_cursor: str | None


class SearchResults(RootModel[SearchGroups | RoomHits | ArtistHits | PlaylistHits | TrackHits | UserHits]):
    """The best few of every type (no ``type``), or a page of one type."""
