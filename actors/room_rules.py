"""``decide``: the rules of a live room, as a pure function of state, command and time.

It checks a command against the state and returns the events it causes (or
raises a ProtocolError); it never changes the state. ``RoomState.apply`` does,
one event at a time, so replaying the journal rebuilds exactly the same room.
"""

from __future__ import annotations

from typing import Any

from actors.commands import Command, Join, Leave, Op, Tick
from actors.decision import Decision, EventBuilder
from actors.moderation_rules import MODERATION_OPS
from actors.room_state import MAX_PINNED, Connection, Message, RoomState
from actors.session_rules import SESSION_OPS, end_session, is_mod, queue_move, settle_step
from protocol.errors import BadRequest, Conflict, Forbidden, Muted, NotFound, Unauthorized
from protocol.ops import ChatSendData, MessageRefData, PinTrackData, ReactData
from protocol.rooms import OwnerChange, RoleChange, UpdateRoomBody


def decide(state: RoomState, command: Command, now: int) -> Decision:
    """The events ``command`` causes at time ``now`` (ms), and the op's reply data."""
    b = EventBuilder(state, now)
    if isinstance(command, Join):
        _join(b, command)
        return Decision(b.events)
    if isinstance(command, Leave):
        _leave(b, command)
        return Decision(b.events)
    if isinstance(command, Tick):
        settle_step(b)
        return Decision(b.events)
    conn = command.caller or state.connections.get(command.conn_id)
    if conn is None:
        raise Unauthorized("this socket is not in the room")
    if command.op == "ping":
        return Decision([], {"ts": now})
    if state.deleted:
        raise NotFound("this room was deleted")
    if conn.user_id is None:
        raise Unauthorized("guests may only listen; log in to take part")
    handler = _OPS.get(command.op)
    if handler is None:  # every client op has a handler (tests/test_event_catalog.py): a REST-only slip
        raise BadRequest(f"unknown op {command.op!r}", field="op")
    _seen(b, conn.user_id)
    reply = handler(b, conn, command)
    return Decision(b.events, reply if reply is not None else {})


SEEN_EVERY_MS = 1000  # a DJ's activity is noted at most this often (the away limit is in seconds)


def _seen(b: EventBuilder, user_id: str) -> None:
    """A DJ acted in the room: they are not away from it (PROTOCOL.md "Away DJs")."""
    session = b.state.session
    if session is not None and user_id in session.djs:
        last = session.last_seen.get(user_id)
        if last is None or b.now - last >= SEEN_EVERY_MS:
            b.ephemeral("dj.seen", {"user_id": user_id})


def _join(b: EventBuilder, command: Join) -> None:
    first = command.user_id is not None and command.user_id not in b.state.presence
    b.ephemeral(
        "socket.open",
        {
            "conn_id": command.conn_id,
            "user_id": command.user_id,
            "username": command.username,
            "role": command.role,
            "is_admin": command.is_admin,
            "is_artist": command.is_artist,
        },
    )
    if first:
        b.ephemeral("presence.join", {"user_id": command.user_id, "username": command.username})


def _leave(b: EventBuilder, command: Leave) -> None:
    conn = b.state.connections.get(command.conn_id)
    if conn is None:
        return
    b.ephemeral("socket.close", {"conn_id": command.conn_id})
    if conn.user_id is not None and b.state.presence.get(conn.user_id) == 1:
        b.ephemeral("presence.leave", {"user_id": conn.user_id})


def _require_mod(conn: Connection) -> None:
    if not is_mod(conn):
        raise Forbidden("only the room's owner or moderators may do that")


def _find_message(b: EventBuilder, command: Op, message_id: str) -> tuple[Message, dict[str, Any] | None]:
    """The live message and, if it came from the op's context, the data to adopt it by."""
    message = b.state.messages.get(message_id)
    if message is not None:
        if message.deleted:
            raise NotFound("that message was deleted", field="message_id")
        return message, None
    loaded = command.context.get("messages", {}).get(message_id)
    if loaded is None or loaded.get("deleted"):
        raise NotFound("no such message in this room", field="message_id")
    return Message.from_dict(loaded), loaded


