"""The owner's side of the bus against hostile and malformed requests: whatever arrives on
``room.<id>.ops``, the owner answers (a refusal naming the field, or "moved"), and the room
goes on. The room runs for real (registry, actor) on an in-memory journal; the bus is the
in-process one; nothing here reads Postgres."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import hypothesis.strategies as st
import msgpack
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings

from actors.registry import RoomRegistry
from actors.room_actor import ActorConfig
from protocol.events import Event
from server.cluster.bus import LocalBus, LocalHub
from server.cluster.owner import OwnerSide
from server.cluster.wire import ops_subject, pack, unpack
from storage.sanctions import Sanctions
from tests.actor_ports import MemoryJournal

ROOM = "11111111-2222-3333-4444-555555555555"


@dataclass
class _Seed:
    room: dict[str, Any]
    pinned_message_ids: list[str] = field(default_factory=list)
    snapshot: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)


async def _load(room_id: str) -> _Seed | None:
    if room_id != ROOM:
        return None
    return _Seed(
        {"id": ROOM, "slug": "r", "name": "Room", "type": "public", "visibility": "public", "owner_id": "o"}
    )


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
kinds = st.sampled_from(["join", "op", "leave", "beat", "rest", "nonsense"])
fields_ = st.sampled_from(
    ["conn", "node", "op", "data", "since", "conns", "caller", "view", "id", "user_id", "rate"]
)
bodies = st.builds(lambda k, extra: {"k": k, **extra}, kinds, st.dictionaries(fields_, values, max_size=6))
raw = st.one_of(bodies.map(pack), st.binary(max_size=40), values.map(lambda v: msgpack.packb(v)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(raw, min_size=1, max_size=8))
def test_any_request_is_answered_and_the_room_goes_on(messages: list[bytes]) -> None:
    async def main() -> None:
        hub = LocalHub()
        owner_bus, edge_bus = LocalBus(hub), LocalBus(hub)
        owner = OwnerSide(owner_bus, cast(Any, None), Sanctions(cast(Any, None)), beat_s=60)  # none loaded
        async with trio.open_nursery() as nursery:
            await nursery.start(owner.run)
            registry = RoomRegistry(
                nursery, MemoryJournal(10**9), _load, ActorConfig(), on_actor=owner.on_actor
            )
            owner.registry = registry
            actor = await registry.get(ROOM)
            assert actor is not None
            with trio.fail_after(10):
                while not any(p == ops_subject(ROOM) for _, p, _ in hub._subs.values()):
                    await trio.testing.wait_all_tasks_blocked()  # until the owner has subscribed
                for message in messages:
                    answer = unpack(await edge_bus.request(ops_subject(ROOM), message, timeout=5))
                    assert answer.get("moved") or "ok" in answer, answer
                    if answer.get("ok") is False and "error" in answer:
                        assert answer["error"]["code"] in {
                            "bad_request",
                            "internal",
                            "not_found",
                            "forbidden",
                            "rate_limited",
                            "muted",
                            "no_session",
                            "not_dj",
                            "session_active",
                            "conflict",
                            "queue_full",
                            "unauthorized",
                        }
                # the room still answers a well-formed read
                answer = unpack(
                    await edge_bus.request(
                        ops_subject(ROOM), pack({"k": "rest", "op": None, "view": ["room", []]}), 5
                    )
                )
                assert answer["ok"] and answer["seen"]["id"] == ROOM
            assert registry.running(ROOM) is actor
            nursery.cancel_scope.cancel()

    trio.run(main)
