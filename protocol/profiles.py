"""REST shapes for fan and artist profiles."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from protocol.rooms import Labels


def _https(value: str | None) -> str | None:
    if value is not None and not value.startswith("https://"):
        raise ValueError("must be an https URL")
    return value


class UpdateProfileBody(BaseModel):
    """Fields to change; those left out stay as they are (null clears a text field)."""

    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, min_length=1, max_length=60)
    bio: str | None = Field(default=None, max_length=1000)
    avatar_url: Annotated[str | None, Field(default=None, max_length=2048), AfterValidator(_https)] = None
    favorite_genres: Labels | None = None
    onboarding_genres: Labels | None = None


class ArtistOut(BaseModel):
    links: list[str]
    verified: bool


class ProfileOut(BaseModel):
    user_id: str
    username: str
    display_name: str | None
    bio: str | None
    avatar_url: str | None
    favorite_genres: list[str]
    onboarding_genres: list[str]
    role: str
    artist: ArtistOut | None
