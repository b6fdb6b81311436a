"""``python -m bench overload``: issue 17's goal "Overload without collapse", measured in one sitting.

The ``rooms`` chat load (100 rooms x 5 guest listeners, one sender a room) against a freshly
spawned server per run, at a rising offered rate: ``--rates`` (per-room msg/s), or
``--sustainable R`` run at R x ``--multiples`` (1,2,4). Senders honour ``retry_after_ms`` as a
client should (``--no-honour-retry-after`` to send every planned message regardless). Per run: the
offered, sent, acked and refused rates, what was held back, ack and refusal latency, delivery p99,
the server's CPU. Then the goal: at the highest offered rate the acked rate stays >= 90% of the
peak over the runs and the ack p99 under 1 s."""

from __future__ import annotations

import argparse
from typing import Any

from bench.report import format_table

DEFAULT_RATES = "10,20,30,40,60,120,160"
DEFAULT_MULTIPLES = "1,2,4"
GOAL_SHARE_OF_PEAK = 0.9
GOAL_ACK_P99_MS = 1000.0
ACK_SERIES = "reply chat.send"
REFUSED_SERIES = "refused chat.send"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    rates = parser.add_mutually_exclusive_group()
    rates.add_argument(
        "--rates",
        help=f"offered rates to run, msg/s per room, in this order ({DEFAULT_RATES}: "
        "1,000-16,000 msg/s over 100 rooms); one fresh server each",
    )
    rates.add_argument(
        "--sustainable",
        type=float,
        metavar="R",
        help="the per-room rate (msg/s) believed sustainable: run at R times each of --multiples",
    )
    parser.add_argument(
        "--multiples",
        default=DEFAULT_MULTIPLES,
        help=f"with --sustainable: the multiples of R to run ({DEFAULT_MULTIPLES})",
    )
    # --rate (from the rooms options) is set per run from --rates/--sustainable.
    parser.set_defaults(rooms=100, listeners=5, rate=None, honour_retry_after=True)


def _numbers(text: str, option: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"{option} wants numbers separated by commas, got {text!r}") from None
    if not values or min(values) <= 0:
        raise SystemExit(f"{option} wants positive numbers, got {text!r}")
    return values


def rates(args: argparse.Namespace) -> list[float]:
    """The per-room rates to run, in order."""
    if args.rate is not None:
        raise SystemExit("overload sets the rate per run: give --rates or --sustainable, not --rate")
    if args.sustainable is not None:
        if args.sustainable <= 0:
            raise SystemExit("--sustainable wants a positive rate")
        return [args.sustainable * m for m in _numbers(args.multiples, "--multiples")]
    return _numbers(args.rates or DEFAULT_RATES, "--rates")


def run_args(args: argparse.Namespace, rate: float) -> argparse.Namespace:
    """The ``rooms`` run at one per-room rate: a fresh spawned server, pinned unless --no-pin."""
    run = argparse.Namespace(**vars(args))
    run.scenario = "rooms"
    run.rate = rate
    run.spawn = True
    run.json = None
    return run


