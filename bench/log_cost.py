"""What the prediction log costs an answer: one gateway process with the log on and one with it
off, loaded in turn (1 client, single listings), run after run.

`python -m bench.log_cost [--seconds S] [--runs N]` prints the table and the goals (p99 <= 1.5x
p50 with the log on; the log adds <= 10% to p99), and beside them the same ratio for a fixed
piece of pure-Python work as long as a request, which is this machine's own floor.
"""

import sys
from pathlib import Path

from bench import measure, report, targets
from bench.standalone import run_standalone
from bench.wrk import LoadResult
from shared.contracts import CHALLENGE_EXAMPLE

MACHINE = "fixed work, in-process (the machine's floor)"
# label -> (process name, settings beyond the stack's)
GATEWAYS = {
    "log on": ("log-on", {}),
    "log off": ("log-off", {"PRICE_CATEGORY_PREDICTION_LOG": "false"}),
}


def measure_log_cost(folder: Path, seconds: int, runs: int) -> dict[str, LoadResult]:
    """Each gateway's load (medians of runs), and the fixed work's tail under "machine"."""
    folder.mkdir(parents=True, exist_ok=True)
    bench = targets.Bench(folder)
    try:
        targets.start_backing_services(bench)
        targets.train_champion(bench)
        for name, settings in GATEWAYS.values():
            targets.start_gateway(bench, name, 1, settings)
        urls = {label: bench.urls[name] for label, (name, _) in GATEWAYS.items()}
        loads = measure.interleaved_loads(urls, CHALLENGE_EXAMPLE, 1, seconds, runs)
        p50, p99 = measure.fixed_work_tail(loads["log off"].p50_ms, seconds)
        return loads | {MACHINE: LoadResult(p50, p99, 1e3 / p50, 0)}
    finally:
        bench.close()


def lines(loads: dict[str, LoadResult]) -> list[str]:
    return report.as_lines(
        [
            {
                "1 process, 1 client": label,
                "p50 ms": f"{load.p50_ms:.2f}",
                "p99 ms": f"{load.p99_ms:.2f}",
                "p99 / p50": f"{load.p99_ms / load.p50_ms:.2f}x",
                "requests/s": f"{load.requests_per_second:,.0f}",
            }
            for label, load in loads.items()
        ]
    )


def goals(loads: dict[str, LoadResult]) -> list[tuple[str, str, bool]]:
    on, off = loads["log on"], loads["log off"]
    ratio = on.p99_ms / on.p50_ms
    return [
        (
            "p99 <= 1.5x p50 at one client with the log on",
            f"{on.p99_ms:.2f} / {on.p50_ms:.2f} ms = {ratio:.2f}x",
            ratio <= 1.5,
        ),
        (
            "the log adds <= 10% to p99 (log on / log off)",
            f"{on.p99_ms:.2f} / {off.p99_ms:.2f} ms = {on.p99_ms / off.p99_ms:.2f}x",
            on.p99_ms <= 1.1 * off.p99_ms,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    return run_standalone(
        __doc__ or "",
        measure_log_cost,
        lambda results: [*lines(results), "", *report.goal_lines(goals(results))],
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
