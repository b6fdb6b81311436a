"""The room core (``decide`` + ``RoomState.apply``) as plain functions: no I/O, no clock, no sockets."""

from __future__ import annotations

import copy
import json
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import room_rules, room_state
from actors.commands import Command, Join, Leave, Op
from actors.decision import Decision
from actors.room_rules import decide, welcome_data
from actors.room_state import MAX_PINNED, WELCOME_MESSAGES, Message, RoomInfo, RoomState
from protocol.errors import BadRequest, Conflict, Forbidden, Muted, NotFound, ProtocolError, Unauthorized
from protocol.events import DURABLE_EVENTS, INTERNAL_EVENTS, Event
from protocol.ops import ChatSendData, parse_op_data

OWNER = "u-owner"
MOD = "u-mod"
ALICE = "u-alice"
BOB = "u-bob"
ADMIN = "u-admin"
T0 = 1_764_030_000_000

# conn id -> (user id, role, is_admin) of the standard room
OWNER_C, MOD_C, ALICE_C, BOB_C, ADMIN_C, GUEST_C = 1, 2, 3, 4, 5, 6

TRACK_INPUT = {
    "provider": "spotify",
    "provider_id": "4cOdK2wGLETKBW3PvgPWqT",
    "title": "Song",
    "artist": "Band",
    "duration_ms": 200_000,
}
TRACK = {
    "id": "t-1",
    "provider": "spotify",
    "provider_id": "4cOdK2wGLETKBW3PvgPWqT",
    "title": "Song",
    "artist": "Band",
    "duration_ms": 200_000,
    "artwork_url": None,
}


def room_info() -> RoomInfo:
    return RoomInfo(
        id="r-1",
        slug="lounge",
        name="Lounge",
        type="public",
        visibility="public",
        owner_id=OWNER,
        genres=["house"],
        created_at="2025-11-01T00:00:00+00:00",
    )


def msg_id(n: int) -> str:
    return str(uuid.UUID(int=n))


def username(user_id: str | None) -> str | None:
    return None if user_id is None else f"name-{user_id}"


