"""Overload shedding (server/live/admission.py): the pure controller, the loop probe, and a real
``seda serve`` that refuses chat with ``rate_limited`` when its loop is past the busy limit."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from protocol.ops import OP_DATA
from server.live.admission import (
    JITTER,
    SHEDDABLE_OPS,
    STEP_DOWN,
    STEP_UP,
    LoopBusy,
    Shedder,
)
from tests.live_client import Live, history
from tests.process import running


def test_share_rises_past_the_limit_holds_near_it_and_falls_below() -> None:
    shedder = Shedder(busy_limit=0.9)
    shedder.observe(0.95)
    assert shedder.share == STEP_UP
    shedder.observe(1.0)
    assert shedder.share == 2 * STEP_UP
    shedder.observe(0.88)  # within the hysteresis band: held
    assert shedder.share == 2 * STEP_UP
    shedder.observe(0.5)
    assert shedder.share == pytest.approx(2 * STEP_UP - STEP_DOWN)
    for _ in range(20):
        shedder.observe(0.1)
    assert shedder.share == 0.0
    assert all(shedder.refusal(op) is None for op in OP_DATA)


def test_full_share_refuses_every_sheddable_op_and_nothing_else() -> None:
    shedder = Shedder(busy_limit=0.5, retry_after_ms=1000, rng=random.Random(7))
    for _ in range(10):
        shedder.observe(1.0)
    assert shedder.share == 1.0
    for op in OP_DATA:
        wait = shedder.refusal(op)
        if op in SHEDDABLE_OPS:
            assert wait is not None and 1000 * (1 - JITTER) <= wait <= 1000 * (1 + JITTER)
        else:
            assert wait is None, op
    assert shedder.refused == len(SHEDDABLE_OPS & set(OP_DATA))


def test_a_limit_of_one_never_sheds() -> None:
    shedder = Shedder(busy_limit=1.0)
    for _ in range(50):
        shedder.observe(1.0)
    assert shedder.share == 0.0 and shedder.refusal("chat.send") is None


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=60), st.floats(0.0, 0.99))
def test_share_stays_a_share_and_a_partial_one_refuses_about_that_much(
    busy: list[float], limit: float
) -> None:
    shedder = Shedder(busy_limit=limit, rng=random.Random(1))
    for b in busy:
        shedder.observe(b)
        assert 0.0 <= shedder.share <= 1.0
    refused = sum(shedder.refusal("chat.send") is not None for _ in range(2000))
    assert abs(refused / 2000 - shedder.share) < 0.06


def test_loop_busy_is_the_share_of_time_not_spent_waiting_for_io() -> None:
    now = [100.0]
    probe = LoopBusy(clock=lambda: now[0])
    now[0] += 1.0  # busy for 1 s
    probe.before_io_wait(1.0)
    now[0] += 3.0  # waiting 3 s
    probe.after_io_wait(1.0)
    assert probe.take() == pytest.approx(0.25)
    probe.before_io_wait(0.0)
    probe.after_io_wait(0.0)
    now[0] += 2.0  # busy throughout
    assert probe.take() == pytest.approx(1.0)


@pytest.mark.slow
async def test_a_server_past_its_busy_limit_refuses_chat_and_keeps_everything_else(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    # A limit of 0: any busy interval counts as overload, so the shedder starts refusing at once.
    env = {"SEDA_OVERLOAD_BUSY": "0", "SEDA_OVERLOAD_RETRY_MS": "700"}
    async with (
        running(tmp_path / "data", nursery, **env) as server,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http,
    ):
        live = Live(http, server.live_port)
        token, _ = await live.user("shed")
        room = await live.room(token)
        async with live.connect(room["id"], token) as client:
            accepted: list[str] = []
            with trio.fail_after(30):
                while True:
                    text = f"m{len(accepted)}"
                    reply, _ = await client.request("chat.send", {"text": text})
                    if not reply["ok"]:
                        break
                    accepted.append(text)
            error = reply["error"]
            assert error["code"] == "rate_limited"
            assert 700 * (1 - JITTER) <= error["retry_after_ms"] <= 700 * (1 + JITTER)
            # Pings are never shed, and the socket stays open.
            pong, _ = await client.request("ping")
            assert pong["ok"]
        # What was refused was not written; what was acknowledged was.
        stored = [m["text"] for m in await history(http, room["id"])]
        assert sorted(stored) == sorted(accepted)
        assert text not in stored