def _with_adopt(adopt: dict[str, Any] | None) -> dict[str, Any]:
    return {"adopt": adopt} if adopt is not None else {}


def _chat_send(b: EventBuilder, conn: Connection, command: Op) -> dict[str, Any]:
    data = command.data
    assert isinstance(data, ChatSendData) and conn.user_id is not None
    if data.nonce is not None:
        # A retry of a message that already exists is answered first, whatever changed since.
        seen = b.state.nonces.get(RoomState.nonce_key(conn.user_id, data.nonce))
        if seen is not None:
            return {"message_id": seen[0], "seq": seen[1]}
    site_until = command.context.get("site_muted_until")
    if site_until is not None:  # muted site-wide by an admin: in every room
        raise Muted(f"you are muted on seda.fm until {site_until}", details={"until": site_until})
    until = b.state.muted_until(conn.user_id, b.now)
    if until is not None:
        raise Muted(f"you are muted in this room until {until}")
    reply_to = str(data.reply_to) if data.reply_to is not None else None
    if reply_to is not None:
        parent = b.state.messages.get(reply_to)
        known = parent is not None and not parent.deleted
        if not known and reply_to not in command.context.get("messages", {}):
            raise NotFound("reply_to: no such message in this room", field="reply_to")
        if not known and command.context["messages"][reply_to].get("deleted"):
            raise NotFound("reply_to: that message was deleted", field="reply_to")
    track = command.context.get("track") if data.track is not None else None
    event = b.durable(
        "chat.message",
        {
            "id": command.new_id,
            "user_id": conn.user_id,
            "username": conn.username,
            "text": data.text,
            "reply_to": reply_to,
            "track": track,
            "mentions": list(command.context.get("mentions", [])),
            "at": b.now,
            "reactions": {},
        },
        {"nonce": data.nonce} if data.nonce is not None else None,
    )
    return {"message_id": command.new_id, "seq": event.seq}


def _chat_delete(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, MessageRefData)
    message, adopt = _find_message(b, command, str(data.message_id))
    if message.user_id != conn.user_id and not is_mod(conn):
        raise Forbidden("only the author or a moderator may delete a message")
    if message.user_id == b.state.room.owner_id and conn.user_id != message.user_id and not conn.is_admin:
        raise Forbidden("moderators cannot act on the room's owner")
    meta = _with_adopt(adopt)
    if message.id in b.state.pinned_message_ids:
        meta["pinned_message_ids"] = [m for m in b.state.pinned_message_ids if m != message.id]
    if message.user_id != conn.user_id:  # a moderator's act, so it is logged
        meta["modlog"] = {
            "action": "delete_message",
            "actor_id": conn.user_id,
            "target_user_id": message.user_id,
            "target_message_id": message.id,
        }
    b.durable("chat.deleted", {"id": message.id, "by": conn.user_id}, meta)


def _chat_react(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, ReactData) and conn.user_id is not None
    message, adopt = _find_message(b, command, str(data.message_id))
    users = message.reactions.get(data.emoji, [])
    adding = command.op == "chat.react"
    if (conn.user_id in users) == adding:
        return  # already so: nothing changes
    count = len(users) + (1 if adding else -1)
    b.durable(
        "chat.reaction",
        {
            "message_id": message.id,
            "emoji": data.emoji,
            "user_id": conn.user_id,
            "count": count,
            "added": adding,
        },
        _with_adopt(adopt),
    )


def _chat_pin(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, MessageRefData)
    _require_mod(conn)
    message, adopt = _find_message(b, command, str(data.message_id))
    pinned = b.state.pinned_message_ids
    if message.id in pinned:
        return
    if len(pinned) >= MAX_PINNED:
        raise Conflict(f"a room can pin at most {MAX_PINNED} messages; unpin one first", field="message_id")
    meta = _with_adopt(adopt)
    meta["pinned_message_ids"] = [*pinned, message.id]
    b.durable("chat.pinned", {"message_id": message.id, "by": conn.user_id}, meta)


