"""The prediction log's buffer and encoding, against a stand-in for Redis' pipeline (the real
stream is tested in tests/integration/test_prediction_log.py)."""

import json
import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from services.gateway import prediction_log
from services.gateway.prediction_log import Answered, PredictionLog


class _Pipeline:
    def __init__(self, redis: "_Redis") -> None:
        self.redis, self.queued = redis, []

    def xadd(self, stream, entry, maxlen, approximate):
        self.queued.append((stream, entry, maxlen, approximate))

    def execute(self):
        if self.redis.down:
            raise RedisConnectionError("Connection refused")
        self.redis.writes.append(self.queued)


class _Redis:
    def __init__(self, down: bool = False) -> None:
        self.down, self.writes = down, []

    def pipeline(self, transaction=True):
        assert transaction is False  # entries need no MULTI/EXEC
        return _Pipeline(self)


def _answered(ids: list[int], request_id: str = "req-1") -> Answered:
    listings = [{"id": i, "accommodates": 2, "room_type": "Private room"} for i in ids]
    answers = [
        {
            "id": i,
            "price_category": "Mid",
            "probabilities": {"Low": 0.1, "Mid": 0.7, "High": 0.15, "Lux": 0.05},
            "model_version": "3",
        }
        for i in ids
    ]
    return Answered(request_id, 1_700_000_000.25, "3", listings, answers, 1.5)


def _log(redis: _Redis, capacity: int = 100) -> tuple[PredictionLog, list[int]]:
    dropped: list[int] = []
    log = PredictionLog(redis, "predictions", 500, capacity, on_dropped=dropped.append)
    log._thread = object()  # flushed by the test: no writer thread
    return log, dropped


def test_each_request_becomes_one_entry_with_its_listings_and_answers_in_order():
    redis = _Redis()
    log, dropped = _log(redis)

    log.record(_answered([1, 2**70]))  # an id wider than 64 bits still encodes
    assert log.flush() == 2

    (write,) = redis.writes
    ((stream, entry, cap, approximate),) = write
    assert (stream, cap, approximate) == ("predictions", 500, True)
    assert entry["request_id"] == "req-1" and entry["model_version"] == "3"
    assert entry["latency_ms"] == "1.500" and float(entry["time"]) == 1_700_000_000.25
    listings, answers = json.loads(entry["listings"]), json.loads(entry["answers"])
    assert listings[0] == {"id": 1, "accommodates": 2, "room_type": "Private room"}
    assert listings[1]["id"] == 2**70
    assert [a["price_category"] for a in answers] == ["Mid", "Mid"]
    assert answers[0]["probabilities"]["Mid"] == 0.7
    assert dropped == []


def test_a_full_buffer_drops_and_counts_the_request_that_does_not_fit():
    log, dropped = _log(_Redis(), capacity=3)

    log.record(_answered([1, 2], "a"))
    log.record(_answered([3, 4], "b"))  # 4 > 3 buffered: dropped whole
    log.record(_answered([5], "c"))

    assert dropped == [2]
    assert log.flush() == 3


def test_redis_away_drops_and_counts_instead_of_raising():
    redis = _Redis(down=True)
    log, dropped = _log(redis)
    log.record(_answered([1, 2, 3]))

    assert log.flush() == 0
    assert dropped == [3]
    redis.down = False
    log.record(_answered([4]))
    assert log.flush() == 1  # the buffer was emptied, not stuck


def test_a_big_batch_is_written_in_bounded_pipelines_in_order(monkeypatch):
    monkeypatch.setattr(prediction_log, "WRITE_BATCH", 4)
    redis = _Redis()
    log, _ = _log(redis)
    log.record(_answered(list(range(10)), "big"))
    log.record(_answered([10, 11], "small"))

    assert log.flush() == 12
    ids = [
        [[listing["id"] for listing in json.loads(e["listings"])] for _, e, _, _ in write]
        for write in redis.writes
    ]
    # A request is never split; the next one waits for another pipeline when it would overflow.
    assert ids == [[list(range(10))], [[10, 11]]]


@pytest.mark.parametrize("listings", [1, 25])
def test_recording_starts_one_writer_that_empties_the_buffer(listings):
    redis = _Redis()
    log = PredictionLog(redis, "predictions", 500, 100)
    for n in range(3):
        log.record(_answered(list(range(listings)), f"r{n}"))
    for _ in range(200):  # the writer thread: up to 2 s
        if sum(len(w) for w in redis.writes) == 3:
            break
        time.sleep(0.01)
    logged = [json.loads(e["listings"]) for w in redis.writes for _, e, _, _ in w]
    assert [len(listings_) for listings_ in logged] == [listings] * 3
