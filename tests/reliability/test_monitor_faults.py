"""Draining the prediction log on a real redis-server, through faults: a drainer killed while
writing or before acknowledging, entries trimmed while pending, entries the gateway never
wrote, two drains at once. Whatever happens, every logged listing is in the store once."""

import itertools
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from services.gateway.prediction_log import Answered
from services.stack import processes
from services.workers.drain import (
    GROUP,
    KEEP_DRAINED_SECONDS,
    drain,
    prediction_sink,
    trim_drained,
)
from shared.prediction_store import read_predictions
from shared.queues import connect
from shared.settings import PROJECT_DIR

LOCK_SECONDS = 2  # what the killed drainer's lock is given: the next drain waits that long
_streams = itertools.count()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    password = secrets.token_urlsafe(12)
    process, port = processes.start_redis(tmp_path_factory.mktemp("redis"), password)
    yield processes.redis_url(port, password)
    processes.stop(process)


@pytest.fixture
def stream(redis_url):
    return f"test:predictions:{next(_streams)}"


def _log(redis, stream: str, requests: int, per_request: int) -> set[tuple[str, str]]:
    """Log requests as the gateway does; the (request id, listing id) pairs logged."""
    logged = set()
    for r in (secrets.token_hex(8) for _ in range(requests)):
        ids = [f"{r}-{i}" for i in range(per_request)]
        listings = [{"id": i, "accommodates": 2, "neighbourhood": "Bronx"} for i in ids]
        answers = [
            {"price_category": "Low", "probabilities": {"Low": 1.0, "Mid": 0, "High": 0, "Lux": 0}}
            for _ in ids
        ]
        redis.xadd(stream, Answered(f"req-{r}", time.time(), "3", listings, answers, 0.5).entry())
        logged |= {(f"req-{r}", i) for i in ids}
    return logged


def _stored(folder) -> Counter:
    table = read_predictions(folder)
    return Counter(zip(table["request_id"].to_pylist(), table["id"].to_pylist(), strict=True))


def _drain_until_killed(redis_url: str, stream: str, folder, point: str) -> None:
    died = subprocess.run(
        [sys.executable, "-m", "tests.reliability.drain_until_killed"]
        + [redis_url, stream, str(folder), point],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert died.returncode == -9, died.stderr


def _drain(redis, stream, folder):
    return drain(
        redis,
        stream,
        prediction_sink(folder),
        retention_days=30,
        lock_seconds=60,
        budget_seconds=60,
    )


@pytest.mark.parametrize("point", ["mid-write", "after-write"])
def test_a_drainer_killed_mid_batch_loses_nothing_and_doubles_nothing(
    redis_url, stream, tmp_path, point
):
    redis = connect(redis_url)
    logged = _log(redis, stream, requests=30, per_request=10)
    _drain_until_killed(redis_url, stream, tmp_path, point)
    pending = redis.xpending(stream, GROUP)["pending"]
    assert 0 < pending < 30  # its first batch: read, never acknowledged
    trim_drained(redis, stream, now=time.time() + 2 * KEEP_DRAINED_SECONDS)
    assert redis.xlen(stream) == 30  # nothing pending or unread is trimmed, however old

    time.sleep(LOCK_SECONDS)  # the dead drainer's lock expires
    drained = _drain(redis, stream, tmp_path)
    assert drained.entries == 30 and not drained.busy
    assert _stored(tmp_path) == Counter(logged)  # each once
    assert redis.xpending(stream, GROUP)["pending"] == 0
    assert redis.xlen(stream) == 30  # drained within the hour: kept for whoever tails it
    trim_drained(redis, stream, now=time.time() + 2 * KEEP_DRAINED_SECONDS)
    assert redis.xlen(stream) == 1  # the last one read marks where the next drain starts
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no partial file


def test_pending_entries_trimmed_away_are_acknowledged_and_the_rest_kept(
    redis_url, stream, tmp_path
):
    redis = connect(redis_url)
    logged = _log(redis, stream, requests=30, per_request=10)
    _drain_until_killed(redis_url, stream, tmp_path, "after-write")
    on_disk = _stored(tmp_path)
    redis.xtrim(stream, maxlen=0)  # the stream's cap passed over the pending entries
    time.sleep(LOCK_SECONDS)

    _drain(redis, stream, tmp_path)
    assert _stored(tmp_path) == on_disk  # what was written stays, once
    assert set(on_disk) < logged
    assert redis.xpending(stream, GROUP)["pending"] == 0


def test_entries_the_gateway_never_wrote_are_counted_and_skipped(redis_url, stream, tmp_path):
    redis = connect(redis_url)
    logged = _log(redis, stream, requests=2, per_request=3)
    redis.xadd(stream, {"listings": "[{", "answers": "[]"})
    redis.xadd(stream, {"hello": "world"})
    logged |= _log(redis, stream, requests=1, per_request=2)

    drained = _drain(redis, stream, tmp_path)
    assert (drained.entries, drained.unreadable, drained.rows) == (5, 2, len(logged))
    assert _stored(tmp_path) == Counter(logged)
    assert redis.xpending(stream, GROUP)["pending"] == 0


def test_two_drains_at_once_write_each_listing_once(redis_url, stream, tmp_path):
    redis = connect(redis_url)
    logged = _log(redis, stream, requests=400, per_request=5)
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(_drain(connect(redis_url), stream, tmp_path))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.entries for r in results) == 400
    assert _stored(tmp_path) == Counter(logged)
    _log(redis, stream, requests=1, per_request=1)
    assert _drain(redis, stream, tmp_path).entries == 1  # only what is new since


def test_entries_too_young_to_settle_wait_for_a_later_drain_and_are_written_once(
    redis_url, stream, tmp_path
):
    redis = connect(redis_url)
    logged = _log(redis, stream, requests=5, per_request=2)
    sink = prediction_sink(tmp_path)
    early = drain(redis, stream, sink, 30, lock_seconds=60, budget_seconds=60, settle_seconds=3600)
    assert (early.entries, early.rows) == (0, 0)
    assert _stored(tmp_path) == Counter()
    later = drain(redis, stream, sink, 30, lock_seconds=60, budget_seconds=60, settle_seconds=0)
    assert later.entries == 5
    assert _stored(tmp_path) == Counter(logged)
    assert redis.xpending(stream, GROUP)["pending"] == 0
