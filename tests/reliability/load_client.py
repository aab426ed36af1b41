"""A load-generating process: `python -m tests.reliability.load_client URL SECONDS CONNECTIONS`.

Each connection posts the challenge example in a loop; prints one JSON line with the count of
answers per status (or error kind) and the latency percentiles in milliseconds.
"""

import json
import sys
import threading
import time
from collections import Counter

import numpy as np
import requests

from shared.contracts import CHALLENGE_EXAMPLE


def _connection(url: str, until: float, statuses: Counter, latencies: list[float]) -> None:
    with requests.Session() as session:
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                status: int | str = session.post(
                    url, json=CHALLENGE_EXAMPLE, timeout=10
                ).status_code
            except requests.RequestException as error:
                status = type(error).__name__
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[status] += 1


def main(url: str, seconds: float, connections: int) -> None:
    until = time.monotonic() + seconds
    statuses: Counter = Counter()
    latencies: list[float] = []
    threads = [
        threading.Thread(target=_connection, args=(url, until, statuses, latencies))
        for _ in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    p50, p99 = np.percentile(latencies, [50, 99]) if latencies else (0.0, 0.0)
    print(json.dumps({"statuses": statuses, "p50_ms": p50, "p99_ms": p99}))  # noqa: T201


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]))
