"""Look-ups an op needs before it reaches its room actor, done by the socket's own task.

The actor never waits on the database for an op: resolving a track link to a
row, @mentions to user ids, and loading messages the actor does not hold in
memory all happen here, in the connection's reader.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from pydantic import BaseModel

from actors.room_actor import MAX_REPLAY, RoomActor
from protocol.events import Event
from protocol.ops import MENTIONS, MESSAGES, NEW_ID, TARGET_ROLE, TRACK
from storage.rooms import Rooms

MENTION = re.compile(r"(?<![A-Za-z0-9_])@([A-Za-z0-9_]{3,30})(?![A-Za-z0-9_])")
MAX_MENTIONS = 10


def mentioned_usernames(text: str) -> list[str]:
    """Distinct @usernames in ``text``, in order, at most ten."""
    seen: list[str] = []
    for match in MENTION.finditer(text):
        name = match.group(1).lower()
        if name not in seen:
            seen.append(name)
            if len(seen) == MAX_MENTIONS:
                break
    return seen


async def prepare(
    rooms: Rooms, actor: RoomActor, room_id: uuid.UUID, op: str, data: BaseModel
) -> tuple[str, dict[str, Any]]:
    """The new object id and the context the op's ``decide`` will need: what its data class
    declares it needs (``protocol.ops`` ``needs``), looked up here, never by the actor."""
    needs: frozenset[str] = getattr(data, "needs", frozenset())
    context: dict[str, Any] = {}
    new_id = str(uuid.uuid4()) if NEW_ID in needs else ""
    if TRACK in needs:
        track = getattr(data, "track", None)
        if track is not None:
            context["track"] = await rooms.upsert_track(track.spec())
    if MENTIONS in needs:
        names = mentioned_usernames(getattr(data, "text", ""))
        if names:
            context["mentions"] = await rooms.user_ids_by_username(names, room_id)
    if TARGET_ROLE in needs:
        # None: no such user; the rule refuses it before anything is journaled (the log's and the
        # bans' foreign keys would otherwise fail the commit and restart the room)
        target = getattr(data, "user_id", None)
        if isinstance(target, uuid.UUID):
            context["target_role"] = await rooms.target_role(room_id, target)
    if MESSAGES in needs:
        named = (getattr(data, "message_id", None), getattr(data, "reply_to", None))
        missing = [m for m in named if m is not None and str(m) not in actor.state.messages]
        if missing:
            context["messages"] = await rooms.messages_by_id(room_id, missing)
    return new_id, context


async def stored_for_resume(rooms: Rooms, actor: RoomActor, since: int | None) -> list[Event]:
    """A joining socket's events after ``since`` that the actor's ring no longer holds, read
    before the join reaches the actor (which then replays them, then its ring)."""
    if since is None or since + 1 >= actor.ring_start():
        return []
    return await rooms.events_after(uuid.UUID(actor.room_id), since, MAX_REPLAY)
