"""Draining the prediction log on a real redis-server, through faults: a drainer killed while
writing or before acknowledging (a batch across midnight included), entries no store can
write, entries the gateway never wrote, two drains at once, a stream at its cap. Whatever
happens, every logged listing is in the store once, and the stream keeps only what is not
drained."""

import itertools
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from services.gateway.prediction_log import Answered
from services.stack import processes
from services.workers import drain as drain_module
from services.workers.drain import GROUP, drain, prediction_sink
from shared.capped_stream import CappedStream, Item, count_key, written_until
from shared.monitor_state import dead_letter_stream, stream_status
from shared.prediction_ids import new_request_prediction_id
from shared.prediction_store import day_folders, read_predictions
from shared.queues import connect
from shared.settings import PROJECT_DIR

LOCK_SECONDS = 2  # what the killed drainer's lock is given: the next drain waits that long
CAP = 1_000_000  # listings: no test here reaches it but the one about the cap
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


def _answered(at: float, ids: list[str]) -> Answered:
    listings = [{"id": i, "accommodates": 2, "neighbourhood": "Bronx"} for i in ids]
    answers = [
        {"price_category": "Low", "probabilities": {"Low": 1.0, "Mid": 0, "High": 0, "Lux": 0}}
        for _ in ids
    ]
    return Answered(
        new_request_prediction_id(at), "same-x-request-id", at, "3", listings, answers, 0.5
    )


def _log(redis, stream: str, requests: int, per_request: int, at: float | None = None) -> set[str]:
    """Log requests as the gateway does (through the capped stream); the listing ids logged."""
    capped, logged = CappedStream(redis, stream, CAP), set()
    for r in (secrets.token_hex(8) for _ in range(requests)):
        ids = [f"{r}-{i}" for i in range(per_request)]
        answered = _answered(at or time.time(), ids)
        assert capped.append(secrets.token_hex(8), [answered.entry()]) == per_request
        logged |= set(ids)
    return logged


def _stored(folder) -> Counter:
    return Counter(read_predictions(folder)["id"].to_pylist())


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


def _drain(redis, stream, folder, **given):
    return drain(
        redis,
        stream,
        prediction_sink(folder),
        retention_days=3650,  # the midnight test's days are in the past
        lock_seconds=60,
        budget_seconds=60,
        **given,
    )


def _assert_drained_away(redis, stream: str) -> None:
    """Nothing pending, nothing left in the stream, its counter back at zero."""
    assert redis.xpending(stream, GROUP)["pending"] == 0
    assert redis.xlen(stream) == 0
    assert int(redis.get(count_key(stream)) or 0) == 0


@pytest.mark.parametrize("point", ["mid-write", "after-write"])
def test_a_drainer_killed_mid_batch_loses_nothing_and_doubles_nothing(
    redis_url, stream, tmp_path, point
):
    redis = connect(redis_url)
    logged = _log(redis, stream, requests=30, per_request=10)
    _drain_until_killed(redis_url, stream, tmp_path, point)
    pending = redis.xpending(stream, GROUP)["pending"]
    assert 0 < pending < 30  # its first batch: read, never acknowledged
    assert redis.xlen(stream) == 30  # nothing pending or unread is deleted

    time.sleep(LOCK_SECONDS)  # the dead drainer's lock expires
    drained = _drain(redis, stream, tmp_path)
    assert drained.entries == 30 and not drained.busy
    assert _stored(tmp_path) == Counter(logged)  # each once
    _assert_drained_away(redis, stream)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no partial file


def test_a_batch_across_midnight_redone_after_a_crash_is_written_exactly_once(
    redis_url, stream, tmp_path, monkeypatch
):
    """The killed drainer wrote both days' files of its batch; the next drain, batching
    differently (here: smaller batches), must redo that batch exactly, not rebuild it."""
    redis = connect(redis_url)
    midnight = datetime(2026, 11, 30, tzinfo=UTC).timestamp()
    logged = _log(redis, stream, requests=3, per_request=5, at=midnight - 1)
    logged |= _log(redis, stream, requests=3, per_request=5, at=midnight + 1)
    logged |= _log(redis, stream, requests=10, per_request=5, at=midnight + 2)
    _drain_until_killed(redis_url, stream, tmp_path, "after-write")  # batches of ~50 listings
    assert len(day_folders(tmp_path)) == 2  # its batch spans both days

    time.sleep(LOCK_SECONDS)
    monkeypatch.setattr(drain_module, "BATCH_LISTINGS", 5)  # one request a batch now
    monkeypatch.setattr(drain_module, "READ_COUNT", 1)
    _drain(redis, stream, tmp_path)
    assert _stored(tmp_path) == Counter(logged)  # 80 listings, each once
    _assert_drained_away(redis, stream)


