"""The prediction log: every answered listing appended to a Redis Stream, off the answer's path.

A request hands its answers to a bounded in-process buffer, and once its response is sent
encodes them as the stream entry they become (its listings as one JSON array, packed as the
append script's one argument: a few microseconds for one listing, 26 ms for 10,000, which the
client no longer waits for). One background thread per gateway process writes the buffer to the
stream, one entry per request (a 10,000-listing batch is one encoding call, not 10,000
commands). The stream is capped in listings (shared.capped_stream): what does not fit is
dropped and counted, never trimmed from what the monitor has not drained. The thread lingers a
moment after being woken so that one round trip carries the requests of that moment.

The encoding is the request's process's, not the thread's, on purpose: the thread's Python work
holds the interpreter's lock, and a request arriving meanwhile waits for it. Encoding 70
requests' entries at once (one linger's worth at 1,400 requests/s) held it for about a
millisecond, 20 times a second: the log tripled the p99 of single predictions. Now the thread
only sends bytes, unless it reaches a request before that request's own encoding does (then it
encodes that one itself: a request whose close never came still gets logged).

Redis away or frozen never costs a prediction, nor a logged one while the buffer has room: the
writer keeps the requests it could not send and sends them again (the same append, so a reply
lost in a freeze never writes them twice), backing off meanwhile; requests that would overflow
the buffer, or that Redis refuses, are dropped and counted.
"""

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import orjson
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.capped_stream import Item, written_until_key

log = logging.getLogger(__name__)

# Listings one pipelined write sends at most (a request is never split): big enough to amortise
# the round trip, small enough that one reply is not held for long.
WRITE_BATCH = 1_000
# Seconds the writer waits after being woken, gathering requests into one round trip: per
# request, a round trip of its own cost more than the answer (measured: +0.22 ms on 0.53).
LINGER_SECONDS = 0.05
# After a failed write, the first warning is logged and the next ones at most this often.
WARN_EVERY_SECONDS = 60.0
# Seconds between attempts to send what Redis did not take, doubling up to the last.
RETRY_SECONDS = (0.1, 0.2, 0.5, 1.0, 2.0)
# How often the writer says how far it has written (every answer before a time is in the
# stream), idle or not: the monitor joins a realised price only once every writer is past it.
MARK_EVERY_SECONDS = 1.0


@dataclass(frozen=True)
class Answered:
    """One request's answers, as the log keeps them: per listing, its validated fields, the
    category and probabilities it got, by which version, when, and how long the request took."""

    prediction_id: str  # the request's; its listings' are this plus "-<index>"
    request_id: str  # the client's X-Request-ID (or one made up): for tracing only
    at: float  # seconds since the epoch
    model_version: str
    listings: list[dict[str, Any]]
    answers: list[dict[str, Any]]
    latency_ms: float

    def entry(self) -> Item:
        """The stream entry (a flat map of strings): the request's fields, and its listings
        and answers as two JSON arrays in the same order."""
        return Item(len(self.listings), {
            "prediction_id": self.prediction_id,
            "request_id": self.request_id,
            "time": f"{self.at:.6f}",
            "model_version": self.model_version,
            "latency_ms": f"{self.latency_ms:.3f}",
            "listings": _json(self.listings),
            "answers": _json([{key: a[key] for key in LOGGED if key in a} for a in self.answers]),
        })  # fmt: skip


# What the log keeps of an answer (the price fields only from models that estimate prices).
LOGGED = ("price_category", "probabilities", "estimated_price", "price_interval")