def _chat_unpin(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, MessageRefData)
    _require_mod(conn)
    message_id = str(data.message_id)
    pinned = b.state.pinned_message_ids
    if message_id not in pinned:
        raise NotFound("that message is not pinned", field="message_id")
    b.durable(
        "chat.unpinned",
        {"message_id": message_id, "by": conn.user_id},
        {"pinned_message_ids": [m for m in pinned if m != message_id]},
    )


def _room_pin_track(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, PinTrackData)
    _require_mod(conn)
    room = b.state.room_wire()
    room["pinned_track"] = command.context.get("track") if data.track is not None else None
    b.durable("room.updated", {"room": room})


def _room_update(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, UpdateRoomBody)
    if conn.user_id != b.state.room.owner_id and not conn.is_admin:
        raise Forbidden("only the room's owner changes its settings")
    room = b.state.room_wire()
    changes = data.model_dump(exclude_unset=True)
    if room["type"] == "private" and changes.get("visibility", "private") != "private":
        raise BadRequest("a private room stays private", field="visibility")
    room.update(changes)
    b.durable("room.updated", {"room": room})


def _room_delete(b: EventBuilder, conn: Connection, command: Op) -> None:
    if conn.user_id != b.state.room.owner_id and not conn.is_admin:
        raise Forbidden("only the room's owner deletes it")
    session = b.state.session
    if session is not None:
        end_session(b, session, "room_deleted")
    b.durable("room.deleted", {}, {"by": conn.user_id})


def _member_role(b: EventBuilder, conn: Connection, command: Op) -> None:
    """The REST API changed a member's role: their open sockets act with it from now on."""
    data = command.data
    assert isinstance(data, RoleChange)
    if conn.user_id != b.state.room.owner_id and not conn.is_admin:
        raise Forbidden("only the room's owner appoints moderators")
    b.ephemeral("socket.role", {"user_id": data.user_id, "role": data.role})


def _room_transfer(b: EventBuilder, conn: Connection, command: Op) -> None:
    """The owner handed the room over (memberships already swapped by the REST API)."""
    data = command.data
    assert isinstance(data, OwnerChange)
    old_owner = b.state.room.owner_id
    if conn.user_id != old_owner and not conn.is_admin:
        raise Forbidden("only the room's owner hands it over")
    room = b.state.room_wire()
    room["owner_id"] = data.new_owner_id
    b.durable("room.updated", {"room": room})
    b.ephemeral("socket.role", {"user_id": old_owner, "role": "moderator"})
    b.ephemeral("socket.role", {"user_id": data.new_owner_id, "role": "owner"})


# Ops only the REST API sends (their data models are not in protocol.ops.OP_DATA).
REST_OPS = {
    "room.update": _room_update,
    "room.delete": _room_delete,
    "room.transfer": _room_transfer,
    "member.role": _member_role,
    "queue.move": queue_move,
}


_OPS = {
    "chat.send": _chat_send,
    "chat.delete": _chat_delete,
    "chat.react": _chat_react,
    "chat.unreact": _chat_react,
    "chat.pin": _chat_pin,
    "chat.unpin": _chat_unpin,
    "room.pin_track": _room_pin_track,
    **SESSION_OPS,
    **MODERATION_OPS,
    **REST_OPS,
}


def welcome_data(
    state: RoomState,
    conn_id: int,
    now: int,
    *,
    resumed: bool,
    replayed: int,
    site_muted_until: int | None = None,
) -> dict[str, Any]:
    """The ``welcome`` message's data for a socket that has joined (PROTOCOL.md); ``muted_until`` is
    the later of the room's mute and a site-wide one."""
    conn = state.connections[conn_id]
    mutes = [m for m in (state.muted_until(conn.user_id, now), site_muted_until) if m is not None]
    return {
        "room": state.room_wire(),
        "seq": state.seq,
        "you": {
            "user_id": conn.user_id,
            "username": conn.username,
            "role": conn.role,
            "muted_until": max(mutes) if mutes else None,
        },
        "presence": state.presence_list(),
        "guests": state.guests(),
        "session": state.session.wire() if state.session is not None else None,
        "recent_messages": state.recent_messages(),
        "resumed": resumed,
        "replayed": replayed,
    }
