"""The report of a run: one JSON document, and the table printed from it."""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

from bench.coordinator import RunOutcome
from bench.scenarios.base import ScenarioResult
from bench.stats import ABSOLUTE, Summary

SATURATED = 0.9  # a worker busier than this may have been the bottleneck
KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True)
class RunInfo:
    scenario: str
    description: str
    params: dict[str, Any]
    target: dict[str, Any]
    procs: int
    date: str
    commit: str | None


def _server(outcome: RunOutcome, counters: dict[str, int]) -> dict[str, Any] | None:
    samples = outcome.server
    if "start" not in samples or "drained" not in samples:
        return None
    start, end = samples["start"], samples["drained"]
    wall = max((end.at_ns - start.at_ns) / 1e9, 1e-9)
    cpu = end.cpu_s - start.cpu_s
    server: dict[str, Any] = {
        "cpu_s": round(cpu, 3),
        "cpu_of_one_core": round(cpu / wall, 3),
        "rss_mib": {name: round(s.rss / MIB, 1) for name, s in samples.items()},
        "processes": end.processes,
    }
    units = (
        ("delivery", counters.get("deliveries", 0)),
        ("acked_message", counters.get("acked", 0)),
        ("request", counters.get("requests", 0)),
        ("vote", counters.get("votes_acked", 0)),
    )
    for unit, count in units:
        if count:
            server[f"us_per_{unit}"] = round(cpu / count * 1e6, 2)
    if start.nats_cpu_s is not None and end.nats_cpu_s is not None:
        server["nats_cpu_s"] = round(end.nats_cpu_s - start.nats_cpu_s, 3)
        server["nats_cpu_of_one_core"] = round((end.nats_cpu_s - start.nats_cpu_s) / wall, 3)
    sockets = counters.get("sockets", 0)
    if "baseline" in samples and sockets:
        server["rss_kib_per_socket"] = round((end.rss - samples["baseline"].rss) / sockets / KIB, 2)
    if start.db_cpu_s is not None and end.db_cpu_s is not None:
        server["db_cpu_s"] = round(end.db_cpu_s - start.db_cpu_s, 3)
        server["db_cpu_of_one_core"] = round((end.db_cpu_s - start.db_cpu_s) / wall, 3)
    return server


def _machine(outcome: RunOutcome, server: dict[str, Any] | None) -> dict[str, Any] | None:
    """How busy each CPU was, and how much of that was neither the server nor the harness."""
    if outcome.machine is None:
        return None
    start, end = outcome.machine
    wall = max((end.at_ns - start.at_ns) / 1e9, 1e-9)
    busy = [b - a for a, b in zip(start.busy_s, end.busy_s, strict=True)]
    ours = sum(w.cpu_s for w in outcome.workers) + outcome.coordinator_cpu_s
    if server is not None:
        ours += server["cpu_s"] + server.get("db_cpu_s", 0.0) + server.get("nats_cpu_s", 0.0)
    return {
        "cpu_busy": [round(b / wall, 3) for b in busy],
        "others_cores": round(max(sum(busy) - ours, 0.0) / wall, 3) if server is not None else None,
    }


def build_report(info: RunInfo, outcome: RunOutcome, extra: ScenarioResult) -> dict[str, Any]:
    tally = outcome.tally
    counters = dict(tally.counters)
    deliveries = counters.get("deliveries", 0)
    last_delivery = tally.marks.get("last_delivery_ns", 0)
    span_s = (last_delivery - outcome.start_ns) / 1e9 if last_delivery > outcome.start_ns else 0.0
    series: dict[str, array[int] | list[int]] = {
        **{name: values for name, values in tally.samples.items() if not name.startswith(ABSOLUTE)},
        **extra.latency,
    }
    latency = {
        name: summary.to_json()
        for name, values in sorted(series.items())
        if (summary := Summary.of(values)) is not None
    }
    workers = [
        {"cpu_s": round(w.cpu_s, 3), "wall_s": round(w.wall_s, 3), "cpu_of_one_core": round(w.utilisation, 3)}
        for w in outcome.workers
    ]
    busiest = max((w.utilisation for w in outcome.workers), default=0.0)
    server = _server(outcome, counters)
    report: dict[str, Any] = {
        "scenario": info.scenario,
        "description": info.description,
        "params": info.params,
        "date": info.date,
        "commit": info.commit,
        "target": info.target,
        "window_s": round((outcome.end_ns - outcome.start_ns) / 1e9, 3),
        "active_s": round((outcome.sent_ns - outcome.start_ns) / 1e9, 3),
        "elapsed_s": round((outcome.drained_ns - outcome.start_ns) / 1e9, 3),
        "deliveries": deliveries,
        "deliveries_per_s": round(deliveries / span_s, 1) if span_s else 0.0,
        "latency_ms": latency,
        "errors": dict(tally.errors.most_common()),
        "counters": {k: v for k, v in sorted(counters.items()) if " " not in k},
        "server": server,
        "machine": _machine(outcome, server),
        "bench": {
            "procs": len(outcome.workers),
            "workers": workers,
            "busiest_worker_cpu_of_one_core": round(busiest, 3),
            "saturated": busiest >= SATURATED,
            "coordinator_cpu_s": round(outcome.coordinator_cpu_s, 3),
        },
        "results": extra.fields,
        "rows": [list(row) for row in extra.rows],
    }
    return report


