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
