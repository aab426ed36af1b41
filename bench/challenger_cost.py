"""What a challenger costs the champion's answers: one gateway process holding a challenger
(scoring the default share of requests after answering them) and one holding none, loaded in
turn (1 client, single listings), run after run. `make bench` measures the same (bench.serving);
this runs it alone.

`python -m bench.challenger_cost [--seconds S] [--runs N]` prints the table and the goals
(p50 within 0.05 ms and p99 within 10% of the gateway without one). The challenger is the
champion's model registered again (not compiled, as a gateway holds a challenger).
"""

import sys
from pathlib import Path

from bench import measure, report, targets
from bench.standalone import run_standalone
from bench.wrk import LoadResult
from shared.contracts import CHALLENGE_EXAMPLE

ALIAS = "bench-challenger"  # only the gateway "with a challenger" follows this alias
GATEWAYS = {
    "with a challenger": ("with-challenger", {"PRICE_CATEGORY_CHALLENGER_ALIAS": ALIAS}),
    "without": ("without-challenger", {}),
}


def measure_challenger_cost(folder: Path, seconds: int, runs: int) -> dict[str, LoadResult]:
    """Each gateway's load (medians of runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    bench = targets.Bench(folder)
    try:
        targets.start_backing_services(bench)
        targets.train_champion(bench)
        version = targets.register_challenger(bench, ALIAS)
        for name, settings in GATEWAYS.values():
            targets.start_gateway(bench, name, 1, settings)
        targets.wait_for_challenger(bench, "with-challenger", version)
        urls = {label: bench.urls[name] for label, (name, _) in GATEWAYS.items()}
        return measure.interleaved_loads(urls, CHALLENGE_EXAMPLE, 1, seconds, runs)
    finally:
        bench.close()


def lines(loads: dict[str, LoadResult]) -> list[str]:
    return report.as_lines(
        [
            {
                "1 process, 1 client": label,
                "p50 ms": f"{load.p50_ms:.3f}",
                "p99 ms": f"{load.p99_ms:.3f}",
                "requests/s": f"{load.requests_per_second:,.0f}",
            }
            for label, load in loads.items()
        ]
    )


def goals(with_one: LoadResult, without: LoadResult) -> list[tuple[str, str, bool]]:
    added = with_one.p50_ms - without.p50_ms
    return [
        (
            "a challenger adds <= 0.05 ms to p50 (1 client, with and without in turn)",
            f"{with_one.p50_ms:.3f} - {without.p50_ms:.3f} = {added:+.3f} ms",
            added <= 0.05,
        ),
        (
            "a challenger adds <= 10% to p99",
            f"{with_one.p99_ms:.2f} / {without.p99_ms:.2f} ms = "
            f"{with_one.p99_ms / without.p99_ms:.2f}x",
            with_one.p99_ms <= 1.1 * without.p99_ms,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    return run_standalone(
        __doc__ or "",
        measure_challenger_cost,
        lambda loads: [
            *lines(loads),
            "",
            *report.goal_lines(goals(loads["with a challenger"], loads["without"])),
        ],
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
