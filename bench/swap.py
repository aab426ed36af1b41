"""A live swap: from the promotion message until every process of a gateway serves the new
version (each logs "serving champion version N" the moment it swaps).

The version promoted is the same logged model registered again, so what is timed is the
gateway's own part of a swap: woken by the message, it looks up the alias, downloads the
model from MLflow, loads it (skops, trusted types), proves it on the challenge's example,
reads its record, and swaps the reference requests read.
"""

import statistics
import time
from pathlib import Path

from shared.queues import connect, publish_promotion
from shared.registry import Registry
from shared.settings import Settings

TIMEOUT = 60.0  # seconds; a gateway that never swaps fails the benchmark


def serving_lines(log: Path, version: str = "") -> int:
    """How many times a gateway's processes logged serving version (any version if not
    given); each process logs it once per version."""
    line = f"serving champion version {version} " if version else "serving champion version "
    return log.read_text(errors="replace").count(line) if log.exists() else 0


def time_swap(settings: Settings, model_uri: str, logs: dict[str, tuple[Path, int]]) -> dict:
    """Register model_uri as a new version, promote it, publish the message; seconds until
    each gateway (its log, its process count) has every process serving it."""
    registry = Registry(settings)
    version = str(registry.register(model_uri, {"bench": "swap"}).version)
    registry.promote(version)
    published = time.time()
    publish_promotion(connect(settings.redis_url), settings, version)
    seconds: dict[str, float] = {}
    while len(seconds) < len(logs):
        for name, (log, processes) in logs.items():
            if name not in seconds and serving_lines(log, version) >= processes:
                seconds[name] = time.time() - published
        if time.time() - published > TIMEOUT:
            missing = sorted(set(logs) - set(seconds))
            raise TimeoutError(f"{missing} did not serve version {version} in {TIMEOUT:.0f} s")
        time.sleep(0.005)
    return seconds


def measure_swaps(
    settings: Settings, model_uri: str, logs: dict[str, tuple[Path, int]], runs: int
) -> dict[str, float]:
    """The median over runs of time_swap, per gateway."""
    measured = [time_swap(settings, model_uri, logs) for _ in range(runs)]
    return {name: statistics.median(run[name] for run in measured) for name in logs}
