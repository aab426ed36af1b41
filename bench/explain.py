"""Explanations against predictions: does a client asking for explanations slow the others?

One steady client predicts single listings, first alone, then while 4 clients loop
`?explain=true` batches at the cap (25 listings), against 2 gateway processes behind the front
(as `make run` serves on 2 cores): with admission control as configured by default (explain
slots: cores - 1) and without it (a slot per process), side by side in one run.

`python -m bench.explain [--seconds S] [--runs N]` prints the table and the goal.
"""

import logging
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from bench import measure, report, targets
from bench.standalone import run_standalone
from bench.wrk import LoadResult, run_load
from shared.contracts import CHALLENGE_EXAMPLE

EXPLAINING_CLIENTS = 4
WORKERS = 2
# The gateways compared: label -> (name, settings beyond the stack's).
DEFAULT = "admission control (default slots)"
STACKS = {
    DEFAULT: ("explain-slots", {}),
    "no admission control (a slot per process)": (
        "explain-noslots",
        {"PRICE_CATEGORY_WORK_SLOTS": str(WORKERS)},
    ),
}


@dataclass
class Pressure:
    calm: LoadResult  # the steady client alone
    pressed: LoadResult  # the steady client while the others explain
    explaining: LoadResult  # the explaining clients (non-2xx: refused with 429)


def _pressed(
    url: str, explain_url: str, batch: list[dict], seconds: int
) -> tuple[LoadResult, LoadResult]:
    """The steady client's load while EXPLAINING_CLIENTS loop explanations (started first,
    ending after it)."""
    explained: list[LoadResult] = []
    explainers = threading.Thread(
        target=lambda: explained.append(
            run_load(explain_url, batch, EXPLAINING_CLIENTS, seconds + 2)
        )
    )
    explainers.start()
    threading.Event().wait(1)  # the explainers are at work before the steady client starts
    steady = run_load(url, CHALLENGE_EXAMPLE, 1, seconds)
    explainers.join()
    return steady, explained[0]


def measure_pressure(folder: Path, seconds: int, runs: int, cap: int = 25) -> dict:
    """Each stack's Pressure, the medians of `runs` runs taken in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    bench = targets.Bench(folder)
    batch = measure.request_listings(cap)
    try:
        targets.start_backing_services(bench)
        targets.train_champion(bench)
        for name, settings in STACKS.values():
            targets.start_gateway(bench, name, WORKERS, settings)
            targets.start_front(bench, f"{name}+front", behind=name)
        samples: dict[str, list[Pressure]] = {label: [] for label in STACKS}
        for _ in range(runs):
            for label in STACKS:
                url = bench.urls[f"{STACKS[label][0]}+front"]
                calm = run_load(url, CHALLENGE_EXAMPLE, 1, seconds)
                pressed, explaining = _pressed(url, f"{url}?explain=true", batch, seconds)
                samples[label].append(Pressure(calm, pressed, explaining))
                logging.info("%s: %s", label, samples[label][-1])
    finally:
        bench.close()
    return {label: _median(found) for label, found in samples.items()}


def _median(found: list[Pressure]) -> Pressure:
    return Pressure(
        measure.median_of([p.calm for p in found]),
        measure.median_of([p.pressed for p in found]),
        measure.median_of([p.explaining for p in found]),
    )


def lines(results: dict[str, Pressure]) -> list[str]:
    rows = [
        {
            "gateway (2 processes, behind the front)": label,
            "steady p50 / p99 ms, alone": f"{p.calm.p50_ms:.2f} / {p.calm.p99_ms:.2f}",
            "steady p50 / p99 ms, 4 explaining": f"{p.pressed.p50_ms:.2f} / {p.pressed.p99_ms:.2f}",
            "p99 ratio": f"{p.pressed.p99_ms / p.calm.p99_ms:.1f}x",
            "steady requests/s alone, explaining": (
                f"{p.calm.requests_per_second:,.0f}, {p.pressed.requests_per_second:,.0f}"
            ),
            "explain requests/s (429s)": (
                f"{p.explaining.requests_per_second:,.1f} ({p.explaining.errors})"
            ),
        }
        for label, p in results.items()
    ]
    return report.as_lines(rows)


def goal(results: dict[str, Pressure]) -> tuple[str, str, bool]:
    chosen = results[DEFAULT]
    ratio = chosen.pressed.p99_ms / chosen.calm.p99_ms
    return (
        "4 clients looping explanations at the cap: a steady client's p99 <= 3x its calm p99",
        f"{chosen.pressed.p99_ms:.2f} / {chosen.calm.p99_ms:.2f} ms = {ratio:.1f}x",
        ratio <= 3,
    )


def main(argv: list[str] | None = None) -> int:
    return run_standalone(
        __doc__ or "",
        measure_pressure,
        lambda results: [*lines(results), "", *report.goal_lines([goal(results)])],
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