def cell(value: Any, spec: str = ",.1f") -> str:
    """A number for a comparison table ('-' when there is none)."""
    if value is None:
        return "-"
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 1000 else f"{value:,.0f}"


def format_table(report: dict[str, Any]) -> str:
    lines: list[str] = []

    def row(label: str, value: str) -> None:
        lines.append(f"{label:<28} {value}")

    commit = f"  commit {report['commit']}" if report.get("commit") else ""
    lines.append(f"seda bench: {report['scenario']}  {report['date']}{commit}")
    row("load", report["description"])
    row("target", report["target"]["summary"])
    row(
        "window",
        f"{report['window_s']:.1f} s at most; load done after {report['active_s']:.1f} s, "
        f"drained after {report['elapsed_s']:.1f} s",
    )
    counters = report["counters"]
    if report["deliveries"] or "acked" in counters:
        row("deliveries", f"{report['deliveries']:,} ({report['deliveries_per_s']:,.0f}/s)")
    if "clients" in counters:
        missed, duplicated = counters.get("missed_seq", 0), counters.get("duplicate_seq", 0)
        undelivered = counters.get("undelivered", 0)
        verdict = "OK" if missed + duplicated + undelivered == 0 else "FAILED"
        row(
            "seq check",
            f"{verdict}: missed {missed:,}, duplicated {duplicated:,}, "
            f"undelivered at the end {undelivered:,}",
        )
    for label, value in report["rows"]:
        row(label, value)
    if report["latency_ms"]:
        row("latency ms", f"{'count':>9} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
        for name, s in report["latency_ms"].items():
            cells = " ".join(f"{_ms(s[key]):>8}" for key in ("p50", "p90", "p99", "max"))
            row(f"  {name}", f"{s['count']:>9,} {cells}")
    errors = report["errors"]
    row("errors", ", ".join(f"{code}: {n:,}" for code, n in errors.items()) if errors else "none")
    server = report["server"]
    if server is None:
        row("server", "not measured (give --server-pid, or --spawn)")
    else:
        per = [
            f"{server[key]:,} µs/{key.removeprefix('us_per_').replace('_', ' ')}"
            for key in server
            if key.startswith("us_per_")
        ]
        processes = server.get("processes", 1)
        row(
            "server CPU",
            f"{server['cpu_s']:.2f} s = {server['cpu_of_one_core']:.0%} of a core"
            + (f" ({processes} processes)" if processes > 1 else "")
            + (f"; {', '.join(per)}" if per else ""),
        )
        if "db_cpu_s" in server:
            row("postgres CPU", f"{server['db_cpu_s']:.2f} s = {server['db_cpu_of_one_core']:.0%} of a core")
        if "nats_cpu_s" in server:
            row("nats CPU", f"{server['nats_cpu_s']:.2f} s = {server['nats_cpu_of_one_core']:.0%} of a core")
        rss = server["rss_mib"]
        phases = ", ".join(f"{name} {mib:,.1f}" for name, mib in rss.items())
        per_socket = (
            f"; {server['rss_kib_per_socket']:.1f} KiB/socket" if "rss_kib_per_socket" in server else ""
        )
        row("server RSS MiB", phases + per_socket)
    machine = report["machine"]
    if machine is not None:
        busy = ", ".join(f"cpu{i} {b:.0%}" for i, b in enumerate(machine["cpu_busy"]))
        others = machine["others_cores"]
        row(
            "machine",
            f"busy {busy}" + (f"; other processes {others:.2f} cores" if others is not None else ""),
        )
    bench = report["bench"]
    cores = ", ".join(f"{w['cpu_of_one_core']:.0%}" for w in bench["workers"])
    verdict = "SATURATED: the harness may be the bottleneck" if bench["saturated"] else "not saturated"
    row("bench CPU", f"{bench['procs']} worker(s) at {cores} of a core ({verdict})")
    return "\n".join(lines)
