"""One realised price joined against a month of stored predictions: time and memory.

`python -m bench.join` stores 300,000 and 1,000,000 predictions (a month at 10,000 and 33,000
listings a day, in the monitor's own files) and joins one price by prediction id and one by
listing id, each in a fresh process, reporting the seconds and the process's peak memory
above what it held once its modules were loaded. Before the join read only what can match,
one price took 32 s and 1.21 GB against 300,000, 116 s and 3.3 GB against 1,000,000.
"""

import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.contracts import CHALLENGE_EXAMPLE
from shared.prediction_ids import listing_prediction_id, new_request_prediction_id
from shared.prediction_store import PROBABILITY_COLUMNS, Batch, write_batch
from shared.settings import PROJECT_DIR

FILE_ROWS = 20_000  # what a drain writes at most in one file


def store(folder: Path, rows: int, days: int = 30) -> tuple[str, str]:
    """rows predictions spread over the last `days` days; a prediction id and a listing id
    stored among them (to join a price to)."""
    now = datetime.now(UTC)
    per_day = rows // days
    written = 0
    picked = ("", "")
    for day in range(days):
        at = (now - timedelta(days=days - day)).timestamp()
        for start in range(0, per_day, FILE_ROWS):
            count = min(FILE_ROWS, per_day - start)
            request = new_request_prediction_id(at)
            batch = [
                {
                    **CHALLENGE_EXAMPLE,
                    "id": f"L{written + n}",
                    "entry_id": f"{int(at * 1000)}-{start}",
                    "prediction_id": listing_prediction_id(request, n),
                    "request_id": "bench",
                    "time": datetime.fromtimestamp(at, UTC),
                    "model_version": "1",
                    "latency_ms": 1.0,
                    "price_category": "Mid",
                    **{column: 0.25 for column in PROBABILITY_COLUMNS},
                }
                for n in range(count)
            ]
            write_batch(folder, Batch(f"{int(at * 1000)}-{start}", batch))
            written += count
            if day == days // 2 and start == 0:
                picked = (batch[7]["prediction_id"], batch[7]["id"])
    return picked


def _join_once(folder: str, prediction_id: str, listing_id: str) -> None:
    """Run in a fresh process: print the seconds and the peak memory above the baseline."""
    from shared.feedback import join

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    item = {
        "feedback_id": "f",
        "feedback_time": datetime.now(UTC),
        "entry_id": "1-0",
        "price": 150.0,
        "actual_category": "Mid",
    }
    started = time.perf_counter()
    joined = join(
        [
            {**item, "given_prediction_id": prediction_id, "given_id": None},
            {**item, "given_prediction_id": None, "given_id": listing_id},
        ],
        Path(folder),
    )
    seconds = time.perf_counter() - started
    assert [row["problem"] for row in joined] == [None, None], joined
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mib": (peak - baseline) / 1024}))  # noqa: T201


def measure(rows: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="join-") as folder:
        prediction_id, listing_id = store(Path(folder), rows)
        done = subprocess.run(
            [sys.executable, "-m", "bench.join", "--once", folder, prediction_id, listing_id],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            check=True,
        )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def lines(results: dict[int, dict[str, float]]) -> list[str]:
    return [
        "| stored predictions | one price by prediction id and one by listing id | peak memory"
        " above the modules |",
        "|---|---|---|",
        *(
            f"| {rows:,} | {found['seconds']:.2f} s | {found['peak_mib']:.0f} MiB |"
            for rows, found in results.items()
        ),
    ]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--once"]:
        _join_once(*argv[1:4])
        return 0
    results = {rows: measure(rows) for rows in (300_000, 1_000_000)}
    print("\n".join(lines(results)))  # noqa: T201 - a benchmark prints its numbers
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
