"""``python -m bench overload``: the goal's arithmetic, senders honouring ``retry_after_ms`` against
the test server's real chat limit, and the command end to end against a spawned server."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

from bench import overload
from server.config import Settings
from server.runtime import Bound
from tests.test_bench_harness import REPO, bench

RATE = 50  # msg/s per sender: ten times the chat limit below
MESSAGES = 100
SPAWNED_TIMEOUT_S = 240


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A tight chat limit (5 a second, burst 5) so that senders are refused with rate_limited."""
    return replace(settings, chat_rate=5, chat_rate_window_s=1.0, ops_per_second=1_000_000)


def row(offered: float, acked: float, p99: float | None) -> dict[str, Any]:
    return {"offered_per_s": offered, "acked_per_s": acked, "ack_p99_ms": p99}


def test_goal_holds_when_the_top_rate_keeps_its_acks_and_its_latency() -> None:
    summary = overload.goal([row(1000, 1000, 20), row(2000, 2000, 40), row(4000, 1850, 900)])
    assert summary["peak_acked_per_s"] == 2000
    assert summary["peak_at_offered_per_s"] == 2000
    assert summary["highest_offered_per_s"] == 4000
    assert summary["share_of_peak_at_highest"] == 0.925
    assert summary["ack_p99_ms_at_highest"] == 900
    assert summary["goal_holds"]


def test_goal_fails_on_collapse_or_on_late_acks() -> None:
    collapsed = overload.goal([row(1000, 1000, 20), row(3000, 2700, 300), row(20000, 1900, 20000)])
    assert collapsed["share_of_peak_at_highest"] == pytest.approx(1900 / 2700, abs=1e-3)
    assert not collapsed["share_ok"] and not collapsed["ack_p99_ok"] and not collapsed["goal_holds"]
    # All the acks, but a second late: the p99 alone fails it (and 1,000 ms is not "under").
    late = overload.goal([row(1000, 1000, 20), row(4000, 3000, 1000)])
    assert late["share_ok"] and not late["ack_p99_ok"] and not late["goal_holds"]
    # Nothing acked at the top: no p99 to hold.
    nothing = overload.goal([row(1000, 1000, 20), row(4000, 0, None)])
    assert nothing["share_of_peak_at_highest"] == 0 and not nothing["goal_holds"]
    # The highest offered rate is judged even when it was not run last.
    unordered = overload.goal([row(4000, 1000, 50), row(1000, 1000, 20)])
    assert unordered["highest_offered_per_s"] == 4000 and unordered["goal_holds"]


def test_rates_from_a_list_or_from_the_sustainable_rate() -> None:
    base = {"rate": None, "rates": None, "sustainable": None, "multiples": "1,2,4"}
    assert overload.rates(argparse.Namespace(**base)) == [10, 20, 30, 40, 60, 120, 160]
    assert overload.rates(argparse.Namespace(**{**base, "rates": "5, 50"})) == [5, 50]
    assert overload.rates(argparse.Namespace(**{**base, "sustainable": 25.0})) == [25, 50, 100]
    with pytest.raises(SystemExit):
        overload.rates(argparse.Namespace(**{**base, "rate": 5.0}))
    with pytest.raises(SystemExit):
        overload.rates(argparse.Namespace(**{**base, "rates": "10,0"}))


async def rooms(server: Bound, tmp_path: Path, *extra: str) -> dict[str, Any]:
    """One room, one listener, one sender offering RATE msg/s for MESSAGES planned sends."""
    args = ("--rooms", "1", "--listeners", "1", "--rate", str(RATE), "--messages", str(MESSAGES))
    await trio.Path(tmp_path).mkdir()
    return await bench(server, tmp_path, "rooms", *args, *extra)


async def test_senders_honour_retry_after(server: Bound, tmp_path: Path) -> None:
    plain = await rooms(server, tmp_path / "plain")
    honouring = await rooms(server, tmp_path / "honouring", "--honour-retry-after")

    # Without honouring, every planned send goes out and the excess is refused.
    counters = plain["counters"]
    assert counters["sent"] == MESSAGES
    assert counters.get("held_back", 0) == 0
    assert counters["acked"] + counters["refused"] == MESSAGES
    assert counters["refused"] == counters["refused_rate_limited"] == plain["errors"]["rate_limited"]
    assert counters["refused"] > MESSAGES // 2

    # Honouring: what the schedule planned is either sent or held back, and after each refusal
    # the sender waits until the limit has a token again, so few sends are refused.
    counters = honouring["counters"]
    assert honouring["params"]["honour_retry_after"] is True
    assert counters["sent"] + counters["held_back"] == MESSAGES
    assert counters["held_back"] > MESSAGES // 2
    assert counters["acked"] + counters["refused"] == counters["sent"]
    assert counters["refused"] == counters["refused_rate_limited"]
    assert 0 < counters["refused"] < plain["counters"]["refused"] // 2
    # The limit, not the sender, decided how many got through: about as many acks either way.
    assert abs(counters["acked"] - plain["counters"]["acked"]) <= 5

    for report in (plain, honouring):
        # Acks and refusals are timed apart; listeners got every acked message.
        latency = report["latency_ms"]
        assert latency["reply chat.send"]["count"] == report["counters"]["acked"]
        assert latency["refused chat.send"]["count"] == report["counters"]["refused"]
        assert report["deliveries"] == report["counters"]["acked"]
        assert dict(report["rows"])["chat.send"].startswith(f"sent {report['counters']['sent']}")


async def test_overload_command_end_to_end(tmp_path: Path) -> None:
    """Two tiny runs against freshly spawned servers whose chat limit (5 a second) refuses most
    of the higher rate: the JSON has both runs and the summary, and the exit status is 0."""
    out = tmp_path / "overload.json"
    command = [
        sys.executable,
        "-m",
        "bench",
        "overload",
        *("--rates", "2,20", "--rooms", "2", "--listeners", "1", "--duration", "2", "--drain", "5"),
        *("--server-env", "SEDA_CHAT_RATE=5", "--server-env", "SEDA_CHAT_RATE_WINDOW_S=1"),
        *("--no-pin", "--quiet", "--json", str(out)),
    ]
    with trio.fail_after(SPAWNED_TIMEOUT_S):
        done = await trio.run_process(
            command, cwd=REPO, capture_stdout=True, capture_stderr=True, check=False
        )
    assert done.returncode == 0, done.stderr.decode()
    printed = done.stdout.decode()
    assert "Goal 'overload without collapse':" in printed
    result = json.loads(out.read_text())
    low, high = result["runs"]
    assert (low["offered_per_s"], high["offered_per_s"]) == (4, 40)
    assert low["refused"] == 0 and low["held_back"] == 0 and low["errors"] == 0
    assert high["refused_per_s"]["rate_limited"] > 0 and high["held_back"] > 0
    assert high["errors"] == 0
    assert high["report"]["target"]["raised_limits"]["SEDA_CHAT_RATE"] == "5"
    summary = result["summary"]
    assert summary["highest_offered_per_s"] == 40
    assert summary["peak_acked_per_s"] == max(low["acked_per_s"], high["acked_per_s"])
    assert isinstance(summary["goal_holds"], bool)