def _per_s(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """One run's row. Sent/s is over the send window; acked/s and refused/s over the active window
    (window start to the last reply, as workers-compare computes acked/s); acks after the drain
    are not counted."""
    params = report["params"]
    counters = report["counters"]
    active = report["active_s"] or 1e-9
    server = report.get("server") or {}
    latency = report["latency_ms"]
    ack = latency.get(ACK_SERIES) or {}
    refused = latency.get(REFUSED_SERIES) or {}
    delivery = latency.get("delivery") or {}
    acked = counters.get("acked", 0)
    refused_by_code = {
        name.removeprefix("refused_"): n
        for name, n in sorted(counters.items())
        if name.startswith("refused_") and n
    }
    # Errors: everything but the refusals the goal asks for (rate_limited); closes, failed
    # connects and any other refusal code count.
    errors = sum(report["errors"].values()) - refused_by_code.get("rate_limited", 0)
    return {
        "rate_per_room": params["rate_per_room"],
        "rooms": params["rooms"],
        "offered_per_s": round(params["rate_per_room"] * params["rooms"], 1),
        "duration_s": params["duration"],
        "active_s": report["active_s"],
        "sent": counters.get("sent", 0),
        # Sends happen within the window (--duration), whatever the replies do.
        "sent_per_s": _per_s(counters.get("sent", 0), report["window_s"]),
        "acked": acked,
        "acked_per_s": _per_s(acked, active),
        "refused": counters.get("refused", 0),
        "refused_per_s": {code: _per_s(n, active) for code, n in refused_by_code.items()},
        "held_back": counters.get("held_back", 0),
        "unanswered": counters.get("unanswered", 0),
        "late_replies": counters.get("late_replies", 0),
        "ack_p50_ms": ack.get("p50"),
        "ack_p99_ms": ack.get("p99"),
        "ack_max_ms": ack.get("max"),
        "refused_p50_ms": refused.get("p50"),
        "refused_p99_ms": refused.get("p99"),
        "delivery_p99_ms": delivery.get("p99"),
        "server_cpu_of_one_core": server.get("cpu_of_one_core"),
        "us_per_acked_message": server.get("us_per_acked_message"),
        "errors": errors,
        "others_cores": (report.get("machine") or {}).get("others_cores"),
        "harness_saturated": report["bench"]["saturated"],
        "server_exit_code": report["target"].get("exit_code"),
    }


def goal(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 17's "Overload without collapse" over the runs' rows: at the highest offered rate,
    acked/s >= 90% of the peak acked/s over all runs, and ack p99 < 1 s."""
    if not rows:
        raise ValueError("no runs")
    peak = max(rows, key=lambda row: row["acked_per_s"])
    top = max(rows, key=lambda row: row["offered_per_s"])
    share = top["acked_per_s"] / peak["acked_per_s"] if peak["acked_per_s"] > 0 else 0.0
    p99 = top["ack_p99_ms"]
    share_ok = share >= GOAL_SHARE_OF_PEAK
    p99_ok = p99 is not None and p99 < GOAL_ACK_P99_MS
    return {
        "peak_acked_per_s": peak["acked_per_s"],
        "peak_at_offered_per_s": peak["offered_per_s"],
        "highest_offered_per_s": top["offered_per_s"],
        "acked_per_s_at_highest": top["acked_per_s"],
        "share_of_peak_at_highest": round(share, 3),
        "ack_p99_ms_at_highest": p99,
        "share_ok": share_ok,
        "ack_p99_ok": p99_ok,
        "goal_holds": share_ok and p99_ok,
        "goal": f"at the highest offered rate, acked/s >= {GOAL_SHARE_OF_PEAK:.0%} of the peak "
        f"and ack p99 < {GOAL_ACK_P99_MS:,.0f} ms",
    }


def _cell(value: Any, spec: str = ",.0f") -> str:
    if value is None:
        return "-"
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def _verdict(summary: dict[str, Any]) -> str:
    share = summary["share_of_peak_at_highest"]
    p99 = summary["ack_p99_ms_at_highest"]
    parts = [
        f"acked {summary['acked_per_s_at_highest']:,.0f}/s = {share:.0%} of the peak "
        f"({'>=' if summary['share_ok'] else 'below'} {GOAL_SHARE_OF_PEAK:.0%})",
        f"ack p99 {_cell(p99)} ms ({'under' if summary['ack_p99_ok'] else 'NOT under'} "
        f"{GOAL_ACK_P99_MS:,.0f} ms)",
    ]
    holds = "HOLDS" if summary["goal_holds"] else "DOES NOT HOLD"
    return (
        f"peak acked {summary['peak_acked_per_s']:,.0f}/s (at {summary['peak_at_offered_per_s']:,.0f}/s "
        f"offered); at the highest offered rate, {summary['highest_offered_per_s']:,.0f}/s: "
        + "; ".join(parts)
        + f".\nGoal 'overload without collapse': {holds}."
    )


def format_overload(reports: list[dict[str, Any]], result: dict[str, Any], tables: bool = True) -> str:
    lines = [format_table(r) + "\n" for r in reports] if tables else []
    first = reports[0]
    honour = first["params"].get("honour_retry_after")
    lines.append(
        f"overload: {first['params']['rooms']} rooms x {first['params']['listeners_per_room']} listeners, "
        f"1 sender a room, {first['params']['duration']:g} s each, fresh server each run; senders "
        + ("honour retry_after_ms" if honour else "do NOT honour retry_after_ms")
    )
    lines.append(
        f"{'offered/s':>9} {'sent/s':>7} {'acked/s':>7} {'refused/s':>18} {'held back':>9} "
        f"{'ack p50':>7} {'ack p99':>7} {'ack max':>7} {'ref p99':>7} {'dlv p99':>7} "
        f"{'server':>6} {'µs/ack':>7} {'errors':>6} {'others':>6}"
    )
    for row in result["runs"]:
        refused = ", ".join(f"{code} {n:,.0f}" for code, n in row["refused_per_s"].items()) or "0"
        lines.append(
            f"{row['offered_per_s']:>9,.0f} {row['sent_per_s']:>7,.0f} {row['acked_per_s']:>7,.0f} "
            f"{refused:>18} {row['held_back']:>9,} {_cell(row['ack_p50_ms']):>7} "
            f"{_cell(row['ack_p99_ms']):>7} {_cell(row['ack_max_ms']):>7} {_cell(row['refused_p99_ms']):>7} "
            f"{_cell(row['delivery_p99_ms']):>7} {_cell(row['server_cpu_of_one_core'], '.0%'):>6} "
            f"{_cell(row['us_per_acked_message']):>7} {row['errors']:>6} "
            f"{_cell(row['others_cores'], '.2f'):>6}"
            + ("  harness SATURATED" if row["harness_saturated"] else "")
        )
    lines.append(
        "sent/s over the send window (--duration); acked/s and refused/s over the active window "
        "(start to the last counted reply); latencies in ms; "
        "held back = planned sends skipped while waiting out retry_after_ms; ref p99 = refused replies; "
        "server = share of one core; others = other processes' CPU, cores"
    )
    lines.append(_verdict(result["summary"]))
    return "\n".join(lines)


def build(reports: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [summarise(r) for r in reports]
    return {"runs": rows, "summary": goal(rows)}
