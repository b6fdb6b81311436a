"""REST shapes for DJ sessions (seed section 1). Replies use the live protocol's shapes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.refs import TrackOut
from protocol.tracks import TrackInput


class StartSessionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["fan", "artist", "public"]
    skip_ratio: float = Field(default=0.5, ge=0.1, le=1.0)


class QueueAddBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    track: TrackInput


class QueueMoveBody(BaseModel):
    """Move a queued item within its DJ's queue (1 = plays first of that queue)."""

    model_config = ConfigDict(extra="forbid")
    position: int = Field(ge=1, le=1000, strict=True)


class QueueMoveData(BaseModel):
    """The live side of a queue reorder (REST-only op ``queue.move``)."""

    model_config = ConfigDict(extra="forbid")
    item_id: str
    position: int = Field(ge=1, le=1000)


class VoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Literal["up", "down", "none", "skip"]


class VotesOut(BaseModel):
    up: int
    down: int


class PlayingVotesOut(VotesOut):
    skip: int = Field(description="Votes to skip the playing track")


class QueueItemOut(BaseModel):
    """A queued (or playing) track and who added it."""

    item_id: str
    track: TrackOut
    added_by: str
    position: int
    votes: VotesOut


class NowPlayingOut(BaseModel):
    """The playing track; ``started_at`` and ``ends_at`` are epoch milliseconds."""

    item: QueueItemOut
    dj_id: str
    started_at: int
    ends_at: int
    votes: PlayingVotesOut


class RotationOut(BaseModel):
    """The DJs taking turns (fan mode), in join order, and whose turn it is."""

    djs: list[str]
    active: str | None


class SessionOut(BaseModel):
    """A live DJ session, as the live welcome's ``session`` shows it."""

    session_id: str
    mode: Literal["fan", "artist", "public"]
    host_id: str
    skip_ratio: float
    started_at: int
    rotation: RotationOut
    now_playing: NowPlayingOut | None
    queue: list[QueueItemOut] = Field(description="Upcoming items in the order they will play")


class SessionStartedOut(BaseModel):
    session_id: str
    session: SessionOut | None


class SessionStoppedOut(BaseModel):
    """The session has ended (sockets in the room see ``session.ended``)."""


class SessionDetailsOut(BaseModel):
    """A session, live or ended; ``state`` while it is live."""

    session_id: str
    room_id: str
    live: bool
    mode: Literal["fan", "artist", "public"] | None = None
    host_id: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    end_reason: str | None = None
    state: SessionOut | None = None


class QueueAddedOut(BaseModel):
    item_id: str
    queue: list[QueueItemOut]


class QueueOut(BaseModel):
    """The session's upcoming items, in play order."""

    session_id: str
    queue: list[QueueItemOut]


class VoteOut(BaseModel):
    """The item's tally after the vote (``skip`` counts only for the playing item)."""

    item_id: str
    up: int
    down: int
    skip: int