def _json(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer wider than 64 bits (a client's id): the standard encoder
        return json.dumps(value).encode()


def writer_name(pid: int) -> str:
    """How a gateway process signs its marks of how far it has written the log."""
    return f"{socket.gethostname()}:{pid}"


def forget_writer(redis: Redis, stream: str, pid: int) -> None:
    """A process that ended writes nothing more: the monitor need not wait for it."""
    redis.hdel(written_until_key(stream), writer_name(pid))


class Appender(Protocol):
    """Where the entries go (shared.capped_stream.CappedStream)."""

    def append(self, append_id: str, entries: Sequence[Item]) -> int: ...

    def mark_written(self, writer: str, until: float) -> None: ...

    def count_dropped(self, items: int) -> None: ...


@dataclass
class _Unsent:
    """Requests' entries taken from the buffer under one append id, until Redis has answered
    for them."""

    append_id: str
    entries: list["Recorded"]

    @property
    def listings(self) -> int:
        return sum(entry.count for entry in self.entries)

    def items(self) -> list[Item]:
        return [entry.encode() for entry in self.entries]


class Recorded:
    """A request's answers in the buffer. The request encodes them once its response is sent;
    the writer, if it takes them first (rare), does. Either may: both make the same bytes."""

    __slots__ = ("_answered", "_item", "count")

    def __init__(self, answered: Answered) -> None:
        self._answered: Answered | None = answered
        self._item: Item | None = None
        self.count = len(answered.listings)

    def encode(self) -> Item:
        answered = self._answered
        if answered is None:  # encoded already: _item is set before _answered is cleared
            return cast(Item, self._item)
        item = answered.entry()
        item.packed  # noqa: B018 - the bytes the writer sends, made here, not by the writer
        self._item = item
        self._answered = None  # the listings are not held twice
        return item


class PredictionLog:
    """Buffers answered requests and writes them to the stream from a thread of its own."""

    def __init__(
        self,
        stream: Appender,
        capacity: int,
        on_dropped: Callable[[int], None] = lambda listings: None,
    ) -> None:
        self.stream = stream
        self.capacity = capacity  # listings buffered at most, those being sent included
        self.on_dropped = on_dropped
        self._pending: deque[Recorded] = deque()
        self._buffered = 0
        self._unsent: _Unsent | None = None  # sent, and Redis has not answered yet
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned_at = float("-inf")
        self._marked_at = float("-inf")
        self._drops_to_count = 0  # dropped, not yet added to the stream's own count

    def record(self, answered: Answered) -> "Recorded":
        """Queue a request's answers for the stream (call the result's `encode` once the
        response is sent); drops them (counted) when the buffer is full. Starts the writer on
        first use."""
        entry = Recorded(answered)
        count = entry.count
        with self._lock:
            accepted = self._buffered + count <= self.capacity
            if accepted:
                self._pending.append(entry)
                self._buffered += count
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="prediction-log", daemon=True
                )
                self._thread.start()
        if accepted:
            self._wake.set()
        else:
            self._dropped(count)
        return entry

    def flush(self) -> bool:
        """Send everything buffered now; False when Redis could not be reached (what was not
        sent stays buffered, for the next flush)."""
        started = time.time()  # everything recorded before is buffered or being sent
        while unsent := self._unsent or self._take(WRITE_BATCH):
            self._unsent = unsent
            listings = unsent.listings
            try:
                written = self.stream.append(unsent.append_id, unsent.items())
            except (RedisConnectionError, RedisTimeoutError) as error:
                self._warn(error, listings, "kept to send again")
                return False
            except RedisError as error:  # refused (out of memory, ...): sending again won't do
                written = 0
                self._warn(error, listings, "dropped")
            self._release(unsent)
            if written < listings:  # the stream's cap: the rest did not fit
                self._dropped(listings - written)
        self._mark_written(started)
        self._count_drops()
        return True

    def _dropped(self, listings: int) -> None:
        self.on_dropped(listings)
        with self._lock:
            self._drops_to_count += listings

    def _count_drops(self) -> None:
        """Add what was dropped to the stream's own count, which outlives this process."""
        with self._lock:
            count, self._drops_to_count = self._drops_to_count, 0
        if not count:
            return
        try:
            self.stream.count_dropped(count)
        except RedisError:  # added at a later flush
            with self._lock:
                self._drops_to_count += count

    def _mark_written(self, until: float) -> None:
        if time.monotonic() - self._marked_at < MARK_EVERY_SECONDS:
            return
        try:
            self.stream.mark_written(writer_name(os.getpid()), until)
            self._marked_at = time.monotonic()
        except RedisError:  # said again at the next flush
            pass

    def _take(self, limit: int) -> _Unsent | None:
        """Requests' entries buffered, oldest first, up to about limit listings (at least
        one)."""
        taken: list[Recorded] = []
        with self._lock:
            count = 0
            while self._pending and (not taken or count + self._pending[0].count <= limit):
                entry = self._pending.popleft()
                taken.append(entry)
                count += entry.count
        return _Unsent(uuid.uuid4().hex, taken) if taken else None

    def _release(self, unsent: _Unsent) -> None:
        """Answered for: their room in the buffer is free again."""
        with self._lock:
            self._buffered -= unsent.listings
        self._unsent = None

    def _run(self) -> None:
        failures = 0
        while True:
            if self._wake.wait(MARK_EVERY_SECONDS):  # else idle: flushes nothing, marks
                time.sleep(LINGER_SECONDS)
            self._wake.clear()
            if self.flush():
                failures = 0
                continue
            time.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
            failures += 1
            self._wake.set()  # what was kept is sent again

    def _warn(self, error: Exception, count: int, outcome: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("prediction log unavailable (%s): %d listings %s", error, count, outcome)
