"""Shapes that many REST answers share (REST.md "Common shapes")."""

from __future__ import annotations

from pydantic import BaseModel


class UserRef(BaseModel):
    id: str
    username: str
    display_name: str | None
    avatar_url: str | None


class RoomRef(BaseModel):
    id: str
    slug: str
    name: str


class TrackOut(BaseModel):
    """The Track shape of PROTOCOL.md."""

    id: str
    provider: str
    provider_id: str
    title: str
    artist: str
    duration_ms: int
    artwork_url: str | None
