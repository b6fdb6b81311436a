"""Overload shedding (server/live/admission.py): the pure controller, the loop probe, and a real
``seda serve`` that refuses a socket's chat with ``rate_limited`` once it has fallen behind."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from actors.commands import Join, Op
from actors.room_actor import ActorConfig, Request, RoomActor
from actors.room_state import RoomInfo, RoomState
from protocol.errors import RateLimited
from protocol.ops import OP_DATA, ChatSendData
from server.live.admission import JITTER, MIN_RETRY_MS, SHEDDABLE_OPS, Admission, admit
from tests.actor_ports import HeldJournal, Inbox
from tests.live_client import Live, history
from tests.process import running

NO_USER_LIMITS = {"SEDA_CHAT_RATE": "100000", "SEDA_CHAT_RATE_WINDOW_S": "1", "SEDA_OPS_PER_SECOND": "100000"}


def watching(limit_s: float = 0.25, retry_after_ms: int = 1000) -> Admission:
    return Admission(
        behind_limit_s=limit_s, retry_after_ms=retry_after_ms, enabled=True, rng=random.Random(7)
    )


def test_only_sheddable_ops_past_the_limit_are_refused_with_a_spread_retry() -> None:
    admission = watching(limit_s=0.25, retry_after_ms=1000)
    for op in OP_DATA:
        assert admission.refusal(op, waited_s=0.25) is None  # at the limit: taken
        wait = admission.refusal(op, waited_s=2.0)
        if op in SHEDDABLE_OPS:
            assert wait is not None and 1000 * (1 - JITTER) <= wait <= 1000 * (1 + JITTER)
        else:
            assert wait is None, op
    assert admission.refused == len(SHEDDABLE_OPS & set(OP_DATA))


@given(st.floats(min_value=0.0, max_value=30.0), st.integers(min_value=1, max_value=5000))
def test_the_retry_is_about_the_rooms_wait_within_its_bounds(waited_s: float, most_ms: int) -> None:
    admission = watching(limit_s=0.05, retry_after_ms=most_ms)
    wait = admission.refusal("chat.send", waited_s)
    if waited_s <= 0.05:
        assert wait is None
        return
    assert wait is not None
    base = min(most_ms, max(MIN_RETRY_MS, waited_s * 1000))
    assert max(1, base * (1 - JITTER)) - 1 <= wait <= base * (1 + JITTER) + 1


def test_nothing_is_refused_unless_enabled() -> None:
    admission = Admission(behind_limit_s=0.0)
    assert admission.refusal("chat.send", waited_s=100.0) is None


class Gauge:
    def __init__(self, waited_s: float) -> None:
        self.waited = waited_s
        self.asked = 0

    def waiting_s(self) -> float:
        self.asked += 1
        return self.waited


def test_admit_asks_the_room_only_for_sheddable_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("server.live.admission.ADMISSION", watching(limit_s=0.25))
    room = Gauge(5.0)
    admit("vote", room)
    admit("ping", room)
    assert room.asked == 0  # never refused for load, so not even measured
    with pytest.raises(RateLimited) as refused:
        admit("chat.send", room)
    assert refused.value.retry_after_ms >= 1000 * (1 - JITTER)
    admit("chat.send", Gauge(0.1))


async def test_a_room_is_behind_only_while_it_has_requests_queued_or_uncommitted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The actor's own measure: the age of its oldest unanswered request, while anything waits."""
    journal = HeldJournal()
    actor = RoomActor(
        "r", RoomState(RoomInfo("r", "r", "R", "public", "public", "owner")), journal, ActorConfig()
    )
    inbox = Inbox(1)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        assert actor.waiting_s() == 0.0
        await actor.send(Request(Join(1, "u", "u", "member"), conn=inbox))
        await actor.send(Request(Op(1, "chat.send", ChatSendData(text="hi"), "m1"), conn=inbox, ref=1))
        await journal.submitted.wait()  # decided: its commit is held
        await trio.sleep(0.3)  # time, virtual, passes while it waits for its commit
        assert actor.waiting_s() >= 0.3
        journal.release()
        with trio.fail_after(5):
            await inbox.wait_for(lambda m: m.get("type") == "reply")
        assert actor.waiting_s() == 0.0  # answered: nothing waits
        nursery.cancel_scope.cancel()


@pytest.mark.slow
async def test_a_server_behind_on_a_socket_refuses_its_chat_and_keeps_everything_else(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    # A limit of 1 ms: a room whose oldest unanswered request has waited longer is behind, so a
    # pipelined burst (each message waits for a commit) gets refused once it has queued that long.
    env = {"SEDA_OVERLOAD_BEHIND_MS": "1", "SEDA_OVERLOAD_RETRY_MS": "700", **NO_USER_LIMITS}
    async with (
        running(tmp_path / "data", nursery, **env) as server,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http,
    ):
        live = Live(http, server.live_port)
        token, _ = await live.user("shed")
        room = await live.room(token)
        async with live.connect(room["id"], token) as client:
            # A burst sent without waiting: the room queues it, and once its oldest request has
            # waited 1 ms for its answer (each waits for a commit), the rest is refused.
            texts = [f"m{i}" for i in range(300)]
            for i, text in enumerate(texts, start=1):
                await client.send("chat.send", {"text": text}, ref=i)
            replies: dict[int, dict[str, object]] = {}
            with trio.fail_after(30):
                while len(replies) < len(texts):
                    message = await client.recv()
                    if message.get("type") == "reply":
                        replies[message["ref"]] = message
            accepted = [texts[ref - 1] for ref, reply in replies.items() if reply["ok"]]
            refused = [reply for reply in replies.values() if not reply["ok"]]
            assert accepted and refused, "a burst is first taken, then refused once it has waited"
            for reply in refused:
                error = reply["error"]
                assert isinstance(error, dict) and error["code"] == "rate_limited", error
                assert "behind" in error["message"]  # not the per-user limit
                assert 1 <= error["retry_after_ms"] <= 700 * (1 + JITTER)
            # Pings are never shed, and the socket stays open.
            pong, _ = await client.request("ping")
            assert pong["ok"]
        # What was refused was not written; what was acknowledged was.
        stored = [m["text"] for m in await history(http, room["id"], limit=100)]
        assert sorted(stored) == sorted(accepted)
