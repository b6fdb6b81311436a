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
from protocol.ops import (
    BanData,
    ChatSendData,
    KickData,
    MessageRefData,
    MuteData,
    PinTrackData,
    QueueAddData,
    ReactData,
    SessionStartData,
    UserRefData,
)
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
    """The new object id and the context the op's ``decide`` will need."""
    context: dict[str, Any] = {}
    new_id = ""
    wanted: list[uuid.UUID] = []
    if isinstance(data, ChatSendData):
        new_id = str(uuid.uuid4())
        if data.track is not None:
            context["track"] = await rooms.upsert_track(data.track.spec())
        names = mentioned_usernames(data.text)
        if names:
            context["mentions"] = await rooms.user_ids_by_username(names, room_id)
        if data.reply_to is not None:
            wanted.append(data.reply_to)
    elif isinstance(data, MessageRefData | ReactData):
        wanted.append(data.message_id)
    elif isinstance(data, PinTrackData) and data.track is not None:
        context["track"] = await rooms.upsert_track(data.track.spec())
    elif isinstance(data, QueueAddData):
        new_id = str(uuid.uuid4())
        context["track"] = await rooms.upsert_track(data.track.spec())
    elif isinstance(data, UserRefData | MuteData | KickData | BanData):
        # None: no such user; the rule refuses it before anything is journaled (the log's and the
        # bans' foreign keys would otherwise fail the commit and restart the room)
        context["target_role"] = await rooms.target_role(room_id, data.user_id)
    elif isinstance(data, SessionStartData):
        new_id = str(uuid.uuid4())
    missing = [m for m in wanted if str(m) not in actor.state.messages]
    if missing:
        context["messages"] = await rooms.messages_by_id(room_id, missing)
    return new_id, context


async def stored_for_resume(rooms: Rooms, actor: RoomActor, since: int | None) -> list[Event]:
    """A joining socket's events after ``since`` that the actor's ring no longer holds, read
    before the join reaches the actor (which then replays them, then its ring)."""
    if since is None or since + 1 >= actor.ring_start():
        return []
    return await rooms.events_after(uuid.UUID(actor.room_id), since, MAX_REPLAY)
