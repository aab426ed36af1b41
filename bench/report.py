"""bench/results.md and bench/results.png from one run's figures."""

import os
import platform
from dataclasses import dataclass
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


@dataclass
class PlotData:
    """What the results figure shows, as plain numbers."""

    loads: dict[tuple[str, int], LoadResult]
    retrain_seconds: dict[str, float]  # total per way of retraining
    scale_seconds: dict[str, list[tuple[int, float]]]  # step -> (data factor, seconds)


def plot(data: PlotData, path: Path) -> None:
    figure = Figure(figsize=(11, 8))
    (latency, throughput), (retraining, scaling) = figure.subplots(2, 2)
    for target in sorted({t for t, _ in data.loads}):
        points = sorted((c, r) for (t, c), r in data.loads.items() if t == target)
        clients = [c for c, _ in points]
        latency.plot(clients, [r.p50_ms for _, r in points], marker="o", label=target)
        throughput.plot(
            clients, [r.requests_per_second for _, r in points], marker="o", label=target
        )
    latency.set(xlabel="concurrent clients", ylabel="p50 latency (ms)", yscale="log",
                title="Single listing over HTTP")  # fmt: skip
    throughput.set(xlabel="concurrent clients", ylabel="requests per second", yscale="log",
                   title="Same model, same machine")  # fmt: skip
    latency.legend(fontsize=8)
    names = list(data.retrain_seconds)
    retraining.barh(names, [data.retrain_seconds[n] for n in names], color="tab:blue")
    retraining.set(xlabel="seconds, POST /retrain to explained", title="Retrain end to end")
    for step, series in data.scale_seconds.items():
        scaling.plot([f for f, _ in series], [s for _, s in series], marker="o", label=step)
    scaling.set(xlabel="data size (x shipped rows)", ylabel="seconds", xscale="log",
                yscale="log", title="Cost as data grows")  # fmt: skip
    scaling.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def write_results(sections: dict[str, list[str]], data: PlotData, mode: str) -> Path:
    """Write the Markdown report and its plot; returns the report's path."""
    plot(data, FOLDER / "results.png")
    header = [
        "# Benchmarks",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit `{git_commit()[:12]}`, "
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, mode `{mode}`. "
        "Produced by `make bench`; every server started on loopback by the run and stopped after.",
        "",
        "![serving, retraining and scaling](results.png)",
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
