"""REST bodies for DJ sessions (seed section 1). Replies use the live protocol's shapes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.tracks import TrackInput


class StartSessionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["fan", "artist", "public"]
    skip_ratio: float = Field(default=0.5, ge=0.1, le=1.0)


class QueueAddBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    track: TrackInput


class VoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Literal["up", "down", "none", "skip"]
