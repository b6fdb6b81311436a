"""What nodes say to each other over the bus: subjects, and MessagePack bodies."""

from __future__ import annotations

from typing import Any

import msgpack


def ops_subject(room_id: str) -> str:
    """Requests to a room's owner: joins, ops, leaves and heartbeats of sockets on edges, and
    REST calls that need the live room."""
    return f"room.{room_id}.ops"


def events_subject(room_id: str) -> str:
    """What a room's owner showed, once per committed batch, for the nodes with its sockets."""
    return f"room.{room_id}.events"


def user_subject(user_id: str) -> str:
    """Private events and notifications of one user, for whichever nodes hold their sockets."""
    return f"user.{user_id}"


USERS = "user.*"
SANCTIONS = "sanctions"
BLOCKS = "blocks"  # a user's personal blocks changed: every node reloads them for its sockets


def pack(body: dict[str, Any]) -> bytes:
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return packed


def unpack(data: bytes) -> dict[str, Any]:
    """A body from the bus; ValueError if it is not a map (nodes speak only maps)."""
    try:
        body = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise ValueError(f"undecodable bus message: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("a bus message must be a map")  # noqa: TRY004 - callers take ValueError
    return body
