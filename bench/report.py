"""bench/results.md and bench/results.png from one run's figures."""

import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from bench.wrk import LoadResult  # noqa: E402
from shared.provenance import git_commit  # noqa: E402

FOLDER = Path(__file__).parent


def load_table(loads: dict[tuple[str, int], LoadResult]) -> list[str]:
    lines = [
        "| stack | clients | p50 ms | p99 ms | requests/s | errors |",
        "|---|---|---|---|---|---|",
    ]
    for (target, clients), r in loads.items():
        lines.append(
            f"| {target} | {clients} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.requests_per_second:.0f} | {r.errors} |"
        )
    return lines


def goal_lines(goals: list[tuple[str, str, bool]]) -> list[str]:
    lines = ["| goal | measured | met |", "|---|---|---|"]
    lines += [
        f"| {goal} | {measured} | {'yes' if met else 'NO'} |" for goal, measured, met in goals
    ]
    return lines


def plot(loads: dict[tuple[str, int], LoadResult], path: Path) -> None:
    figure = Figure(figsize=(10, 4))
    latency, throughput = figure.subplots(1, 2)
    targets = sorted({t for t, _ in loads})
    for target in targets:
        points = sorted((c, r) for (t, c), r in loads.items() if t == target)
        clients = [c for c, _ in points]
        latency.plot(clients, [r.p50_ms for _, r in points], marker="o", label=target)
        throughput.plot(
            clients, [r.requests_per_second for _, r in points], marker="o", label=target
        )
    latency.set(xlabel="concurrent clients", ylabel="p50 latency (ms)", yscale="log")
    throughput.set(xlabel="concurrent clients", ylabel="requests per second", yscale="log")
    latency.legend(fontsize=8)
    figure.suptitle("Single-listing prediction over HTTP, same champion model")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def write_results(
    sections: dict[str, list[str]], loads: dict[tuple[str, int], LoadResult], mode: str
) -> Path:
    """Write the Markdown report and its plot; returns the report's path."""
    plot(loads, FOLDER / "results.png")
    header = [
        "# Benchmarks",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit `{git_commit()[:12]}`, "
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, mode `{mode}`. "
        "Produced by `make bench`; every server started on loopback by the run and stopped after.",
        "",
        "![latency and throughput](results.png)",
        "",
    ]
    body: list[str] = []
    for title, lines in sections.items():
        body += [f"## {title}", "", *lines, ""]
    path = FOLDER / "results.md"
    path.write_text("\n".join(header + body))
    return path


def as_lines(rows: list[dict[str, Any]]) -> list[str]:
    """A list of dicts as a Markdown table."""
    headings = list(rows[0])
    lines = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    lines += ["| " + " | ".join(str(row[h]) for h in headings) + " |" for row in rows]
    return lines