def archived(
    n: int, author: str, *, deleted: bool = False, reactions: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """A message the actor does not hold: the ``Message.to_dict()`` shape the gateway loads from the DB."""
    return Message(
        id=msg_id(n),
        user_id=author,
        username=f"name-{author}",
        text=f"old message {n}",
        reply_to=None,
        track=None,
        mentions=[],
        at=T0 - 86_400_000,
        seq=0,
        reactions=copy.deepcopy(reactions or {}),
        deleted=deleted,
    ).to_dict()


class Room:
    """Drives the core the way the actor does: decide, then apply every event."""

    def __init__(self, now: int = T0) -> None:
        self.state = RoomState(room=room_info())
        self.now = now
        self.journal: list[Event] = []
        self._ids = 1000

    def run(self, command: Command, now: int | None = None) -> Decision:
        d = decide(self.state, command, self.now if now is None else now)
        for e in d.events:
            self.state.apply(e)
            if e.seq is not None:
                self.journal.append(e)
        return d

    def join(
        self, conn_id: int, user_id: str | None, role: str = "member", *, is_admin: bool = False
    ) -> Decision:
        return self.run(Join(conn_id, user_id, username(user_id), role, is_admin))

    def leave(self, conn_id: int) -> Decision:
        return self.run(Leave(conn_id))

    def op(
        self,
        conn_id: int,
        name: str,
        data: dict[str, Any] | None = None,
        *,
        new_id: str = "",
        context: dict[str, Any] | None = None,
        now: int | None = None,
    ) -> Decision:
        return self.run(Op(conn_id, name, parse_op_data(name, data or {}), new_id, context or {}), now)

    def send(
        self, conn_id: int, text: str = "hello", *, context: dict[str, Any] | None = None, **data: Any
    ) -> Decision:
        self._ids += 1
        return self.op(
            conn_id, "chat.send", {"text": text, **data}, new_id=msg_id(self._ids), context=context
        )

    def sent_id(self, conn_id: int, text: str = "hello", **data: Any) -> str:
        reply = self.send(conn_id, text, **data).reply
        assert reply is not None
        message_id = reply["message_id"]
        assert isinstance(message_id, str)
        return message_id


def standard_room() -> Room:
    room = Room()
    room.join(OWNER_C, OWNER, "owner")
    room.join(MOD_C, MOD, "moderator")
    room.join(ALICE_C, ALICE)
    room.join(BOB_C, BOB)
    room.join(ADMIN_C, ADMIN, "member", is_admin=True)
    room.join(GUEST_C, None, "guest")
    return room


def names(d: Decision) -> list[str]:
    return [e.name for e in d.events]


def only_event(d: Decision) -> Event:
    assert len(d.events) == 1, names(d)
    return d.events[0]


# ---- guests and sockets --------------------------------------------------------------------------


def test_guest_may_ping() -> None:
    room = standard_room()
    d = room.op(GUEST_C, "ping", now=T0 + 5)
    assert d.events == [] and d.reply == {"ts": T0 + 5}


@pytest.mark.parametrize(
    ("op", "data"),
    [
        ("chat.send", {"text": "hi"}),
        ("chat.delete", {"message_id": msg_id(1)}),
        ("chat.react", {"message_id": msg_id(1), "emoji": "fire"}),
        ("chat.unreact", {"message_id": msg_id(1), "emoji": "fire"}),
        ("chat.pin", {"message_id": msg_id(1)}),
        ("chat.unpin", {"message_id": msg_id(1)}),
        ("room.pin_track", {"track": None}),
    ],
)
def test_guest_may_do_nothing_else(op: str, data: dict[str, Any]) -> None:
    room = standard_room()
    before = room.state.snapshot()
    with pytest.raises(Unauthorized):
        room.op(GUEST_C, op, data, new_id=msg_id(77))
    assert room.state.snapshot() == before


def test_op_from_a_socket_not_in_the_room_is_unauthorized() -> None:
    room = standard_room()
    room.leave(ALICE_C)
    with pytest.raises(Unauthorized):
        room.send(ALICE_C)
    with pytest.raises(Unauthorized):
        room.op(99, "ping")


# ---- chat.send ---------------------------------------------------------------------------------------


def test_chat_send_emits_chat_message_with_next_seq() -> None:
    room = standard_room()
    room.state.seq = 41  # a room restored from a snapshot carries on from its seq
    d = room.op(
        ALICE_C,
        "chat.send",
        {"text": "  hello there  ", "track": TRACK_INPUT},
        new_id=msg_id(5),
        context={"track": TRACK, "mentions": [BOB]},
        now=T0 + 10,
    )
    e = only_event(d)
    assert (e.name, e.seq, e.at) == ("chat.message", 42, T0 + 10)
    assert e.data == {
        "id": msg_id(5),
        "user_id": ALICE,
        "username": "name-u-alice",
        "text": "hello there",
        "reply_to": None,
        "track": TRACK,
        "mentions": [BOB],
        "at": T0 + 10,
        "reactions": {},
    }
    assert d.reply == {"message_id": msg_id(5), "seq": 42}
    assert room.state.seq == 42
    assert room.state.messages[msg_id(5)].wire() == e.data
    assert e.wire() == {"type": "event", "name": "chat.message", "seq": 42, "at": T0 + 10, "data": e.data}
    assert "nonce" not in e.meta


def test_seqs_are_consecutive_across_senders() -> None:
    room = standard_room()
    seqs = []
    for conn in (ALICE_C, BOB_C, OWNER_C, ALICE_C, MOD_C, ADMIN_C):
        d = room.send(conn)
        assert d.reply is not None
        assert only_event(d).seq == d.reply["seq"]
        seqs.append(d.reply["seq"])
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert room.state.seq == 6


def test_repeated_nonce_returns_the_first_message_and_emits_nothing() -> None:
    room = standard_room()
    first = room.send(ALICE_C, "once", nonce="abc")
    room.send(BOB_C, "between")
    assert first.reply == {"message_id": first.events[0].data["id"], "seq": 1}
    assert first.events[0].meta == {"nonce": "abc"}
    before = room.state.snapshot()
    again = room.send(ALICE_C, "once, retried with other text", nonce="abc")
    assert again.events == []
    assert again.reply == first.reply
    assert room.state.snapshot() == before


def test_same_nonce_from_another_user_is_a_new_message() -> None:
    room = standard_room()
    a = room.send(ALICE_C, nonce="n-1")
    b = room.send(BOB_C, nonce="n-1")
    assert a.reply is not None and b.reply is not None
    assert a.reply["message_id"] != b.reply["message_id"]
    assert (a.reply["seq"], b.reply["seq"]) == (1, 2)
    assert only_event(b).data["user_id"] == BOB


def test_nonce_survives_restore_from_snapshot() -> None:
    room = standard_room()
    first = room.send(ALICE_C, nonce="n-1")
    restored = RoomState.restore(json.loads(json.dumps(room.state.snapshot())))
    restored.connections = room.state.connections
    d = decide(
        restored, Op(ALICE_C, "chat.send", parse_op_data("chat.send", {"text": "x", "nonce": "n-1"})), T0
    )
    assert d.events == [] and d.reply == first.reply


def test_nonce_retry_after_being_muted_still_returns_the_first_message() -> None:
    room = standard_room()
    first = room.send(ALICE_C, nonce="n-1")
    room.state.mutes[ALICE] = T0 + 60_000  # a moderator muted Alice after her message went through
    again = room.send(ALICE_C, nonce="n-1")
    assert again.events == [] and again.reply == first.reply


def test_reply_to_unknown_message_is_not_found() -> None:
    room = standard_room()
    room.send(ALICE_C)
    with pytest.raises(NotFound) as info:
        room.send(BOB_C, reply_to=msg_id(999))
    assert info.value.field == "reply_to"
    assert room.state.seq == 1


def test_reply_to_a_message_in_memory() -> None:
    room = standard_room()
    parent = room.sent_id(ALICE_C)
    e = only_event(room.send(BOB_C, reply_to=parent.upper()))  # any UUID spelling names the same message
    assert e.data["reply_to"] == parent
    assert room.state.messages[e.data["id"]].reply_to == parent


def test_reply_to_a_deleted_message_is_not_found() -> None:
    room = standard_room()
    parent = room.sent_id(ALICE_C)
    room.op(ALICE_C, "chat.delete", {"message_id": parent})
    with pytest.raises(NotFound) as info:
        room.send(BOB_C, reply_to=parent)
    assert info.value.field == "reply_to"


def test_reply_to_a_message_given_only_in_context() -> None:
    room = standard_room()
    old = archived(1, BOB)
    e = only_event(room.send(ALICE_C, reply_to=old["id"], context={"messages": {old["id"]: old}}))
    assert e.name == "chat.message" and e.data["reply_to"] == old["id"]


def test_reply_to_a_deleted_message_in_context_is_not_found() -> None:
    room = standard_room()
    old = archived(1, BOB, deleted=True)
    with pytest.raises(NotFound) as info:
        room.send(ALICE_C, reply_to=old["id"], context={"messages": {old["id"]: old}})
    assert info.value.field == "reply_to"


def test_muted_user_cannot_send_until_the_mute_expires() -> None:
    room = standard_room()
    room.state.mutes[ALICE] = T0 + 1000
    with pytest.raises(Muted):
        room.send(ALICE_C)
    with pytest.raises(Muted):
        room.op(ALICE_C, "chat.send", {"text": "x"}, new_id=msg_id(3), now=T0 + 999)
    assert room.state.seq == 0
    only_event(room.send(BOB_C))  # others are not muted
    assert welcome_data(room.state, ALICE_C, T0, resumed=False, replayed=0)["you"]["muted_until"] == T0 + 1000
    assert welcome_data(room.state, BOB_C, T0, resumed=False, replayed=0)["you"]["muted_until"] is None
    d = room.op(ALICE_C, "chat.send", {"text": "x"}, new_id=msg_id(4), now=T0 + 1000)
    assert only_event(d).name == "chat.message"
    assert (
        welcome_data(room.state, ALICE_C, T0 + 1000, resumed=False, replayed=0)["you"]["muted_until"] is None
    )


@pytest.mark.parametrize(
    "data",
    [
        {"text": "   "},
        {"text": "x" * 2001},
        {"text": 5},
        {"text": "x", "nonce": ""},
        {"text": "x", "nonce": "n" * 65},
    ],
)
def test_bad_chat_send_data_is_a_bad_request(data: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        parse_op_data("chat.send", data)


def test_chat_send_text_limits_are_after_trimming() -> None:
    parsed = parse_op_data("chat.send", {"text": " " + "x" * 2000 + "\n"})
    assert isinstance(parsed, ChatSendData) and parsed.text == "x" * 2000


def test_unknown_op_and_bad_fields_are_bad_requests() -> None:
    with pytest.raises(BadRequest) as info:
        parse_op_data("mod.dance", {})
    assert info.value.field == "op"
    with pytest.raises(BadRequest) as info:
        parse_op_data("chat.react", {"message_id": msg_id(1), "emoji": "poop"})
    assert info.value.field == "emoji"
    with pytest.raises(BadRequest) as info:
        parse_op_data("chat.delete", {"message_id": "not-a-uuid"})
    assert info.value.field == "message_id"
    with pytest.raises(BadRequest) as info:
        parse_op_data(
            "room.pin_track",
            {"track": {"url": "ftp://example.com/x", "title": "a", "artist": "b", "duration_ms": 2000}},
        )
    assert info.value.field is not None and info.value.field.startswith("track")


# ---- chat.delete ---------------------------------------------------------------------------------------


def test_author_may_delete_own_message() -> None:
    room = standard_room()
    m = room.sent_id(ALICE_C)
    e = only_event(room.op(ALICE_C, "chat.delete", {"message_id": m}, now=T0 + 7))
    assert (e.name, e.seq, e.data) == ("chat.deleted", 2, {"id": m, "by": ALICE})
    assert room.state.messages[m].deleted


def test_another_member_may_not_delete() -> None:
    room = standard_room()
    m = room.sent_id(ALICE_C)
    with pytest.raises(Forbidden):
        room.op(BOB_C, "chat.delete", {"message_id": m})
    assert not room.state.messages[m].deleted and room.state.seq == 1


@pytest.mark.parametrize("conn", [OWNER_C, MOD_C, ADMIN_C])
def test_mods_owner_and_admins_may_delete_any_message(conn: int) -> None:
    room = standard_room()
    m = room.sent_id(ALICE_C)
    e = only_event(room.op(conn, "chat.delete", {"message_id": m}))
    assert e.data["by"] == room.state.connections[conn].user_id
    assert room.state.messages[m].deleted


def test_deleting_twice_is_not_found() -> None:
    room = standard_room()
    m = room.sent_id(ALICE_C)
    room.op(ALICE_C, "chat.delete", {"message_id": m})
    with pytest.raises(NotFound) as info:
        room.op(MOD_C, "chat.delete", {"message_id": m})
    assert info.value.field == "message_id"
    with pytest.raises(NotFound):
        room.op(ALICE_C, "chat.delete", {"message_id": msg_id(12345)})
    assert room.state.seq == 2


def test_deleting_a_pinned_message_unpins_it() -> None:
    room = standard_room()
    a, b = room.sent_id(ALICE_C), room.sent_id(BOB_C)
    room.op(MOD_C, "chat.pin", {"message_id": a})
    room.op(MOD_C, "chat.pin", {"message_id": b})
    assert room.state.pinned_message_ids == [a, b]
    room.op(ALICE_C, "chat.delete", {"message_id": a})
    assert room.state.pinned_message_ids == [b]
    assert room.state.room_wire()["pinned_message_ids"] == [b]


# ---- reactions ---------------------------------------------------------------------------------------


def test_react_and_unreact_counts() -> None:
    room = standard_room()
    m = room.sent_id(ALICE_C)
    e = only_event(room.op(BOB_C, "chat.react", {"message_id": m, "emoji": "fire"}))
    assert (e.name, e.seq) == ("chat.reaction", 2)
    assert e.data == {"message_id": m, "emoji": "fire", "user_id": BOB, "count": 1, "added": True}
    e = only_event(room.op(MOD_C, "chat.react", {"message_id": m, "emoji": "fire"}))
    assert (e.data["count"], e.data["added"]) == (2, True)
    e = only_event(room.op(ALICE_C, "chat.react", {"message_id": m, "emoji": "heart"}))
    assert (e.data["emoji"], e.data["count"]) == ("heart", 1)
    assert room.state.messages[m].reactions == {"fire": [BOB, MOD], "heart": [ALICE]}
    assert room.state.messages[m].wire()["reactions"] == {"fire": 2, "heart": 1}
    e = only_event(room.op(BOB_C, "chat.unreact", {"message_id": m, "emoji": "fire"}))
    assert e.data == {"message_id": m, "emoji": "fire", "user_id": BOB, "count": 1, "added": False}
    e = only_event(room.op(ALICE_C, "chat.unreact", {"message_id": m, "emoji": "heart"}))
    assert (e.data["count"], e.data["added"]) == (0, False)
    assert room.state.messages[m].wire()["reactions"] == {"fire": 1}
    assert room.state.seq == 6


def test_reacting_twice_or_unreacting_without_a_reaction_emits_nothing() -> None:
    room = standard_room()
    m = room.sent_id(ALICE_C)
    room.op(BOB_C, "chat.react", {"message_id": m, "emoji": "star"})
    before = room.state.snapshot()
    d = room.op(BOB_C, "chat.react", {"message_id": m, "emoji": "star"})
    assert d.events == [] and d.reply == {}
    d = room.op(BOB_C, "chat.unreact", {"message_id": m, "emoji": "wave"})
    assert d.events == []
    d = room.op(MOD_C, "chat.unreact", {"message_id": m, "emoji": "star"})
    assert d.events == []
    assert room.state.snapshot() == before


def test_reacting_to_a_deleted_or_unknown_message_is_not_found() -> None:
    room = standard_room()
    m = room.sent_id(ALICE_C)
    room.op(ALICE_C, "chat.delete", {"message_id": m})
    for target in (m, msg_id(4242)):
        with pytest.raises(NotFound) as info:
            room.op(BOB_C, "chat.react", {"message_id": target, "emoji": "clap"})
        assert info.value.field == "message_id"


# ---- pins ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("conn", [OWNER_C, MOD_C, ADMIN_C])
def test_mods_pin_and_unpin(conn: int) -> None:
    room = standard_room()
    m = room.sent_id(ALICE_C)
    by = room.state.connections[conn].user_id
    e = only_event(room.op(conn, "chat.pin", {"message_id": m}))
    assert (e.name, e.seq, e.data) == ("chat.pinned", 2, {"message_id": m, "by": by})
    assert room.state.pinned_message_ids == [m]
    assert room.op(conn, "chat.pin", {"message_id": m}).events == []  # already pinned
    e = only_event(room.op(conn, "chat.unpin", {"message_id": m}))
    assert (e.name, e.seq, e.data) == ("chat.unpinned", 3, {"message_id": m, "by": by})
    assert room.state.pinned_message_ids == []


def test_members_may_not_pin_or_unpin() -> None:
    room = standard_room()
    m = room.sent_id(ALICE_C)
    with pytest.raises(Forbidden):
        room.op(ALICE_C, "chat.pin", {"message_id": m})
    room.op(MOD_C, "chat.pin", {"message_id": m})
    with pytest.raises(Forbidden):
        room.op(ALICE_C, "chat.unpin", {"message_id": m})
    assert room.state.pinned_message_ids == [m]


def test_unpinning_a_message_that_is_not_pinned_is_not_found() -> None:
    room = standard_room()
    m = room.sent_id(ALICE_C)
    with pytest.raises(NotFound) as info:
        room.op(MOD_C, "chat.unpin", {"message_id": m})
    assert info.value.field == "message_id"


def test_pinning_a_deleted_message_is_not_found() -> None:
    room = standard_room()
    m = room.sent_id(ALICE_C)
    room.op(ALICE_C, "chat.delete", {"message_id": m})
    with pytest.raises(NotFound):
        room.op(MOD_C, "chat.pin", {"message_id": m})


def test_at_most_max_pinned_messages() -> None:
    room = standard_room()
    ids = [room.sent_id(ALICE_C) for _ in range(MAX_PINNED + 1)]
    for m in ids[:MAX_PINNED]:
        room.op(MOD_C, "chat.pin", {"message_id": m})
    with pytest.raises(Conflict):
        room.op(MOD_C, "chat.pin", {"message_id": ids[-1]})
    assert room.state.pinned_message_ids == ids[:MAX_PINNED]
    room.op(MOD_C, "chat.unpin", {"message_id": ids[0]})
    room.op(MOD_C, "chat.pin", {"message_id": ids[-1]})
    assert room.state.pinned_message_ids == [*ids[1:MAX_PINNED], ids[-1]]


def test_pin_track_sets_the_rooms_pinned_track() -> None:
    room = standard_room()
    m = room.sent_id(ALICE_C)
    room.op(MOD_C, "chat.pin", {"message_id": m})
    e = only_event(room.op(OWNER_C, "room.pin_track", {"track": TRACK_INPUT}, context={"track": TRACK}))
    assert (e.name, e.seq) == ("room.updated", 3)
    assert e.data["room"]["pinned_track"] == TRACK
    assert e.data["room"]["pinned_message_ids"] == [m]
    assert e.data["room"]["id"] == "r-1" and e.data["room"]["name"] == "Lounge"
    assert room.state.room.pinned_track == TRACK
    assert welcome_data(room.state, BOB_C, T0, resumed=False, replayed=0)["room"]["pinned_track"] == TRACK
    e = only_event(room.op(MOD_C, "room.pin_track", {"track": None}))
    assert e.data["room"]["pinned_track"] is None
    assert room.state.room.pinned_track is None
    assert room.state.room.genres == ["house"]  # the rest of the room is kept
    assert room.state.pinned_message_ids == [m]


def test_members_may_not_pin_a_track() -> None:
    room = standard_room()
    with pytest.raises(Forbidden):
        room.op(ALICE_C, "room.pin_track", {"track": TRACK_INPUT}, context={"track": TRACK})
    assert room.state.room.pinned_track is None and room.state.seq == 0


# ---- messages the actor does not hold (given in the op's context) ---------------------------------


def test_delete_react_and_pin_adopt_messages_given_in_context() -> None:
    room = standard_room()
    old = archived(1, ALICE, reactions={"fire": [BOB]})
    ctx = {"messages": {old["id"]: copy.deepcopy(old)}}
    assert old["id"] not in room.state.messages

    e = only_event(room.op(MOD_C, "chat.react", {"message_id": old["id"], "emoji": "fire"}, context=ctx))
    assert (e.data["count"], e.data["added"]) == (2, True)
    adopted = room.state.messages[old["id"]]
    assert adopted.reactions == {"fire": [BOB, MOD]} and adopted.text == old["text"]
    assert ctx["messages"][old["id"]] == old  # the context is not written to
    assert old["id"] in [m["id"] for m in room.state.snapshot()["messages"]]

    other = archived(2, BOB)
    room.op(MOD_C, "chat.pin", {"message_id": other["id"]}, context={"messages": {other["id"]: other}})
    assert other["id"] in room.state.messages and room.state.pinned_message_ids == [other["id"]]

    third = archived(3, ALICE)
    room.op(ALICE_C, "chat.delete", {"message_id": third["id"]}, context={"messages": {third["id"]: third}})
    assert room.state.messages[third["id"]].deleted
    # old messages do not show up as recent ones
    assert [m["id"] for m in room.state.recent_messages()] == []


def test_context_message_author_is_checked_on_delete() -> None:
    room = standard_room()
    old = archived(1, ALICE)
    with pytest.raises(Forbidden):
        room.op(BOB_C, "chat.delete", {"message_id": old["id"]}, context={"messages": {old["id"]: old}})
    assert old["id"] not in room.state.messages


def test_deleted_message_in_context_is_not_found() -> None:
    room = standard_room()
    old = archived(1, ALICE, deleted=True)
    ctx = {"messages": {old["id"]: old}}
    for op, data in [
        ("chat.delete", {}),
        ("chat.react", {"emoji": "fire"}),
        ("chat.pin", {}),
    ]:
        with pytest.raises(NotFound):
            room.op(MOD_C, op, {"message_id": old["id"], **data}, context=ctx)


def test_adopted_message_replays_from_the_journal() -> None:
    room = standard_room()
    old = archived(1, ALICE)
    room.op(
        BOB_C,
        "chat.react",
        {"message_id": old["id"], "emoji": "wave"},
        context={"messages": {old["id"]: old}},
    )
    replayed = RoomState(room=room_info())
    for e in room.journal:
        replayed.apply(Event.from_journal(e.name, e.seq or 0, e.at, json.loads(json.dumps(e.to_journal()))))
    assert replayed.snapshot() == room.state.snapshot()
    assert replayed.messages[old["id"]].reactions == {"wave": [BOB]}


# ---- presence ------------------------------------------------------------------------------------------


def test_presence_join_only_for_a_users_first_socket() -> None:
    room = Room()
    d = room.join(1, ALICE)
    assert names(d) == ["socket.open", "presence.join"]
    assert d.events[1].data == {"user_id": ALICE, "username": "name-u-alice"}
    assert all(e.seq is None for e in d.events) and d.reply is None
    assert names(room.join(2, ALICE)) == ["socket.open"]
    assert room.state.presence == {ALICE: 2}
    assert names(room.leave(1)) == ["socket.close"]
    assert room.state.presence == {ALICE: 1}
    d = room.leave(2)
    assert names(d) == ["socket.close", "presence.leave"]
    assert d.events[1].data == {"user_id": ALICE}
    assert room.state.presence == {} and room.state.seq == 0
    assert room.leave(2).events == []  # already gone
    assert names(room.join(3, ALICE)) == ["socket.open", "presence.join"]


def test_guests_are_counted_but_not_present() -> None:
    room = Room()
    assert names(room.join(1, None, "guest")) == ["socket.open"]
    assert names(room.join(2, None, "guest")) == ["socket.open"]
    room.join(3, BOB)
    w = welcome_data(room.state, 1, T0, resumed=False, replayed=0)
    assert w["guests"] == 2
    assert w["presence"] == [{"user_id": BOB, "username": "name-u-bob"}]
    assert w["you"] == {"user_id": None, "username": None, "role": "guest", "muted_until": None}
    assert names(room.leave(1)) == ["socket.close"]
    assert welcome_data(room.state, 3, T0, resumed=False, replayed=0)["guests"] == 1


def test_internal_events_are_ephemeral_and_not_durable() -> None:
    assert {"socket.open", "socket.close", "socket.role", "dj.seen"} == INTERNAL_EVENTS
    assert not INTERNAL_EVENTS & DURABLE_EVENTS
    assert "presence.join" not in DURABLE_EVENTS and "chat.message" in DURABLE_EVENTS


# ---- welcome ----------------------------------------------------------------------------------------------


def test_welcome_data() -> None:
    room = standard_room()
    ids = [room.sent_id(ALICE_C if i % 2 else BOB_C, f"m{i}") for i in range(60)]
    room.op(ALICE_C, "chat.delete", {"message_id": ids[59]})
    room.op(BOB_C, "chat.delete", {"message_id": ids[30]})
    room.op(MOD_C, "chat.react", {"message_id": ids[58], "emoji": "fire"})
    w = welcome_data(room.state, ALICE_C, T0, resumed=True, replayed=3)
    recent = w["recent_messages"]
    assert len(recent) == WELCOME_MESSAGES == 50
    expected = [m for i, m in enumerate(ids) if i not in (30, 59)][-50:]
    assert [m["id"] for m in recent] == expected  # oldest first, deleted ones left out
    assert recent[-1]["reactions"] == {"fire": 1}
    assert set(recent[0]) == {
        "id",
        "user_id",
        "username",
        "text",
        "reply_to",
        "track",
        "mentions",
        "at",
        "reactions",
    }
    assert w["seq"] == room.state.seq == 63
    assert w["you"] == {"user_id": ALICE, "username": "name-u-alice", "role": "member", "muted_until": None}
    assert [p["user_id"] for p in w["presence"]] == [OWNER, MOD, ALICE, BOB, ADMIN]
    assert w["guests"] == 1 and w["session"] is None
    assert (w["resumed"], w["replayed"]) == (True, 3)
    assert w["room"]["pinned_message_ids"] == [] and w["room"]["owner_id"] == OWNER


def test_welcome_with_few_messages() -> None:
    room = standard_room()
    a = room.sent_id(ALICE_C, "first")
    room.sent_id(BOB_C, "second")
    room.op(MOD_C, "chat.delete", {"message_id": a})
    recent = welcome_data(room.state, BOB_C, T0, resumed=False, replayed=0)["recent_messages"]
    assert [m["text"] for m in recent] == ["second"]


# ---- decide is pure; snapshots -------------------------------------------------------------------------


def test_decide_does_not_change_the_state() -> None:
    room = standard_room()
    m = room.sent_id(ALICE_C)
    before = room.state.snapshot()
    conns = dict(room.state.connections)
    commands: list[Command] = [
        Op(BOB_C, "chat.send", parse_op_data("chat.send", {"text": "x", "nonce": "q"}), msg_id(9)),
        Op(BOB_C, "chat.react", parse_op_data("chat.react", {"message_id": m, "emoji": "fire"})),
        Op(MOD_C, "chat.pin", parse_op_data("chat.pin", {"message_id": m})),
        Op(ALICE_C, "chat.delete", parse_op_data("chat.delete", {"message_id": m})),
        Op(
            MOD_C,
            "room.pin_track",
            parse_op_data("room.pin_track", {"track": TRACK_INPUT}),
            context={"track": TRACK},
        ),
        Join(20, "u-new", "new", "member"),
        Leave(ALICE_C),
    ]
    for command in commands:
        assert decide(room.state, command, T0).events
    assert room.state.snapshot() == before and room.state.connections == conns
    assert room.state.presence == {OWNER: 1, MOD: 1, ALICE: 1, BOB: 1, ADMIN: 1}


def test_snapshot_restore_round_trip() -> None:
    room = standard_room()
    m = room.sent_id(ALICE_C, nonce="k")
    room.op(BOB_C, "chat.react", {"message_id": m, "emoji": "fire"})
    room.op(MOD_C, "chat.pin", {"message_id": m})
    room.op(MOD_C, "room.pin_track", {"track": TRACK_INPUT}, context={"track": TRACK})
    room.state.mutes[BOB] = T0 + 5
    snap = json.loads(json.dumps(room.state.snapshot()))
    restored = RoomState.restore(snap)
    assert restored.snapshot() == room.state.snapshot()
    assert restored.connections == {} and restored.presence == {}
    assert restored.recent_messages() == room.state.recent_messages()
    newer = room_info()
    newer.name = "Renamed"
    assert RoomState.restore(snap, newer).room.name == "Renamed"


# ---- property: random command sequences ----------------------------------------------------------------

PROFILES: list[tuple[str | None, str, bool]] = [
    (ALICE, "member", False),
    (BOB, "member", False),
    (MOD, "moderator", False),
    (OWNER, "owner", False),
    (ADMIN, "member", True),
    (None, "guest", False),
]
MOD_PROFILE = 2
_profile = st.sampled_from(range(len(PROFILES)))
MUTABLE_USERS = [MOD, ALICE, BOB]
EMOJI_CHOICES = ["fire", "heart"]


def _archive() -> dict[str, dict[str, Any]]:
    """Messages in the DB from before this actor started, not in its memory."""
    rows = [
        archived(1, BOB, reactions={"fire": [ALICE, MOD]}),
        archived(2, ALICE, deleted=True),
        archived(3, OWNER),
    ]
    return {r["id"]: r for r in rows}


@dataclass
class MsgModel:
    author: str
    deleted: bool = False
    reactions: dict[str, list[str]] = field(default_factory=dict)


Action = tuple[Any, ...]

_conn = st.integers(1, 7)
# who does an op: an index into the open sockets, "mod" for the first mod's socket, 99 for one never opened
_op_conn = st.integers(0, 10) | st.just("mod") | st.just(99) | st.just(0)
# ("msg", k): the k-th newest known message (sent or archived); ("random", k): no message at all
# ("pinned", k) / ("reacted", k) / ("other", k): the k-th pinned message / message with reactions /
# live message by someone other than the op's user, if there is one
_target = st.tuples(st.sampled_from(["msg", "msg", "msg", "random", "pinned", "reacted"]), st.integers(0, 40))
_withhold = st.sampled_from([False, False, False, True])  # mostly the gateway gives the context
_actions: st.SearchStrategy[Action] = st.one_of(
    st.tuples(st.just("join"), _conn, _profile),
    st.tuples(st.just("leave"), _conn),
    st.tuples(
        st.just("chat.send"),
        _op_conn,
        st.sampled_from([None, None, "n1", "n2"]),
        st.none() | _target,
        st.booleans(),
        _withhold,
    ),
    st.tuples(st.just("chat.send"), _op_conn, st.none(), st.none(), st.booleans(), st.just(False)),
    st.tuples(st.sampled_from(["chat.delete", "chat.pin", "chat.unpin"]), _op_conn, _target, _withhold),
    st.tuples(st.sampled_from(["chat.pin", "chat.unpin", "chat.delete"]), st.just("mod"), _target, _withhold),
    st.tuples(st.just("chat.unpin"), _op_conn, st.tuples(st.just("pinned"), st.integers(0, 5)), _withhold),
    st.tuples(st.just("chat.delete"), _op_conn, st.tuples(st.just("other"), st.integers(0, 5)), _withhold),
    st.tuples(
        st.just("chat.unreact"),
        _op_conn,
        st.tuples(st.just("reacted"), st.integers(0, 5)),
        st.sampled_from(EMOJI_CHOICES),
        _withhold,
    ),
    st.tuples(
        st.sampled_from(["chat.react", "chat.unreact"]),
        _op_conn,
        _target,
        st.sampled_from(EMOJI_CHOICES),
        _withhold,
    ),
    st.tuples(st.just("room.pin_track"), _op_conn, st.booleans()),
    st.tuples(st.just("ping"), _op_conn),
    st.tuples(
        st.just("bad"),
        st.sampled_from(
            [
                ("chat.send", {"text": "   "}),
                ("chat.react", {"message_id": "nope", "emoji": "fire"}),
                ("chat.react", {"message_id": msg_id(1), "emoji": "poop"}),
                ("chat.pin", {}),
                ("room.rename", {"name": "x"}),  # not an op
            ]
        ),
    ),
)
_steps = st.lists(st.tuples(st.integers(0, 4000), _actions), min_size=8, max_size=40)
_initial = st.lists(_profile, min_size=1, max_size=4)  # profiles joined first
_mutes = st.dictionaries(st.sampled_from(MUTABLE_USERS), st.integers(T0, T0 + 40_000), max_size=2)


class Sim:
    """Runs actions through the core, predicting each outcome from an independent model of the room."""

    def __init__(self, mutes: dict[str, int], *, max_pinned: int, tiny_memory: bool) -> None:
        self.state = RoomState(room=room_info())
        self.state.mutes = dict(mutes)
        self.mutes = dict(mutes)
        self.max_pinned = max_pinned
        self.tiny_memory = tiny_memory
        self.now = T0
        self.journal: list[Event] = []
        self.db = _archive()  # every message's latest row, as the gateway would load it
        self.model = {
            mid: MsgModel(d["user_id"], d["deleted"], copy.deepcopy(d["reactions"]))
            for mid, d in self.db.items()
        }
        self.known: list[str] = list(self.db)
        self.pinned: list[str] = []
        self.nonces: dict[tuple[str, str], dict[str, Any]] = {}
        self.conns: dict[int, tuple[str | None, str, bool]] = {}
        self.pinned_track: dict[str, Any] | None = None
        self.created = 0

    # -- helpers

    def conn_for(self, who: int | str) -> int:
        open_ids = sorted(self.conns)
        if who == "mod":
            mods = [c for c in open_ids if self.conns[c][1] in ("owner", "moderator") or self.conns[c][2]]
            return mods[0] if mods else 99
        if who == 99 or not open_ids:
            return 99
        assert isinstance(who, int)
        return open_ids[who % len(open_ids)]

    def target_id(self, target: tuple[str, int], conn_id: int) -> str:
        kind, k = target
        reacted = [m for m in self.known if self.model[m].reactions]
        user = self.conns[conn_id][0] if conn_id in self.conns else None
        others = [m for m in self.known if self.model[m].author != user and not self.model[m].deleted]
        if kind == "pinned" and self.pinned:
            return self.pinned[k % len(self.pinned)]
        if kind == "reacted" and reacted:
            return reacted[k % len(reacted)]
        if kind == "other" and others:
            return others[-1 - k % len(others)]
        if kind != "random":
            return self.known[-1 - k % len(self.known)]  # k = 0: the newest
        return str(uuid.UUID(int=(1 << 100) + target[1]))  # never a message

    def context_for(self, message_id: str, withhold: bool) -> tuple[dict[str, Any], bool]:
        """The op's context and whether the core can see the message at all."""
        if message_id in self.state.messages:
            return {}, True
        if withhold or message_id not in self.db:
            return {}, False
        return {"messages": {message_id: copy.deepcopy(self.db[message_id])}}, True

    def live(self, message_id: str, visible: bool) -> bool:
        m = self.model.get(message_id)
        return visible and m is not None and not m.deleted

    # -- one step

    def step(self, dt: int, action: Action) -> None:
        self.now += dt
        kind = action[0]
        if kind == "bad":
            op, data = action[1]
            with pytest.raises(BadRequest):
                parse_op_data(op, data)
            return
        if kind == "join":
            conn_id, profile = action[1], action[2]
            if conn_id in self.conns:
                return  # the gateway never reuses an open socket's id
            user, role, admin = PROFILES[profile]
            first = user is not None and all(u != user for u, _, _ in self.conns.values())
            d = self.run(Join(conn_id, user, username(user), role, admin))
            assert names(d) == (["socket.open", "presence.join"] if first else ["socket.open"])
            self.conns[conn_id] = (user, role, admin)
            return
        if kind == "leave":
            conn_id = action[1]
            gone = self.conns.pop(conn_id, None)
            d = self.run(Leave(conn_id))
            if gone is None:
                assert d.events == []
            else:
                last = gone[0] is not None and all(u != gone[0] for u, _, _ in self.conns.values())
                assert names(d) == (["socket.close", "presence.leave"] if last else ["socket.close"])
            return
        self.op_step(kind, action)

    def op_step(self, op: str, action: Action) -> None:
        conn_id = self.conn_for(action[1])
        data: dict[str, Any] = {}
        context: dict[str, Any] = {}
        new_id = ""
        expect_error: type[ProtocolError] | None = None
        expect_event: str | None = None
        expect_reply: dict[str, Any] | None = {}
        target = ""
        visible = False
        if op == "chat.send":
            nonce, reply_to, with_track, withhold = action[2:]
            self.created += 1
            new_id = str(uuid.UUID(int=(1 << 64) + self.created))
            data = {"text": f"message {self.created}"}
            if nonce is not None:
                data["nonce"] = nonce
            if with_track:
                data["track"] = TRACK_INPUT
                context["track"] = TRACK
            if reply_to is not None:
                target = self.target_id(reply_to, conn_id)
                data["reply_to"] = target
                ctx, visible = self.context_for(target, withhold)
                context.update(ctx)
        elif op == "room.pin_track":
            data = {"track": TRACK_INPUT if action[2] else None}
            if action[2]:
                context["track"] = TRACK
        elif op != "ping":
            target = self.target_id(action[2], conn_id)
            data = {"message_id": target}
            if op in ("chat.react", "chat.unreact"):
                data["emoji"] = action[3]
            context, visible = self.context_for(target, action[-1])

        user: str | None = None
        conn = self.conns.get(conn_id)
        if conn is None:
            expect_error = Unauthorized
        elif op == "ping":
            expect_reply = {"ts": self.now}
        elif conn[0] is None:
            expect_error = Unauthorized
        else:
            user, role, admin = conn
            assert user is not None
            is_mod = role in ("owner", "moderator") or admin
            m = self.model.get(target)
            if op == "chat.send":
                key = (user, data.get("nonce", ""))
                if "nonce" in data and key in self.nonces:
                    expect_reply = self.nonces[key]  # a retry is answered first, even when muted since
                elif self.mutes.get(user, 0) > self.now:
                    expect_error = Muted
                elif "reply_to" in data and not self.live(target, visible):
                    expect_error = NotFound
                else:
                    expect_event = "chat.message"
                    expect_reply = {"message_id": new_id, "seq": self.state.seq + 1}
            elif op == "chat.delete":
                if not self.live(target, visible):
                    expect_error = NotFound
                elif m is not None and m.author != user and not is_mod:
                    expect_error = Forbidden
                elif m is not None and m.author == OWNER and user != OWNER and not admin:
                    expect_error = Forbidden  # moderators cannot act on the owner
                else:
                    expect_event = "chat.deleted"
            elif op in ("chat.react", "chat.unreact"):
                if not self.live(target, visible):
                    expect_error = NotFound
                elif m is not None and (user in m.reactions.get(data["emoji"], [])) != (op == "chat.react"):
                    expect_event = "chat.reaction"
            elif op == "chat.pin":
                if not is_mod:
                    expect_error = Forbidden
                elif not self.live(target, visible):
                    expect_error = NotFound
                elif target not in self.pinned:
                    if len(self.pinned) >= self.max_pinned:
                        expect_error = Conflict
                    else:
                        expect_event = "chat.pinned"
            elif op == "chat.unpin":
                if not is_mod:
                    expect_error = Forbidden
                elif target not in self.pinned:
                    expect_error = NotFound
                else:
                    expect_event = "chat.unpinned"
            elif op == "room.pin_track":
                if not is_mod:
                    expect_error = Forbidden
                else:
                    expect_event = "room.updated"

        command = Op(conn_id, op, parse_op_data(op, data), new_id, context)
        context_before = copy.deepcopy(context)
        if expect_error is not None:
            with pytest.raises(expect_error) as info:
                self.run(command)
            if expect_error is NotFound and op == "chat.send":
                assert info.value.field == "reply_to"
            elif expect_error is NotFound:
                assert info.value.field == "message_id"
            return
        d = self.run(command)
        assert context == context_before  # the context is read, never written
        if expect_event is None:
            assert d.events == [], names(d)
            assert d.reply == expect_reply
            return
        e = only_event(d)
        assert e.name == expect_event
        if expect_reply:
            assert d.reply == expect_reply
        else:
            assert d.reply == {}
        self.update_model(e, user, data)

    def update_model(self, e: Event, user: str | None, data: dict[str, Any]) -> None:
        assert user is not None
        if e.name == "chat.message":
            self.model[e.data["id"]] = MsgModel(user)
            self.known.append(e.data["id"])
            assert e.data["reply_to"] == data.get("reply_to")
            assert e.data["track"] == (TRACK if "track" in data else None)
            if "nonce" in data:
                self.nonces[(user, data["nonce"])] = {"message_id": e.data["id"], "seq": e.seq}
        elif e.name == "chat.deleted":
            assert e.data == {"id": data["message_id"], "by": user}
            self.model[data["message_id"]].deleted = True
            if data["message_id"] in self.pinned:
                self.pinned.remove(data["message_id"])
        elif e.name == "chat.reaction":
            users = self.model[data["message_id"]].reactions.setdefault(data["emoji"], [])
            if e.data["added"]:
                users.append(user)
            else:
                users.remove(user)
            assert e.data["count"] == len(users)
            assert e.data["user_id"] == user and e.data["message_id"] == data["message_id"]
            assert state_users(self.state, data["message_id"], data["emoji"]) == users
            if not users:
                del self.model[data["message_id"]].reactions[data["emoji"]]
        elif e.name == "chat.pinned":
            self.pinned.append(data["message_id"])
        elif e.name == "chat.unpinned":
            self.pinned.remove(data["message_id"])
        elif e.name == "room.updated":
            self.pinned_track = TRACK if data["track"] is not None else None
            assert e.data["room"]["pinned_track"] == self.pinned_track

    def run(self, command: Command) -> Decision:
        before_seq = self.state.seq
        before = self.state.snapshot()
        conns = dict(self.state.connections)
        try:
            d = decide(self.state, command, self.now)
        finally:
            # decide never changes the state, whether it decides or refuses
            assert self.state.snapshot() == before
            assert self.state.connections == conns
        durable = [e for e in d.events if e.seq is not None]
        assert [e.seq for e in durable] == list(range(before_seq + 1, before_seq + 1 + len(durable)))
        for e in d.events:
            assert (e.name in DURABLE_EVENTS) == (e.seq is not None), e.name
            assert e.at == self.now
            self.state.apply(e)
            if e.seq is not None:
                self.journal.append(e)
            if e.name == "chat.reaction":
                # the count sent to clients is the number of users after the change
                assert e.data["count"] == len(
                    self.state.messages[e.data["message_id"]].reactions.get(e.data["emoji"], [])
                )
        for m in self.state.messages.values():
            self.db[m.id] = m.to_dict()
        return d

    # -- invariants after every step

    def check(self) -> None:
        s = self.state
        assert s.seq == len(self.journal)
        assert [e.seq for e in self.journal] == list(range(1, s.seq + 1))
        pinned = s.pinned_message_ids
        assert pinned == self.pinned
        assert len(set(pinned)) == len(pinned) <= self.max_pinned
        for m in pinned:
            assert not self.db[m]["deleted"]
            assert m in s.messages and not s.messages[m].deleted  # pinned messages stay in memory
        for message in s.messages.values():
            model = self.model[message.id]
            assert message.deleted == model.deleted
            assert message.reactions == model.reactions
            assert all(message.reactions.values())  # no empty lists left behind
        users = Counter(u for u, _, _ in self.conns.values() if u is not None)
        assert s.presence == dict(users)
        assert set(s.usernames) == set(users)
        assert s.guests() == sum(1 for u, _, _ in self.conns.values() if u is None)
        assert {c: (x.user_id, x.role, x.is_admin) for c, x in s.connections.items()} == self.conns
        assert s.room.pinned_track == self.pinned_track
        # nothing else is held in memory (pinned messages stay while pinned)
        assert set(s.messages) == set(s.recent) | set(s.touched) | set(pinned)
        assert len(s.recent) <= room_state.RECENT_KEEP and len(s.touched) <= room_state.TOUCHED_KEEP
        recent = s.recent_messages()
        assert len(recent) <= WELCOME_MESSAGES
        assert all(not self.model[r["id"]].deleted for r in recent)
        assert [r["at"] for r in recent] == sorted(r["at"] for r in recent)


def state_users(state: RoomState, message_id: str, emoji: str) -> list[str]:
    return list(state.messages[message_id].reactions.get(emoji, []))


def replay(events: list[Event], start: RoomState) -> RoomState:
    """Apply journaled events (through their JSON form, as Postgres stores them)."""
    for e in events:
        assert e.seq is not None
        payload = json.loads(json.dumps(e.to_journal()))
        start.apply(Event.from_journal(e.name, e.seq, e.at, payload))
    return start


def run_and_check(
    initial: list[int], steps: list[tuple[int, Action]], mutes: dict[str, int], cut: int, *, tiny: bool
) -> None:
    sim = Sim(mutes, max_pinned=TINY_MAX_PINNED if tiny else MAX_PINNED, tiny_memory=tiny)
    # a moderator and a few others are in the room to begin with
    for conn_id, profile in enumerate([MOD_PROFILE, *initial], start=1):
        sim.step(0, ("join", conn_id, profile))
        sim.check()
    cut = min(cut, len(steps))
    midway: tuple[dict[str, Any], int] | None = None
    for i, (dt, action) in enumerate(steps):
        if i == cut:
            midway = (json.loads(json.dumps(sim.state.snapshot())), len(sim.journal))
        sim.step(dt, action)
        sim.check()
    if midway is None:
        midway = (json.loads(json.dumps(sim.state.snapshot())), len(sim.journal))
    final = sim.state.snapshot()
    assert json.loads(json.dumps(final)) == final  # JSON-able

    # replay from an empty room rebuilds the same durable state
    start = RoomState(room=room_info())
    start.mutes = dict(mutes)
    rebuilt = replay(sim.journal, start)
    assert rebuilt.snapshot() == final
    assert rebuilt.recent_messages() == sim.state.recent_messages()

    # restore is exact
    assert RoomState.restore(final).snapshot() == final

    # a snapshot taken midway plus the events after it
    snap, done = midway
    rebuilt = replay(sim.journal[done:], RoomState.restore(snap))
    assert rebuilt.snapshot() == final
    assert rebuilt.room_wire() == sim.state.room_wire()


@settings(max_examples=150, deadline=None)
@given(initial=_initial, steps=_steps, mutes=_mutes, cut=st.integers(0, 45))
def test_random_command_sequences_keep_the_invariants(
    initial: list[int], steps: list[tuple[int, Action]], mutes: dict[str, int], cut: int
) -> None:
    run_and_check(initial, steps, mutes, cut, tiny=False)


TINY_MAX_PINNED = 1


@contextmanager
def tiny_memory() -> Iterator[None]:
    """Memory bounds small enough that random runs evict messages and fill the pins."""
    with (
        mock.patch.object(room_state, "RECENT_KEEP", 3),
        mock.patch.object(room_state, "TOUCHED_KEEP", 2),
        mock.patch.object(room_rules, "MAX_PINNED", TINY_MAX_PINNED),
    ):
        yield


@settings(max_examples=150, deadline=None)
@given(initial=_initial, steps=_steps, mutes=_mutes, cut=st.integers(0, 45))
def test_random_command_sequences_with_evictions(
    initial: list[int], steps: list[tuple[int, Action]], mutes: dict[str, int], cut: int
) -> None:
    with tiny_memory():
        run_and_check(initial, steps, mutes, cut, tiny=True)


def test_tiny_memory_really_evicts() -> None:
    """Guards the eviction property test: with the small bounds, old messages do leave memory."""
    with tiny_memory():
        room = standard_room()
        ids = [room.sent_id(ALICE_C) for _ in range(6)]
        assert list(room.state.recent) == ids[-3:]
        assert set(room.state.messages) == set(ids[-3:])
        old = ids[0]
        with pytest.raises(NotFound):
            room.op(BOB_C, "chat.react", {"message_id": old, "emoji": "fire"})
        row = archived(0, ALICE) | {"id": old}
        room.op(BOB_C, "chat.react", {"message_id": old, "emoji": "fire"}, context={"messages": {old: row}})
        assert old in room.state.messages and list(room.state.touched) == [old]


def test_order_of_touched_messages_is_kept() -> None:
    room = standard_room()
    a, b = room.sent_id(ALICE_C), room.sent_id(BOB_C)
    room.op(MOD_C, "chat.react", {"message_id": b, "emoji": "fire"})
    room.op(MOD_C, "chat.react", {"message_id": a, "emoji": "fire"})
    room.op(BOB_C, "chat.react", {"message_id": b, "emoji": "fire"})
    assert room.state.touched == OrderedDict([(a, None), (b, None)])
