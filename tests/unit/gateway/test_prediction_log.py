"""The prediction log's buffer, retries and encoding, against a stand-in for the capped
stream (the real stream, its cap and its Lua script are tested in
tests/integration/test_prediction_log.py)."""

import json
import os
import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from services.gateway import prediction_log
from services.gateway.prediction_log import Answered, PredictionLog
from shared.contracts import CHALLENGE_EXAMPLE


class _Stream:
    """Takes appends while up; answers a repeated append id as the Lua script does."""

    def __init__(self, down: bool = False, cap: int = 1_000_000) -> None:
        self.down, self.cap = down, cap
        self.appends: list[list] = []
        self.answered: dict[str, int] = {}
        self.refuse: Exception | None = None
        self.marks: list[tuple[str, float]] = []
        self.dropped = 0  # the stream's own count, kept in Redis

    def append(self, append_id, entries):
        if self.down:
            raise RedisConnectionError("Connection refused")
        if self.refuse:
            raise self.refuse
        if append_id not in self.answered:
            held = sum(e.count for a in self.appends for e in a)
            fitting = []
            for entry in entries:
                if held + entry.count > self.cap:
                    break
                held += entry.count
                fitting.append(entry)
            self.appends.append(fitting)
            self.answered[append_id] = sum(e.count for e in fitting)
        return self.answered[append_id]

    def count_dropped(self, items):
        if self.down:
            raise RedisConnectionError("Connection refused")
        self.dropped += items

    def mark_written(self, writer, until):
        if self.down:
            raise RedisConnectionError("Connection refused")
        self.marks.append((writer, until))

    def logged_ids(self) -> list[list]:
        return [
            [x["id"] for x in json.loads(e.fields["listings"])] for a in self.appends for e in a
        ]


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
    return Answered(f"p-{request_id}", request_id, 1_700_000_000.25, "3", listings, answers, 1.5)


def _log(stream: _Stream, capacity: int = 100) -> tuple[PredictionLog, list[int]]:
    dropped: list[int] = []
    log = PredictionLog(stream, capacity, on_dropped=dropped.append)
    log._thread = object()  # flushed by the test: no writer thread
    return log, dropped


def test_each_request_becomes_one_entry_with_its_listings_and_answers_in_order():
    stream = _Stream()
    log, dropped = _log(stream)

    log.record(_answered([1, 2**70]))  # an id wider than 64 bits still encodes
    assert log.flush()

    ((entry,),) = stream.appends
    assert entry.count == 2
    fields = entry.fields
    assert fields["prediction_id"] == "p-req-1" and fields["request_id"] == "req-1"
    assert fields["model_version"] == "3"
    assert fields["latency_ms"] == "1.500" and float(fields["time"]) == 1_700_000_000.25
    listings, answers = json.loads(fields["listings"]), json.loads(fields["answers"])
    assert listings[0] == {"id": 1, "accommodates": 2, "room_type": "Private room"}
    assert listings[1]["id"] == 2**70
    assert [a["price_category"] for a in answers] == ["Mid", "Mid"]
    assert answers[0]["probabilities"]["Mid"] == 0.7
    assert dropped == []


def test_a_full_buffer_drops_and_counts_the_request_that_does_not_fit():
    stream = _Stream()
    log, dropped = _log(stream, capacity=3)

    log.record(_answered([1, 2], "a"))
    log.record(_answered([3, 4], "b"))  # 4 > 3 buffered: dropped whole
    log.record(_answered([5], "c"))

    assert dropped == [2]
    assert log.flush() and stream.logged_ids() == [[1, 2], [5]]


def test_what_the_stream_cap_refuses_is_dropped_and_counted():
    stream = _Stream(cap=3)
    log, dropped = _log(stream)
    log.record(_answered([1, 2], "a"))
    log.record(_answered([3, 4], "b"))

    assert log.flush()
    assert stream.logged_ids() == [[1, 2]] and dropped == [2]


def test_redis_away_keeps_what_fits_in_the_buffer_and_sends_it_once_when_back():
    stream = _Stream(down=True)
    log, dropped = _log(stream, capacity=5)
    log.record(_answered([1, 2, 3], "a"))

    assert not log.flush()  # kept, not dropped
    log.record(_answered([4, 5], "b"))
    log.record(_answered([6], "c"))  # 6 > 5 buffered, the unsent included: dropped
    assert dropped == [1]

    stream.down = False
    assert log.flush()
    assert stream.logged_ids() == [[1, 2, 3], [4, 5]] and dropped == [1]


