"""The load harness (``python -m bench``), run for real against the test server with tiny loads."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

from bench.chatwire import fast_chat, stamped_text
from protocol.codec import Encoding, encode
from protocol.events import Event
from server.config import Settings
from server.runtime import Bound

REPO = Path(__file__).resolve().parents[1]
BENCH_TIMEOUT_S = 60


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The bench measures the server, not its rate limits."""
    return replace(settings, chat_rate=1_000_000, chat_rate_window_s=1.0, ops_per_second=1_000_000)


async def bench(server: Bound, tmp_path: Path, *args: str) -> dict[str, Any]:
    """Run the harness as its own process (as an operator would) and return its JSON report."""
    out = tmp_path / "report.json"
    command = [
        sys.executable,
        "-m",
        "bench",
        *args,
        "--http",
        f"http://127.0.0.1:{server.http_port}",
        "--live",
        f"ws://127.0.0.1:{server.live_port}",
        "--json",
        str(out),
        "--quiet",
    ]
    with trio.fail_after(BENCH_TIMEOUT_S):
        done = await trio.run_process(
            command, cwd=REPO, capture_stdout=True, capture_stderr=True, check=False
        )
    assert done.returncode == 0, done.stderr.decode()
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def test_fast_path_reads_the_server_encoding() -> None:
    """Listeners cut seq and stamp out of the bytes; that must agree with the server's real encoding."""
    sent_ns = 1_764_030_000_123_456_789
    data: dict[str, Any] = {
        "id": "c0ffee00-0000-0000-0000-000000000000",
        "user_id": "u1",
        "username": "ana",
        "text": stamped_text(sent_ns, 100),
        "reply_to": None,
        "track": None,
        "mentions": [],
        "at": 1,
        "reactions": {},
    }
    wire = Event("chat.message", data, at=1, seq=42).wire()
    assert fast_chat(encode(wire, Encoding.JSON)) == (42, sent_ns)
    # Any other shape is left to the full decoder rather than misread.
    assert fast_chat(json.dumps({"seq": 42, **wire}).encode()) is None


async def test_fanout_every_listener_gets_every_message(server: Bound, tmp_path: Path) -> None:
    report = await bench(
        server,
        tmp_path,
        "fanout",
        *("--listeners", "5", "--senders", "2", "--rate", "50", "--messages", "10"),
    )
    counters = report["counters"]
    assert counters["acked"] == 20
    assert report["results"]["expected_deliveries"] == 5 * 20
    assert report["deliveries"] == 5 * 20
    assert report["latency_ms"]["delivery"]["count"] == 5 * 20
    assert report["latency_ms"]["reply chat.send"]["count"] == 20
    assert (counters["missed_seq"], counters["duplicate_seq"], counters["undelivered"]) == (0, 0, 0)
    assert report["errors"] == {}


async def test_resume_counts_seq_exactly_across_reconnects(server: Bound, tmp_path: Path) -> None:
    report = await bench(
        server,
        tmp_path,
        "resume",
        *("--clients", "4", "--reconnects", "12", "--senders", "1", "--rate", "40", "--messages", "40"),
    )
    results = report["results"]
    assert results["reconnects"] == 12
    assert results["resumed"] == 12
    assert (results["missed_seq"], results["duplicate_seq"], results["undelivered"]) == (0, 0, 0)
    assert results["seq_exact"]
    # Every client saw every message exactly once, live or replayed.
    assert report["deliveries"] == 4 * 40
    assert report["errors"] == {}


async def test_notify_every_mention_reaches_its_target_once(server: Bound, tmp_path: Path) -> None:
    report = await bench(
        server,
        tmp_path,
        "notify",
        *("--listeners", "5", "--senders", "2", "--targets", "3", "--rate", "40", "--messages", "9"),
    )
    counters = report["counters"]
    results = report["results"]
    assert counters["acked"] == 2 * 9
    assert results["notifications_expected"] == 2 * 9
    assert results["notifications_received"] == 2 * 9
    assert (
        results["notifications_missing"],
        results["notifications_duplicated"],
        results["notifications_unexpected"],
        results["other_notifications"],
    ) == (0, 0, 0, 0)
    assert results["notifications_exact"]
    assert counters["notifications"] == 2 * 9  # every one arrived once, at its own target
    assert report["latency_ms"]["notification mention"]["count"] == 2 * 9
    # The stage's listeners still got every chat message, in order.
    assert report["deliveries"] == 5 * 2 * 9
    assert (counters["missed_seq"], counters["duplicate_seq"], counters["undelivered"]) == (0, 0, 0)
    assert report["errors"] == {}
