"""What a room actor is asked to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from actors.room_state import Connection


@dataclass(frozen=True, slots=True)
class Join:
    """A socket opened in the room (already authorised by the gateway)."""

    conn_id: int
    user_id: str | None
    username: str | None
    role: str
    is_admin: bool = False
    is_artist: bool = False
    site_muted_until: int | None = None  # ms; muted site-wide by an admin (told in the welcome)


@dataclass(frozen=True, slots=True)
class Leave:
    conn_id: int


@dataclass(frozen=True, slots=True)
class Op:
    """A client op from one socket, validated, with what the gateway looked up for it.

    ``new_id`` is the id a created object (a chat message) gets, chosen
    outside the core so that ``decide`` stays deterministic. ``context``
    carries rows read before the op reached the actor: the resolved track,
    mention ids, and messages the actor may not hold in memory.
    """

    conn_id: int
    op: str
    data: BaseModel
    new_id: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    caller: Connection | None = None  # a REST caller, who has no socket in the room


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: do the next thing that is due (a track ends, the next one starts, ...)."""


Command = Join | Leave | Op | Tick