def test_entries_no_store_can_write_are_set_aside_and_the_drain_goes_on(
    redis_url, stream, tmp_path
):
    """A lone surrogate in a listing (valid JSON: the contract refuses it now, an older
    gateway did not) failed every drain, for everyone; an entry the gateway never wrote too."""
    redis = connect(redis_url)
    logged = _log(redis, stream, requests=2, per_request=3)
    poisoned = _answered(time.time(), ["\ud800"]).entry().fields  # escaped: valid JSON
    redis.xadd(stream, dict(poisoned))
    redis.xadd(stream, {"hello": "world"})
    logged |= _log(redis, stream, requests=1, per_request=2)

    drained = _drain(redis, stream, tmp_path)
    assert (drained.entries, drained.dead_lettered, drained.rows) == (5, 2, len(logged))
    assert _stored(tmp_path) == Counter(logged)
    set_aside = redis.xrange(dead_letter_stream(stream))
    assert len(set_aside) == 2
    problems = [fields[b"problem"].decode() for _, fields in set_aside]
    assert "surrogate" in problems[0] and "KeyError" in problems[1]
    assert set_aside[1][1][b"field:hello"] == b"world"  # what was sent, kept for a look
    assert stream_status(redis, stream, CAP)["dead_lettered"] == 2
    _assert_drained_away(redis, stream)

    more = _log(redis, stream, requests=1, per_request=1)  # later drains are not stuck
    assert _drain(redis, stream, tmp_path).rows == 1
    assert _stored(tmp_path) == Counter(logged | more)


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


def test_entries_after_until_wait_for_a_later_drain_and_are_written_once(
    redis_url, stream, tmp_path
):
    redis = connect(redis_url)
    before = time.time()
    time.sleep(0.01)
    logged = _log(redis, stream, requests=5, per_request=2)
    early = _drain(redis, stream, tmp_path, until=before)
    assert (early.entries, early.rows) == (0, 0)
    assert early.drained_until == pytest.approx(before)
    assert _stored(tmp_path) == Counter()
    later = _drain(redis, stream, tmp_path)
    assert later.entries == 5 and later.drained_until > before
    assert _stored(tmp_path) == Counter(logged)
    _assert_drained_away(redis, stream)


def test_the_stream_holds_at_most_its_cap_in_listings_until_drained(redis_url, stream, tmp_path):
    redis = connect(redis_url)
    capped = CappedStream(redis, stream, cap=1_000)
    batch = _answered(time.time(), [f"b{i}" for i in range(400)]).entry()
    single = _answered(time.time(), ["s"]).entry()

    assert capped.append("a1", [batch, batch]) == 800
    assert capped.append("a1", [batch, batch]) == 800  # the same append again: not twice
    assert capped.append("a2", [batch, single]) == 0  # 1,200 > 1,000: refused in order
    assert capped.append("a3", [single] * 3) == 3
    assert (capped.held(), redis.xlen(stream)) == (803, 5)

    drained = _drain(redis, stream, tmp_path)
    assert drained.rows == 803
    _assert_drained_away(redis, stream)
    assert capped.append("a4", [batch, batch]) == 800  # room again

    redis.delete(stream)  # deleted by hand: the counter must not keep refusing
    _drain(redis, stream, tmp_path)
    assert capped.held() == 0


def test_an_entry_reaches_the_stream_byte_for_byte_whatever_its_fields_hold(redis_url, stream):
    """The append script unpacks each entry's fields from netstrings: lengths, colons and
    digits inside a value, empty values, bytes that are not UTF-8 and a megabyte survive it."""
    redis = connect(redis_url)
    fields = {
        "plain": "x",
        "colons": "12:34:5:",
        "empty": "",
        "unicode": "日本 \u00e9\U0001f3e0",
        "binary": b"\x00\xff\r\n3:",
        "big": "7" * 1_000_000,
        "": "a nameless field",
    }
    assert CappedStream(redis, stream, CAP).append("a1", [Item(2, fields), Item(1, {})]) == 3
    [(_, first), (_, second)] = redis.xrange(stream)
    expected = {b"items": b"2"} | {
        name.encode(): value if isinstance(value, bytes) else value.encode()
        for name, value in fields.items()
    }
    assert first == expected
    assert second == {b"items": b"1"}


def test_the_log_is_written_up_to_the_oldest_mark_of_the_writers_still_heard_from(
    redis_url, stream
):
    redis = connect(redis_url)
    capped, now = CappedStream(redis, stream, CAP), time.time()
    assert written_until(redis, stream, now, silent_seconds=60) is None  # nobody wrote yet
    capped.mark_written("host-a:1", now - 5)  # behind: its buffer holds older answers
    capped.mark_written("host-b:2", now - 1)
    capped.mark_written("host-c:3", now - 600)  # a process that ended ten minutes ago
    assert written_until(redis, stream, now, silent_seconds=60) == pytest.approx(now - 5)
    assert set(redis.hkeys(f"{stream}:written-until")) == {b"host-a:1", b"host-b:2"}
