"""Every table keyed by an op or an event name agrees with the one declaration of each
(``protocol.ops.OP_DATA`` for ops, ``protocol.events.EVENTS`` for events): an op the gateway
accepts always has rules, and no table names an event nobody can emit."""

from __future__ import annotations

import pytest

from actors.commands import Op
from actors.room_actor import CLOSES_ALL, CLOSES_USER
from actors.room_rules import _OPS, REST_OPS, decide
from actors.room_state import _APPLY, Connection, RoomInfo, RoomState
from protocol.errors import BadRequest
from protocol.events import DURABLE_EVENTS, EVENTS, INTERNAL_EVENTS
from protocol.ops import OP_DATA, NoData
from storage.journal import _AFTER_STATEMENTS, _STATEMENTS, ROW_MAKERS, _Rows

# Durable events that change no state of the room (what they do is in who they close, or in
# what the journal writes for them;
# ``presence.*`` tell clients what ``socket.open`` / ``socket.close`` already changed.)
STATELESS = {"user.kicked", "user.banned", "user.unbanned", "presence.join", "presence.leave"}


def test_every_client_op_has_rules_and_every_rule_an_op() -> None:
    client_ops = set(OP_DATA) - {"ping"}  # ping is answered before any rule
    assert client_ops == set(_OPS) - set(REST_OPS)
    assert not set(REST_OPS) & set(OP_DATA), "a REST-only op must not be accepted from a socket"


def test_what_apply_knows_is_declared() -> None:
    assert set(_APPLY) <= set(EVENTS)
    # the events that change nothing in the room's state are exactly these: a new event without
    # an apply handler fails here until it is named
    assert set(EVENTS) - set(_APPLY) == STATELESS


def test_journal_tables_name_durable_events_and_known_statements() -> None:
    assert set(ROW_MAKERS) <= DURABLE_EVENTS
    rows = _Rows().rows
    assert set(rows) == set(_STATEMENTS) | set(_AFTER_STATEMENTS)
    assert not set(_STATEMENTS) & set(_AFTER_STATEMENTS)


def test_what_showing_an_event_does_names_durable_events() -> None:
    assert set(CLOSES_USER) <= DURABLE_EVENTS
    assert set(CLOSES_ALL) <= DURABLE_EVENTS


def test_kinds_are_consistent() -> None:
    assert not INTERNAL_EVENTS & DURABLE_EVENTS  # a durable event is always sent
    assert {"chat.message", "session.updated", "dj.rotation"} <= DURABLE_EVENTS


def test_an_op_without_rules_is_a_bad_request_not_a_crash() -> None:
    """A name that slipped past the gateway (a REST-only op from a socket, say) is refused."""
    state = RoomState(RoomInfo("r", "r", "R", "public", "public", "owner"))
    caller = Connection("u", "u", "member")
    with pytest.raises(BadRequest) as refused:
        decide(state, Op(0, "no.such.op", NoData(), caller=caller), 0)
    assert refused.value.field == "op"


def test_the_builder_refuses_an_undeclared_or_misfiled_event() -> None:
    from actors.decision import EventBuilder

    b = EventBuilder(RoomState(RoomInfo("r", "r", "R", "public", "public", "owner")), 0)
    with pytest.raises(KeyError):
        b.durable("made.up", {})
    with pytest.raises(AssertionError):
        b.durable("presence.join", {})
    with pytest.raises(AssertionError):
        b.ephemeral("chat.message", {})
