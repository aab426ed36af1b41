"""The measurements: HTTP load per stack, batches, resident memory (bench.layers: in-process)."""

import json
import statistics
import time
from pathlib import Path
from typing import Any

import requests

from bench.wrk import LoadResult, run_load
from services.stack.processes import children
from shared.cleaning import clean_listings
from shared.contracts import CHALLENGE_EXAMPLE
from shared.settings import PROJECT_DIR
from shared.storage import read_raw_listings


def body_for(target: str, listings: list[dict[str, Any]] | dict[str, Any]) -> object:
    """The request as each stack expects it (MLflow's own format for its server)."""
    if target == "mlflow-serve":
        rows = listings if isinstance(listings, list) else [listings]
        return {"dataframe_records": rows}
    return listings


def fixed_work_tail(milliseconds: float, seconds: float) -> tuple[float, float]:
    """p50 and p99 of one fixed piece of pure-Python work (about `milliseconds` long) repeated
    for `seconds` in this process: the tail this machine's scheduling and clocks give work
    that never varies, the floor under any server's p99 / p50 here."""
    loops = 1_000

    def work(n: int) -> int:
        total = 0
        for i in range(n):
            total += i * i
        return total

    started = time.perf_counter()
    work(loops)
    loops = max(1, int(loops * milliseconds / 1e3 / (time.perf_counter() - started)))
    timings = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        work(loops)
        timings.append((time.perf_counter() - started) * 1e3)
    cuts = statistics.quantiles(timings, n=100)
    return cuts[49], cuts[98]


def median_load(url: str, body: object, connections: int, seconds: int, runs: int) -> LoadResult:
    """Median of each figure over several wrk runs (errors summed)."""
    return median_of([run_load(url, body, connections, seconds) for _ in range(runs)])


def interleaved_loads(
    urls: dict[str, str], body: object, connections: int, seconds: int, runs: int
) -> dict[str, LoadResult]:
    """Several stacks loaded in turn, run after run (A B A B ...), each one's median: a drift
    of the machine over the minutes of the runs falls on all of them alike, so their ratio
    is what the stacks differ by, not when each was measured."""
    results: dict[str, list[LoadResult]] = {name: [] for name in urls}
    for _ in range(runs):
        for name, url in urls.items():
            results[name].append(run_load(url, body, connections, seconds))
    return {name: median_of(loads) for name, loads in results.items()}


def median_of(results: list[LoadResult]) -> LoadResult:
    """Each figure's median over several loads (errors summed)."""
    return LoadResult(
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        statistics.median(r.requests_per_second for r in results),
        sum(r.errors for r in results),
    )


def request_listings(count: int) -> list[dict[str, Any]]:
    """Shipped listings as requests: the twelve contract fields, ids unique."""
    clean, _ = clean_listings(read_raw_listings(PROJECT_DIR / "data/raw/listings.csv.gz"))
    fields = list(CHALLENGE_EXAMPLE)
    rows = clean.sample(n=count, replace=count > len(clean), random_state=0)[fields]
    listings = rows.to_dict(orient="records")
    for i, listing in enumerate(listings):
        listing.update(id=i, bedrooms=int(listing["bedrooms"]), beds=int(listing["beds"]))
    return listings


def batch_rate(url: str, body: object, rows: int, repeats: int) -> float:
    """Listings per second for one big request, median of repeats: from sending the encoded
    body to the whole answer received (the client's own JSON encoding is not the server's)."""
    timings = []
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    with requests.Session() as session:
        for _ in range(repeats):
            started = time.perf_counter()
            session.post(url, data=data, headers=headers, timeout=300).raise_for_status()
            timings.append(time.perf_counter() - started)
    return rows / statistics.median(timings)


def resident_mib(pid: int) -> float:
    """Memory of a process and its children (a gunicorn master and its workers, an RQ worker
    and its work-horse), as proportional set size: pages shared after a fork are split among
    the processes sharing them, so the sum is what the group really occupies."""
    total = 0.0
    for process in [pid, *children(pid)]:
        try:
            rollup = Path(f"/proc/{process}/smaps_rollup").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended between listing and reading
        total += sum(
            int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")
        )
    return total / 1024
