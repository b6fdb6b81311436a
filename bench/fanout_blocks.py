"""``python -m bench fanout-blocks``: issue 18's "Personal blocks in fan-out", in one sitting.

The ``fanout`` load (one room, ``--listeners`` listeners, ``--senders`` authenticated senders at
``--rate``) run in pairs against freshly spawned servers: first with ``--blockers`` of the
listeners registered users who block nobody (the control: no blocks anywhere, so fan-out asks
nothing about them), then with the same number blocking every sender (each of their messages
reaches those sockets as a stub, with its ``seq``). Everything else is the same: the other
listeners are guests, and the blockers' sockets are registered in both runs, so the difference
is the blocks. ``--rounds N`` repeats the pair. Per run: deliveries/s (a stub is that socket's
delivery), server CPU, µs of server CPU per delivery, delivery p50/p99, stubs received and owed;
per round the ratios blockers/none; their median; and the goal: CPU per delivery with blockers at
most 1.10x without.

The exit status is 1 if a run broke a rule: a blocker got a full message of a sender it blocks,
a stub was malformed or went to a socket that blocks nobody, fewer stubs came than owed (acked
messages x blockers), or the seq check failed.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable
from typing import Any

from bench.affinity import pin
from bench.fanout_peer import round_ratios
from bench.progress import ProgressBar
from bench.report import cell, format_table
from bench.scenarios.chat import FanoutScenario

NAME = "fanout-blocks"
HELP = (
    "the fanout load with --blockers listeners blocking the senders against the same without "
    "blocks, fresh servers, alternating: CPU per delivery, ratio (issue 18)"
)
GOAL_RATIO = 1.10
RUNS = ("none", "blockers")

RunBench = Callable[[argparse.Namespace, ProgressBar], Awaitable[dict[str, Any]]]


def register(scenarios: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``fanout-blocks`` sub-command to ``python -m bench``."""
    sub = scenarios.add_parser(NAME, parents=[common], help=HELP, description=HELP)
    FanoutScenario.add_arguments(sub)
    sub.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="none then blockers, this many times (1); the ratios per round and their median",
    )
    sub.set_defaults(senders=1, rate=50.0, blockers=10)


def check(args: argparse.Namespace) -> None:
    """Bad options stop here, before any server starts."""
    if args.blockers < 1 or args.blockers > args.listeners:
        raise SystemExit(f"{NAME}: --blockers must be between 1 and --listeners")
    if args.rounds < 1:
        raise SystemExit(f"{NAME}: --rounds must be at least 1")
    if not args.blocks:
        raise SystemExit(f"{NAME}: --no-blocks makes no sense here: each round runs both")


def run_args(args: argparse.Namespace, blocks: bool) -> argparse.Namespace:
    run = argparse.Namespace(**vars(args))
    run.scenario = "fanout"
    run.spawn = True
    run.workers = 1
    run.blocks = blocks
    run.json = None
    return run


def summarise(name: str, report: dict[str, Any]) -> dict[str, Any]:
    server = report.get("server") or {}
    latency = report["latency_ms"]
    delivery = latency.get("delivery", {})
    stub = latency.get("delivery (stub)", {})
    results = report.get("results") or {}
    counters = report["counters"]
    expected = results.get("expected_deliveries") or 0
    return {
        "run": name,
        "blockers": results.get("blockers", 0),
        "deliveries": report["deliveries"],
        "expected_deliveries": expected,
        "deliveries_per_s": report["deliveries_per_s"],
        "server_cpu_of_one_core": server.get("cpu_of_one_core"),
        "us_per_delivery": server.get("us_per_delivery"),
        "delivery_p50_ms": delivery.get("p50"),
        "delivery_p99_ms": delivery.get("p99"),
        "stub_p50_ms": stub.get("p50"),
        "stub_p99_ms": stub.get("p99"),
        "stubs": results.get("stubs", 0),
        "stubs_owed": results.get("stubs_owed", 0),
        "blocked_full": results.get("blocked_full", 0),
        "stubs_malformed": results.get("stubs_malformed", 0),
        "stubs_unexpected": results.get("stubs_unexpected", 0),
        "blocks_ok": results.get("blocks_ok", True),
        "seq_ok": not any(counters.get(key, 0) for key in ("missed_seq", "duplicate_seq", "undelivered")),
        "errors": sum(report["errors"].values()),
        "others_cores": (report.get("machine") or {}).get("others_cores"),
        "bench_saturated": report["bench"]["saturated"],
        "pinned": "pinned" in report["target"],
    }


def failures(rows: list[dict[str, Any]]) -> list[str]:
    """What broke a rule, run by run (empty: nothing)."""
    found = []
    for row in rows:
        problems = []
        if row["blocked_full"]:
            problems.append(f"{row['blocked_full']:,} full messages of a blocked sender reached a blocker")
        if row["stubs_malformed"]:
            problems.append(f"{row['stubs_malformed']:,} malformed stubs")
        if row["stubs_unexpected"]:
            problems.append(f"{row['stubs_unexpected']:,} stubs to sockets that block nobody")
        if row["stubs"] < row["stubs_owed"]:
            problems.append(f"only {row['stubs']:,} of {row['stubs_owed']:,} stubs owed arrived")
        if not row["seq_ok"]:
            problems.append("the seq check failed")
        if not row["blocks_ok"] and not problems:
            problems.append("the personal blocks check failed")
        if problems:
            found.append(f"{row['run']}: " + "; ".join(problems))
    return found


