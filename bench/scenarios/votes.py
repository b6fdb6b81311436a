"""``votes``: a fan session where every listener votes within a second of each ``track.started``.

Per track: votes sent and acknowledged, the ``track.ended`` up count (a lost
vote shows as acknowledged but not counted), and for every voter the time from
the last vote of anyone to its first ``vote.tally`` that counts all voters.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.coordinator import RunOutcome, RunPlan
from bench.scenarios.base import Scenario, ScenarioResult, SetupEnv, share
from bench.stats import ABSOLUTE, Summary, new_samples

TALLY_TARGET_MS = 300.0


class VotesScenario(Scenario):
    name = "votes"
    help = "a fan session: N listeners vote within a second of every track.started"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--listeners", type=int, default=1000, help="voters (authenticated) (1000)")
        parser.add_argument("--tracks", type=int, default=4, help="tracks the DJ queues (4)")
        parser.add_argument("--track-ms", type=int, default=3000, help="duration_ms of each track (3000)")
        parser.add_argument(
            "--spread", type=float, default=1.0, help="votes fall within this many seconds of a start (1.0)"
        )
        parser.add_argument("--connect-concurrency", type=int, default=200, help="connects in flight (200)")

    def params(self) -> dict[str, Any]:
        a = self.args
        return {"listeners": a.listeners, "tracks": a.tracks, "track_ms": a.track_ms, "spread_s": a.spread}

    def describe(self) -> str:
        a = self.args
        return (
            f"fan session, {a.tracks} tracks x {a.track_ms} ms; {a.listeners:,} voters vote up "
            f"within {a.spread:g} s of each start"
        )

    async def setup(self, env: SetupEnv) -> RunPlan:
        a = self.args
        if a.track_ms < 1000:
            raise SystemExit("--track-ms must be at least 1000 (PROTOCOL.md: duration_ms 1000..7200000)")
        owner, dj, *voters = await env.users.take(a.listeners + 2)
        room = await env.api.create_room(owner.token, f"bench votes {env.tag}")
        workers: list[list[dict[str, Any]]] = []
        first = 0
        for index, count in enumerate(share(a.listeners, env.procs)):
            roles: list[dict[str, Any]] = []
            if count:
                roles.append(
                    {
                        "kind": "voters",
                        "room": room,
                        "count": count,
                        "tokens": [u.token for u in voters[first : first + count]],
                        "spread_s": a.spread,
                        "concurrency": a.connect_concurrency,
                    }
                )
                first += count
            if index == 0:
                roles.append(
                    {
                        "kind": "conductor",
                        "room": room,
                        "owner_token": owner.token,
                        "dj_token": dj.token,
                        "tracks": a.tracks,
                        "track_ms": a.track_ms,
                        "tag": f"bench{env.tag}",
                    }
                )
            workers.append(roles)
        window_s = a.tracks * a.track_ms / 1000 + 2.0
        return RunPlan(workers, window_s, 0.0, a.listeners)

    def results(self, outcome: RunOutcome) -> ScenarioResult:
        tally = outcome.tally
        voters = tally.counters["connected"]  # the voters that got in
        items = sorted(
            (name.removeprefix("last_vote_at "), at)
            for name, at in tally.marks.items()
            if name.startswith("last_vote_at ")
        )
        delays: list[int] = []
        never_saw = 0
        lost = 0
        per_track = []
        for item_id, last_vote_ns in items:
            acked = tally.counters[f"acked {item_id}"]
            final_up = tally.marks.get(f"final_up {item_id}")
            # The final tally counts every vote: those track.ended counted, else those acked.
            final = final_up if final_up is not None else acked
            seen = tally.samples.get(f"{ABSOLUTE} tally {item_id} {final}", new_samples())
            delays.extend(at - last_vote_ns for at in seen)
            never_saw += voters - len(seen)
            if final_up is not None and final_up < acked:
                lost += acked - final_up
            per_track.append(
                {
                    "item_id": item_id,
                    "sent": tally.counters[f"sent {item_id}"],
                    "acked": acked,
                    "final_up": final_up,
                    "saw_final_tally": len(seen),
                }
            )
        summary = Summary.of(delays)
        late = sum(1 for d in delays if d > TALLY_TARGET_MS * 1e6)
        c = tally.counters
        rows = [
            ("tracks", f"{c['tracks_started']} started, {c['tracks_ended']} ended, {len(items)} voted on"),
            (
                "votes",
                f"{c['votes_sent']:,} sent, {c['votes_acked']:,} acked, {lost:,} acked but not in "
                f"track.ended's count",
            ),
            (
                "last vote -> final tally ms",
                (
                    f"p50 {summary.p50:.1f}  p90 {summary.p90:.1f}  p99 {summary.p99:.1f}  "
                    f"max {summary.max:.1f}  ({summary.count:,} voters x tracks)"
                )
                if summary
                else "-",
            ),
            (
                "final tally",
                f"{late:,} seen later than {TALLY_TARGET_MS:.0f} ms, {never_saw:,} never seen",
            ),
        ]
        fields = {
            "votes_sent": c["votes_sent"],
            "votes_acked": c["votes_acked"],
            "votes_lost": lost,
            "final_tally_ms": summary.to_json() if summary else None,
            "final_tally_late": late,
            "final_tally_never_seen": never_saw,
            "tracks": per_track,
        }
        return ScenarioResult(rows, fields)