def test_an_append_whose_reply_was_lost_is_sent_again_and_written_once():
    """Redis took the append but its reply never came (frozen past the socket's timeout):
    the same append id is sent again, and the stream answers what it did the first time."""
    stream = _Stream()
    original = stream.append
    calls = []

    def lose_first_reply(append_id, entries):
        calls.append(append_id)
        written = original(append_id, entries)
        if len(calls) == 1:
            raise RedisConnectionError("Timeout reading from socket")
        return written

    stream.append = lose_first_reply
    log, dropped = _log(stream)
    log.record(_answered([1, 2], "a"))

    assert not log.flush()
    assert log.flush()
    assert calls[0] == calls[1]  # one append id, sent twice
    assert stream.logged_ids() == [[1, 2]] and dropped == []


def test_an_append_redis_refuses_is_dropped_not_sent_forever():
    stream = _Stream()
    stream.refuse = ResponseError("OOM command not allowed when used memory > 'maxmemory'")
    log, dropped = _log(stream)
    log.record(_answered([1, 2], "a"))

    assert log.flush()
    assert dropped == [2]
    stream.refuse = None
    log.record(_answered([3], "b"))
    assert log.flush() and stream.logged_ids() == [[3]]


def test_a_big_batch_is_written_in_bounded_appends_in_order(monkeypatch):
    monkeypatch.setattr(prediction_log, "WRITE_BATCH", 4)
    stream = _Stream()
    log, _ = _log(stream)
    log.record(_answered(list(range(10)), "big"))
    log.record(_answered([10, 11], "small"))

    assert log.flush()
    # A request is never split; the next one waits for another append when it would overflow.
    assert [[len(e.fields["listings"]) > 0 for e in a] for a in stream.appends] == [[True]] * 2
    assert stream.logged_ids() == [list(range(10)), [10, 11]]


@pytest.mark.parametrize("listings", [1, 25])
def test_recording_starts_one_writer_that_empties_the_buffer(listings):
    stream = _Stream()
    log = PredictionLog(stream, 100)
    for n in range(3):
        log.record(_answered(list(range(listings)), f"r{n}"))
    for _ in range(200):  # the writer thread: up to 2 s
        if len(stream.logged_ids()) == 3:
            break
        time.sleep(0.01)
    assert [len(ids) for ids in stream.logged_ids()] == [listings] * 3


def test_the_writer_sends_what_it_kept_once_redis_is_back_without_another_request():
    stream = _Stream(down=True)
    log = PredictionLog(stream, 100)
    log.record(_answered([1, 2], "a"))
    time.sleep(0.3)  # a few failed attempts
    stream.down = False
    for _ in range(300):  # backing off at most 2 s between attempts
        if stream.logged_ids():
            break
        time.sleep(0.01)
    assert stream.logged_ids() == [[1, 2]]


def test_the_writer_says_how_far_it_has_written_only_once_it_has(monkeypatch):
    """What the monitor waits for before it calls a realised price's prediction unknown."""
    monkeypatch.setattr(prediction_log, "MARK_EVERY_SECONDS", 0)
    stream = _Stream(down=True)
    log, _ = _log(stream)
    log.record(_answered([1], "a"))
    assert not log.flush() and stream.marks == []  # not written: nothing said

    stream.down = False
    before = time.time()
    log.record(_answered([2], "b"))
    assert log.flush()
    ((writer, until),) = stream.marks
    assert before <= until <= time.time()  # both requests were recorded before `until`
    assert writer.endswith(f":{os.getpid()}")


def test_drops_are_added_to_the_streams_own_count_once_redis_takes_them():
    """The gateway's counter restarts with its process; the stream's count in Redis does not."""
    stream = _Stream(down=True, cap=2)
    log, dropped = _log(stream, capacity=3)
    log.record(_answered([1, 2], "a"))
    log.record(_answered([3, 4], "b"))  # over the buffer: dropped while Redis is away
    assert not log.flush() and dropped == [2] and stream.dropped == 0

    stream.down = False
    log.record(_answered([5], "c"))  # over the stream's cap once [1, 2] is in
    assert log.flush()
    assert dropped == [2, 1] and stream.dropped == 3


def test_a_request_is_encoded_for_the_log_after_its_response_is_sent(app, monkeypatch):
    """The client does not wait for the log's encoding (26 ms for 10,000 listings): the entry
    is queued while answering and encoded when the response closes (gunicorn closes it once
    written); the writer sends the same bytes."""
    stream = _Stream()
    app.extensions["gateway"].prediction_log, _ = _log(stream)
    encoded: list[str] = []
    real_entry = Answered.entry

    def entry(self):
        encoded.append(self.prediction_id)
        return real_entry(self)

    monkeypatch.setattr(Answered, "entry", entry)
    listings = [CHALLENGE_EXAMPLE | {"id": i} for i in range(3)]
    response = app.test_client().post("/predict", json=listings)

    assert response.status_code == 200 and encoded == []  # answered, not yet encoded
    response.close()
    assert len(encoded) == 1
    assert app.extensions["gateway"].prediction_log.flush()
    assert stream.logged_ids() == [[0, 1, 2]]
    assert len(encoded) == 1  # the writer sent the request's bytes, it did not encode again
