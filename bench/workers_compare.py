"""``python -m bench workers-compare``: the ``rooms`` chat load against ``seda serve --workers N``
for each N of ``--counts`` (1,2), one fresh spawned server each, in one sitting, side by side."""

from __future__ import annotations

import argparse
from typing import Any

from bench.report import cell, format_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--counts", default="1,2", help="worker counts to compare, in this order (1,2): one run each"
    )
    parser.add_argument(
        "--pin-single",
        action="store_true",
        help="pin the 1-worker server to CPU 0 and the harness to the rest, as single runs do "
        "(default: every run unpinned, so every run has the same CPUs)",
    )
    parser.set_defaults(rooms=100, listeners=5)


def counts(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise SystemExit(f"--counts wants worker counts >= 1, got {text!r}")
    return values


def run_args(args: argparse.Namespace, workers: int) -> argparse.Namespace:
    """The ``rooms`` run for one worker count."""
    run = argparse.Namespace(**vars(args))
    run.scenario = "rooms"
    run.workers = workers
    run.spawn = True
    run.no_pin = args.no_pin or not (args.pin_single and workers == 1)
    run.json = None
    return run


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """The figures one row of the comparison shows."""
    server = report.get("server") or {}
    acked = report["results"].get("acked_messages", 0)
    active = report["active_s"] or 1e-9
    delivery = report["latency_ms"].get("delivery", {})
    return {
        "workers": report["target"].get("workers", 1),
        "acked_messages": acked,
        "acked_per_s": round(acked / active, 1),
        "deliveries_per_s": report["deliveries_per_s"],
        "server_cpu_of_one_core": server.get("cpu_of_one_core"),
        "server_processes": server.get("processes"),
        "us_per_acked_message": server.get("us_per_acked_message"),
        "us_per_delivery": server.get("us_per_delivery"),
        "postgres_cpu_of_one_core": server.get("db_cpu_of_one_core"),
        "nats_cpu_of_one_core": server.get("nats_cpu_of_one_core"),
        "delivery_p50_ms": delivery.get("p50"),
        "delivery_p99_ms": delivery.get("p99"),
        "errors": sum(report["errors"].values()),
        "others_cores": (report.get("machine") or {}).get("others_cores"),
        "pinned": "pinned" in report["target"],
    }


RATIO_KEYS = (
    "acked_per_s",
    "deliveries_per_s",
    "server_cpu_of_one_core",
    "us_per_acked_message",
    "us_per_delivery",
    "delivery_p99_ms",
)


def compare(reports: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [summarise(r) for r in reports]
    base = rows[0]
    ratios = []
    for row in rows[1:]:
        ratios.append(
            {
                "workers": f"{row['workers']} / {base['workers']}",
                **{
                    key: round(row[key] / base[key], 3) if row.get(key) and base.get(key) else None
                    for key in RATIO_KEYS
                },
            }
        )
    return {"rows": rows, "ratios": ratios}


def format_compare(reports: list[dict[str, Any]], comparison: dict[str, Any]) -> str:
    lines = [format_table(r) + "\n" for r in reports]
    lines.append(f"workers-compare: {reports[0]['description']}, {reports[0]['params']['duration']:g} s each")
    header = (
        f"{'workers':>7} {'acked/s':>9} {'deliv/s':>9} {'server':>7} {'µs/msg':>8} {'µs/deliv':>9} "
        f"{'pg':>5} {'nats':>5} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'others':>6}  pinned"
    )
    lines.append(header)
    for row in comparison["rows"]:
        lines.append(
            f"{row['workers']:>7} {cell(row['acked_per_s']):>9} {cell(row['deliveries_per_s'], ',.0f'):>9} "
            f"{cell(row['server_cpu_of_one_core'], '.0%'):>7} {cell(row['us_per_acked_message']):>8} "
            f"{cell(row['us_per_delivery']):>9} {cell(row['postgres_cpu_of_one_core'], '.0%'):>5} "
            f"{cell(row['nats_cpu_of_one_core'], '.0%'):>5} {cell(row['delivery_p50_ms']):>7} "
            f"{cell(row['delivery_p99_ms']):>7} {row['errors']:>6} {cell(row['others_cores'], '.2f'):>6}  "
            f"{'CPU 0' if row['pinned'] else 'no'}"
        )
    for ratio in comparison["ratios"]:
        lines.append(
            f"{'ratio ' + ratio['workers']:>7}: acked/s x{cell(ratio['acked_per_s'], '.2f')}, "
            f"server CPU x{cell(ratio['server_cpu_of_one_core'], '.2f')}, "
            f"µs/msg x{cell(ratio['us_per_acked_message'], '.2f')}, "
            f"µs/delivery x{cell(ratio['us_per_delivery'], '.2f')}, "
            f"delivery p99 x{cell(ratio['delivery_p99_ms'], '.2f')}"
        )
    lines.append(
        "server = the seda parent and all its workers (Postgres and nats-server apart); "
        "pg/nats/server in cores; others = other processes on the machine, in cores"
    )
    return "\n".join(lines)
