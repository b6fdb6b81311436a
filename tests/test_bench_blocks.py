"""``python -m bench fanout --blockers N`` and ``fanout-blocks``: listeners who block the senders
get every message as a stub with its seq, counted as their delivery, and nobody else gets one."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from bench.roles.blocks import stub_latencies
from server.config import Settings
from server.runtime import Bound
from tests.test_bench_harness import REPO, bench

LISTENERS, BLOCKERS, SENDERS, MESSAGES = 6, 2, 2, 10
SPAWNED_TIMEOUT_S = 240


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The bench measures the server, not its rate limits."""
    return replace(settings, chat_rate=1_000_000, chat_rate_window_s=1.0, ops_per_second=1_000_000)


def fanout_args(*extra: str) -> tuple[str, ...]:
    return (
        "fanout",
        *("--listeners", str(LISTENERS), "--blockers", str(BLOCKERS), "--senders", str(SENDERS)),
        *("--rate", "50", "--messages", str(MESSAGES)),
        *extra,
    )


def test_stub_latency_joins_arrivals_to_send_times_by_seq() -> None:
    marks = {"sent_seq 7": 1_000, "stub_at 7 0.1": 4_000, "stub_at 7 0.0": 3_000, "stub_at 9 0.0": 5_000}
    latencies, unmatched = stub_latencies({**marks, "last_delivery_ns": 9})
    assert sorted(latencies) == [2_000, 3_000]
    assert unmatched == 1


async def test_blockers_get_stubs_with_their_seq_guests_full_messages(server: Bound, tmp_path: Path) -> None:
    report = await bench(server, tmp_path, *fanout_args())
    counters, results = report["counters"], report["results"]
    acked = counters["acked"]
    assert acked == SENDERS * MESSAGES
    # A stub is the blocker's delivery: every listener got every acked message, in seq order.
    assert report["deliveries"] == results["expected_deliveries"] == acked * LISTENERS
    assert (counters["missed_seq"], counters["duplicate_seq"], counters["undelivered"]) == (0, 0, 0)
    assert results["stubs"] == results["stubs_owed"] == acked * BLOCKERS
    assert (results["blocked_full"], results["stubs_malformed"], results["stubs_unexpected"]) == (0, 0, 0)
    assert results["blocks_ok"]
    # Full messages (with the send stamp) went to the guests only; stubs are timed by seq.
    assert report["latency_ms"]["delivery"]["count"] == acked * (LISTENERS - BLOCKERS)
    assert report["latency_ms"]["delivery (stub)"]["count"] == acked * BLOCKERS
    assert results["stubs_without_send_time"] == 0
    assert dict(report["rows"])["personal blocks"].startswith("OK:")
    assert report["errors"] == {}


async def test_the_control_run_blocks_nobody(server: Bound, tmp_path: Path) -> None:
    """``--no-blocks``: the same registered listeners, blocking nobody (after a blocking run
    with the same users, through the user cache, their blocks are undone)."""
    cache = tmp_path / "users.json"
    await trio.Path(tmp_path / "blocking").mkdir()
    await trio.Path(tmp_path / "control").mkdir()
    blocking = await bench(server, tmp_path / "blocking", *fanout_args("--user-cache", str(cache)))
    assert blocking["results"]["stubs"] == blocking["counters"]["acked"] * BLOCKERS
    control = fanout_args("--no-blocks", "--user-cache", str(cache))
    report = await bench(server, tmp_path / "control", *control)
    results = report["results"]
    assert (results["blockers"], results["registered_listeners"]) == (0, BLOCKERS)
    assert results["stubs"] == results["stubs_owed"] == results["stubs_unexpected"] == 0
    assert report["latency_ms"]["delivery"]["count"] == report["counters"]["acked"] * LISTENERS
    assert report["deliveries"] == report["counters"]["acked"] * LISTENERS


async def test_fanout_blocks_command_end_to_end(tmp_path: Path) -> None:
    """One round against freshly spawned servers: both runs, their ratio, stubs seen."""
    out = tmp_path / "fanout-blocks.json"
    command = [
        sys.executable,
        "-m",
        "bench",
        "fanout-blocks",
        *("--listeners", "8", "--blockers", "3", "--rate", "20", "--duration", "2", "--drain", "5"),
        *("--no-pin", "--quiet", "--json", str(out)),
    ]
    with trio.fail_after(SPAWNED_TIMEOUT_S):
        done = await trio.run_process(
            command, cwd=REPO, capture_stdout=True, capture_stderr=True, check=False
        )
    assert done.returncode == 0, done.stderr.decode()
    assert "blockers/none: CPU per delivery x" in done.stdout.decode()
    result = json.loads(out.read_text())
    comparison = result["comparison"]
    none, blocked = comparison["rows"]
    assert (none["run"], blocked["run"]) == ("none", "blockers")
    assert none["stubs"] == 0 and none["stubs_unexpected"] == 0
    assert blocked["stubs"] > 0 and blocked["stubs"] == blocked["stubs_owed"]
    assert blocked["blocked_full"] == 0
    for row in (none, blocked):
        assert row["deliveries"] == row["expected_deliveries"] > 0
        assert row["seq_ok"] and row["errors"] == 0
    assert comparison["failures"] == []
    assert comparison["blockers_over_none"]["us_per_delivery"] is not None
