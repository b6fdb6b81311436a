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

from protocol.ops import OP_DATA
from server.live.admission import JITTER, SHEDDABLE_OPS, TURN_SLACK, Admission, Backlog, LoopTurns
from tests.live_client import Live, history
from tests.process import running

NO_USER_LIMITS = {"SEDA_CHAT_RATE": "100000", "SEDA_CHAT_RATE_WINDOW_S": "1", "SEDA_OPS_PER_SECOND": "100000"}


def watching(limit_s: float = 0.25, retry_after_ms: int = 1000) -> Admission:
    return Admission(
        behind_limit_s=limit_s, retry_after_ms=retry_after_ms, loop=LoopTurns(), rng=random.Random(7)
    )


def test_a_socket_with_a_frame_at_every_turn_falls_behind_and_one_that_pauses_catches_up() -> None:
    backlog = Backlog()
    for turn in range(0, 200, 2):  # a frame every other turn (the reader hands over in between)
        backlog.frame(turn, now=turn * 0.01)
    assert backlog.behind(now=2.0) == pytest.approx(2.0)  # since its first frame
    backlog.frame(198 + TURN_SLACK + 1, now=2.5)  # turns went by without a frame: it caught up
    assert backlog.behind(now=2.5) == 0.0
    assert backlog.behind(now=2.6) == pytest.approx(0.1)


@given(st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=200))
def test_behind_is_the_time_since_the_last_gap_of_more_than_the_slack(gaps: list[int]) -> None:
    backlog = Backlog()
    turn, streak_start = 0, 0
    for i, gap in enumerate(gaps):
        turn += gap
        if i == 0 or gap > TURN_SLACK:
            streak_start = turn
        backlog.frame(turn, now=float(turn))
    assert backlog.behind(now=float(turn)) == float(turn - streak_start)


def test_only_sheddable_ops_past_the_limit_are_refused_with_a_spread_retry() -> None:
    admission = watching(limit_s=0.25, retry_after_ms=1000)
    for op in OP_DATA:
        assert admission.refusal(op, behind_s=0.25) is None  # at the limit: taken
        wait = admission.refusal(op, behind_s=0.3)
        if op in SHEDDABLE_OPS:
            assert wait is not None and 1000 * (1 - JITTER) <= wait <= 1000 * (1 + JITTER)
        else:
            assert wait is None, op
    assert admission.refused == len(SHEDDABLE_OPS & set(OP_DATA))


def test_nothing_is_refused_unless_the_loop_is_watched() -> None:
    admission = Admission(behind_limit_s=0.0)
    assert admission.refusal("chat.send", behind_s=100.0) is None


def test_loop_turns_count_each_poll_for_io() -> None:
    loop = LoopTurns()
    for timeout in (0.0, 1.0, 0.0):
        loop.before_io_wait(timeout)
    assert loop.turns == 3


@pytest.mark.slow
async def test_a_server_behind_on_a_socket_refuses_its_chat_and_keeps_everything_else(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    # A limit of 1 ms: a client that sends its next frame while the last is still being served
    # is behind, so a pipelined burst gets refused once it has lasted that long.
    env = {"SEDA_OVERLOAD_BEHIND_MS": "1", "SEDA_OVERLOAD_RETRY_MS": "700", **NO_USER_LIMITS}
    async with (
        running(tmp_path / "data", nursery, **env) as server,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http,
    ):
        live = Live(http, server.live_port)
        token, _ = await live.user("shed")
        room = await live.room(token)
        async with live.connect(room["id"], token) as client:
            # A burst sent without waiting: the server reads it a frame per turn or two, so the
            # later frames wait for it, and past 1 ms of that they are refused.
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
                assert 700 * (1 - JITTER) <= error["retry_after_ms"] <= 700 * (1 + JITTER)
            # Pings are never shed, and the socket stays open.
            pong, _ = await client.request("ping")
            assert pong["ok"]
        # What was refused was not written; what was acknowledged was.
        stored = [m["text"] for m in await history(http, room["id"], limit=100)]
        assert sorted(stored) == sorted(accepted)
