"""REST shapes of operations (REST.md "Operations (admins)"): the nodes alive, the rooms live
on them, and who owns a room (ARCHITECTURE.md "Many processes and machines")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from protocol.dj import NowPlayingOut


class NodeOut(BaseModel):
    """A server process alive now (its heartbeat is recent and it has not stopped)."""

    node_id: str
    host: str
    pid: int
    started_at: str
    heartbeat_at: str = Field(description="Its last lease renewal")
    rooms_owned: int = Field(description="Rooms whose live lease it holds")
    sockets: int = Field(description="Live sockets open on it, as of its last renewal")


class NodeList(BaseModel):
    items: list[NodeOut]


class LiveSessionOut(BaseModel):
    """The room's live DJ session, as its owner last saw it."""

    mode: Literal["fan", "artist", "public"]
    now_playing: NowPlayingOut | None


class LiveRoomOut(BaseModel):
    """A room with a live actor, as its owner last wrote it with its lease renewal."""

    room_id: str
    name: str
    node_id: str = Field(description="The node that owns the room")
    epoch: int = Field(description="The lease's epoch: it grows with every change of owner")
    seq: int = Field(description="The room's last event seq")
    sockets: int
    listeners: int
    session: LiveSessionOut | None


class LiveRoomPage(BaseModel):
    """Most listeners first (ties by room id)."""

    items: list[LiveRoomOut]
    next_cursor: str | None


class RoomOwnerOut(BaseModel):
    room_id: str
    node_id: str
    epoch: int
    expires_at: str = Field(description="When the lease runs out unless its owner renews it")


class LatencySummary(BaseModel):
    mean: float
    p50: float
    p90: float
    p99: float
    max: float


class JournalStatsOut(BaseModel):
    """The journal writer of the node that answered: totals since it started, and a summary of
    its most recent batches (ARCHITECTURE.md "Durability: group commit")."""

    node_id: str | None = Field(description="The node that answered (each node has its own journal)")
    batches: int = Field(description="Batches committed since the node started")
    events: int = Field(description="Durable events committed since the node started")
    recent_batches: int = Field(description="How many recent batches the summaries cover")
    commit_ms: LatencySummary | None = Field(description="Commit latency of the recent batches, in ms")
    batch_events: LatencySummary | None = Field(description="Durable events per recent batch")