def compare(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One row per run; per round the ratios blockers/none, and the median of each over rounds."""
    rows = [summarise(name, report) for name, report in runs.items()]
    rounds, median = round_ratios(rows, "blockers", "none")
    cpu = median.get("us_per_delivery") if median else None
    return {
        "rows": rows,
        "rounds": rounds,
        "blockers_over_none": median,
        "goal_ratio": GOAL_RATIO,
        "goal_met": cpu is not None and cpu <= GOAL_RATIO,
        "failures": failures(rows),
    }


def format_compare(runs: dict[str, dict[str, Any]], comparison: dict[str, Any]) -> str:
    lines = [format_table(report) + "\n" for report in runs.values()]
    params = next(iter(runs.values()))["params"]
    offered = params["senders"] * params["rate"] * params["listeners"]
    lines.append(
        f"{NAME}: 1 room x {params['listeners']:,} listeners, {params['senders']} sender(s) x "
        f"{params['rate']:g} msg/s (offered {offered:,.0f} deliveries/s), {params['duration']:g} s each; "
        f"'none': {params['registered_listeners']} of the listeners registered, blocking nobody; "
        f"'blockers': the same blocking the senders"
    )
    lines.append(
        f"{'run':>10} {'deliv/s':>9} {'server':>7} {'µs/deliv':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'stub p50/p99':>13} {'stubs/owed':>15} {'delivered':>10} {'errors':>6} {'others':>6}  pinned"
    )
    for row in comparison["rows"]:
        delivered = row["deliveries"] / row["expected_deliveries"] if row["expected_deliveries"] else None
        stub_ms = "-"
        if row["stub_p50_ms"] is not None:
            stub_ms = f"{cell(row['stub_p50_ms'])}/{cell(row['stub_p99_ms'])}"
        lines.append(
            f"{row['run']:>10} {cell(row['deliveries_per_s'], ',.0f'):>9} "
            f"{cell(row['server_cpu_of_one_core'], '.0%'):>7} {cell(row['us_per_delivery'], '.2f'):>9} "
            f"{cell(row['delivery_p50_ms']):>7} {cell(row['delivery_p99_ms']):>7} {stub_ms:>13} "
            f"{row['stubs']:>7,}/{row['stubs_owed']:<7,} {cell(delivered, '.2%'):>10} {row['errors']:>6} "
            f"{cell(row['others_cores'], '.2f'):>6}  {'CPU 0' if row['pinned'] else 'no'}"
            + ("  BENCH SATURATED" if row["bench_saturated"] else "")
        )
    for ratio in comparison["rounds"]:
        lines.append(
            f"round {ratio['round']}: blockers/none "
            f"CPU per delivery x{cell(ratio['us_per_delivery'], '.3f')}, "
            f"delivery p99 x{cell(ratio['delivery_p99_ms'], '.2f')}"
        )
    ratio = comparison["blockers_over_none"]
    if ratio:
        verdict = "met" if comparison["goal_met"] else "NOT met"
        lines.append(
            f"blockers/none{' (median of the rounds)' if len(comparison['rounds']) > 1 else ''}: "
            f"CPU per delivery x{cell(ratio['us_per_delivery'], '.3f')} "
            f"(goal <= {GOAL_RATIO:.2f}: {verdict}), "
            f"deliveries/s x{cell(ratio['deliveries_per_s'], '.3f')}, "
            f"server CPU x{cell(ratio['server_cpu_of_one_core'], '.3f')}, "
            f"delivery p99 x{cell(ratio['delivery_p99_ms'], '.2f')}"
        )
    lines.append("server CPU in cores; a stub is its socket's delivery; others = other processes, in cores")
    for failure in comparison["failures"]:
        lines.append(f"FAILED {failure}")
    return "\n".join(lines)


async def run(args: argparse.Namespace, progress: ProgressBar, run_bench: RunBench) -> dict[str, Any]:
    check(args)
    cpus = frozenset(os.sched_getaffinity(0))
    runs: dict[str, dict[str, Any]] = {}
    for number in range(1, args.rounds + 1):
        suffix = f" {number}" if args.rounds > 1 else ""
        for name in RUNS:
            # Every CPU again, as at the start: run_bench splits them itself, after its set-up.
            pin([os.getpid()], cpus, descendants=False)
            progress.note(f"{NAME}: {name}{suffix}")
            runs[f"{name}{suffix}"] = await run_bench(run_args(args, blocks=name == "blockers"), progress)
    pin([os.getpid()], cpus, descendants=False)
    return {"runs": runs, "comparison": compare(runs)}
