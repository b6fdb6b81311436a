"""Live moderation: mute, kick, ban and their undoing, reaction clearing (PROTOCOL.md ops table).

Each act emits a durable event whose ``meta["modlog"]`` the journal writes to
``moderation_log`` in the same transaction.
"""

from __future__ import annotations

from typing import Any

from actors.commands import Op
from actors.decision import EventBuilder
from actors.room_state import Connection, Message
from actors.session_rules import check_rank, is_mod
from protocol.errors import BadRequest, Forbidden, NotFound
from protocol.ops import BanData, KickData, MessageRefData, MuteData, UserRefData

# Close code for a kicked or banned user's sockets (PROTOCOL.md).
CLOSE_KICKED = 4010


def _modlog(conn: Connection, action: str, **fields: Any) -> dict[str, Any]:
    return {"modlog": {"action": action, "actor_id": conn.user_id, **fields}}


def _target(b: EventBuilder, conn: Connection, command: Op, user_id: str) -> str:
    if not is_mod(conn):
        raise Forbidden("only the room's owner or moderators may do that")
    if user_id == conn.user_id:
        raise BadRequest("you cannot do that to yourself", field="user_id")
    if "target_role" in command.context and command.context["target_role"] is None:
        raise NotFound("no such user", field="user_id")
    check_rank(b.state, conn, user_id, command)
    return user_id


def mod_mute(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, MuteData)
    target = _target(b, conn, command, str(data.user_id))
    until = b.now + data.seconds * 1000
    b.durable(
        "user.muted",
        {"user_id": target, "until": until},
        _modlog(conn, "mute", target_user_id=target, details={"seconds": data.seconds}),
    )


def mod_unmute(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, UserRefData)
    target = _target(b, conn, command, str(data.user_id))
    if b.state.muted_until(target, b.now) is None:
        raise NotFound("that user is not muted here", field="user_id")
    b.durable("user.unmuted", {"user_id": target}, _modlog(conn, "unmute", target_user_id=target))


def mod_kick(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, KickData)
    target = _target(b, conn, command, str(data.user_id))
    b.durable(
        "user.kicked",
        {"user_id": target, "reason": data.reason},
        _modlog(conn, "kick", target_user_id=target, reason=data.reason),
    )


def mod_ban(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, BanData)
    target = _target(b, conn, command, str(data.user_id))
    until = b.now + data.seconds * 1000 if data.seconds is not None else None
    b.durable(
        "user.banned",
        {"user_id": target, "until": until, "reason": data.reason},
        _modlog(conn, "ban", target_user_id=target, reason=data.reason, details={"until": until}),
    )


def mod_unban(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, UserRefData)
    target = _target(b, conn, command, str(data.user_id))
    b.durable("user.unbanned", {"user_id": target}, _modlog(conn, "unban", target_user_id=target))


def mod_clear_reactions(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, MessageRefData)
    if not is_mod(conn):
        raise Forbidden("only the room's owner or moderators may clear reactions")
    message_id = str(data.message_id)
    message = b.state.messages.get(message_id)
    adopt = None
    if message is None:
        adopt = command.context.get("messages", {}).get(message_id)
        if adopt is None:
            raise NotFound("no such message in this room", field="message_id")
        message = Message.from_dict(adopt)
    if message.deleted:
        raise NotFound("that message was deleted", field="message_id")
    meta = _modlog(conn, "clear_reactions", target_message_id=message_id)
    if adopt is not None:
        meta["adopt"] = adopt
    b.durable("chat.reactions_cleared", {"message_id": message_id, "by": conn.user_id}, meta)


MODERATION_OPS = {
    "mod.mute": mod_mute,
    "mod.unmute": mod_unmute,
    "mod.kick": mod_kick,
    "mod.ban": mod_ban,
    "mod.unban": mod_unban,
    "mod.clear_reactions": mod_clear_reactions,
}
