"""Draining a stream into Parquet, each entry exactly once: the prediction log, and the
realised prices sent to POST /feedback (services.workers.feedback_join).

The stream is read through a consumer group, so an entry stays pending until acknowledged,
and it is acknowledged only after its rows are on disk. Before a batch is written, its exact
range of ids is recorded in Redis; a drainer killed before acknowledging leaves the record,
and the next drain first writes exactly that range again, under the same file names: the files
are replaced, never doubled, even for a batch that spans midnight. One drainer per stream runs
at a time (a lock), so every drain reads as one consumer.

Acknowledged entries are deleted from the stream in the same transaction, and their items
taken off its counter (shared.capped_stream): the stream holds only what is not drained yet.

Nothing a client sends stops a drain: an entry that cannot become rows, or whose rows cannot
be written, goes to the stream's dead-letter stream (kept for a look, counted) and the drain
goes on.
"""

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from redis import Redis
from redis.exceptions import LockError, ResponseError

from shared.capped_stream import items_of, release, reset_if_empty
from shared.monitor_state import dead_letter_count_key, dead_letter_stream, drained_until_key
from shared.prediction_store import (
    SCHEMA,
    Batch,
    UnreadableEntryError,
    remove_expired,
    rows_of_entry,
    write_batch,
)

log = logging.getLogger(__name__)

GROUP = "monitor"
CONSUMER = "drain"
READ_COUNT = 500  # entries per XREADGROUP
# Listings per file, about (a batch stops at the first read past it): held as Python rows
# while a batch is written, about 2 KB each, so 20,000 keep a drain near 40 MB.
BATCH_LISTINGS = 20_000
# The dead-letter stream keeps this many entries (each field cut to DEAD_LETTER_FIELD_BYTES):
# enough to see what went wrong, never enough to fill Redis. Its counter counts them all.
DEAD_LETTER_MAX_LEN = 1_000
DEAD_LETTER_FIELD_BYTES = 4_096


@dataclass(frozen=True)
class Sink:
    """Where a stream's entries go: how an entry becomes rows (UnreadableEntryError for one
    that cannot), a check that raises for rows that cannot be written, how a batch is written
    (returning the files written), and the folder whose day partitions expire."""

    rows_of: Callable[[str, Mapping[bytes, bytes]], list[dict[str, Any]]]
    check: Callable[[list[dict[str, Any]]], object]
    write: Callable[[Batch], int]
    folder: Path


def prediction_sink(folder: Path) -> Sink:
    """The prediction log's rows, one per answered listing, by day under folder."""
    return Sink(
        rows_of_entry,
        lambda rows: pa.Table.from_pylist(rows, schema=SCHEMA),
        lambda batch: len(write_batch(folder, batch)),
        folder,
    )


@dataclass
class Drained:
    """What one drain did."""

    entries: int = 0
    rows: int = 0  # listings, for the prediction log
    dead_lettered: int = 0  # entries that could not be written: set aside, counted
    files: int = 0
    expired_days: int = 0
    busy: bool = False  # another drain held the lock: this one did nothing
    # Every entry added to the stream before this time (seconds since the epoch) is drained.
    drained_until: float | None = None

    def as_dict(self) -> dict[str, int | bool | float | None]:
        return dict(vars(self))


def _batch_range_key(stream: str) -> str:
    return f"{stream}:drain-batch"


def ensure_group(redis: Redis, stream: str) -> None:
    """The monitor's consumer group, reading from the stream's start (entries logged before the
    monitor first ran are drained too)."""
    try:
        redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def _stream_id(text: str) -> tuple[int, int]:
    milliseconds, _, sequence = text.partition("-")
    return int(milliseconds), int(sequence or 0)


@dataclass
class _Entry:
    id: bytes
    fields: dict[bytes, bytes] | None  # None: deleted from the stream while pending
    rows: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None  # why it cannot be written

    @property
    def name(self) -> str:
        return self.id.decode()


def _read(redis: Redis, stream: str, after: str) -> list[_Entry]:
    """Up to READ_COUNT entries: pending ones after `after` (an id), or new ones (`>`)."""
    # [[stream, [(id, fields), ...]]]: the client's RESP2 reply (redis-py types it loosely)
    reply: Any = redis.xreadgroup(GROUP, CONSUMER, {stream: after}, count=READ_COUNT)
    return [_Entry(entry_id, fields) for entry_id, fields in reply[0][1]] if reply else []


def _batches(
    redis: Redis, stream: str, until: str | None, last: str | None = None
) -> Iterator[tuple[list[_Entry], bool]]:
    """Entries to write together, each batch with whether the stream is drained past `until`
    once it is written: the pending ones first (a batch is all pending entries or all new
    ones), then new ones; with `last`, only pending entries up to that id. Entries after
    `until` (an id) are left pending, for a later drain."""
    bounds = [bound for bound in (until, last) if bound]
    limit = min(bounds, key=_stream_id) if bounds else None
    cursor: str | None = "0"  # pending entries after this id; None once they are done
    while True:
        batch: list[_Entry] = []
        listings, reached = 0, False
        while not reached and listings < BATCH_LISTINGS:
            entries = _read(redis, stream, cursor or ">")
            if not entries:
                break
            for entry in entries:
                if limit and _stream_id(entry.name) > _stream_id(limit):
                    reached = True
                    break
                batch.append(entry)
                listings += max(items_of(entry.fields), 1)
                if cursor is not None:
                    cursor = entry.name
        if batch:
            yield batch, reached
        if reached:
            return
        if not batch:
            if cursor is None or last:
                return
            cursor = None  # pending ones done: now the new ones


def _sort_out(sink: Sink, entries: list[_Entry]) -> None:
    """Each entry's rows, or the reason it cannot be written (checked one by one only when
    the whole batch's rows fail the check)."""
    for entry in entries:
        if entry.fields:
            try:
                entry.rows = sink.rows_of(entry.name, entry.fields)
            except UnreadableEntryError as error:
                entry.problem = str(error)
    try:
        sink.check([row for entry in entries for row in entry.rows])
        return
    except (ValueError, TypeError, UnicodeError, pa.ArrowException):
        pass
    for entry in entries:
        try:
            sink.check(entry.rows)
        except (ValueError, TypeError, UnicodeError, pa.ArrowException) as error:
            entry.problem = f"stream entry {entry.name} cannot be written: {error!r}"
            entry.rows = []


def _dead_letter_fields(entry: _Entry, stream: str) -> dict[str, bytes | str]:
    kept: dict[str, bytes | str] = {
        "stream": stream,
        "entry_id": entry.name,
        "problem": entry.problem or "",
        "at": f"{time.time():.3f}",
    }
    for name, value in (entry.fields or {}).items():
        kept[f"field:{name.decode(errors='replace')}"] = value[:DEAD_LETTER_FIELD_BYTES]
    return kept


def _settle(redis: Redis, stream: str, sink: Sink, entries: list[_Entry], done: Drained) -> None:
    """Write one batch, then in one transaction: set aside what cannot be written, acknowledge
    and delete every entry, take their items off the counter, forget the batch's range."""
    _sort_out(sink, entries)
    first, last = entries[0].name, entries[-1].name
    redis.set(_batch_range_key(stream), f"{first} {last}")
    batch = Batch(first, [row for entry in entries for row in entry.rows])
    files = sink.write(batch) if batch.rows else 0
    dead = [entry for entry in entries if entry.problem]
    ids = [entry.id for entry in entries]
    with redis.pipeline(transaction=True) as transaction:
        for entry in dead:
            log.warning("dead-lettered: %s", entry.problem)
            transaction.xadd(
                dead_letter_stream(stream),
                _dead_letter_fields(entry, stream),  # type: ignore[arg-type]
                maxlen=DEAD_LETTER_MAX_LEN,
                approximate=True,
            )
        if dead:
            transaction.incrby(dead_letter_count_key(stream), len(dead))
        transaction.xack(stream, GROUP, *ids)
        release(transaction, stream, ids, sum(items_of(entry.fields) for entry in entries))
        transaction.delete(_batch_range_key(stream))
        transaction.execute()
    done.files += files
    done.entries += len(entries)
    done.rows += len(batch.rows)
    done.dead_lettered += len(dead)


def _redo_recorded_batch(redis: Redis, stream: str, sink: Sink, done: Drained) -> None:
    """A batch recorded but never acknowledged (its drainer died): exactly that range again."""
    recorded = redis.get(_batch_range_key(stream))
    if not recorded:
        return
    first, last = (recorded.decode() if isinstance(recorded, bytes) else recorded).split()
    entries = [
        entry
        for batch, _ in _batches(redis, stream, until=None, last=last)
        for entry in batch
        if _stream_id(entry.name) >= _stream_id(first)
    ]
    if entries and entries[0].name == first:
        _settle(redis, stream, sink, entries, done)
    else:  # settled after all (the record outlived its transaction): nothing to redo
        redis.delete(_batch_range_key(stream))


def drain(
    redis: Redis,
    stream: str,
    sink: Sink,
    retention_days: int,
    lock_seconds: int,
    budget_seconds: float,
    wait_seconds: float = 0,
    until: float | None = None,
) -> Drained:
    """Move everything in the stream so far into the sink (or until budget_seconds have
    passed), then delete the days past retention. While another drain runs, wait for it up to
    wait_seconds (it may have started before the newest entries came), else do nothing.
    Entries added after `until` (seconds since the epoch) are left for a later drain. The lock
    is held lock_seconds at a time, renewed after each batch: long enough for one batch."""
    done = Drained()
    lock = redis.lock(
        f"lock:monitor:drain:{stream}",
        timeout=lock_seconds,
        blocking=wait_seconds > 0,
        blocking_timeout=wait_seconds,
    )
    if not lock.acquire():
        done.busy = True
        return done
    try:
        started = time.time()
        ensure_group(redis, stream)
        deadline = time.monotonic() + budget_seconds
        until_id = f"{int(until * 1000)}-0" if until is not None else None
        _redo_recorded_batch(redis, stream, sink, done)
        done.drained_until = started if until is None else min(started, until)
        for entries, reached in _batches(redis, stream, until_id):
            _settle(redis, stream, sink, entries, done)
            try:  # held lock_seconds past each batch: a killed drainer's lapses soon
                lock.reacquire()
            except LockError:  # lapsed during a slow batch: another drain may hold it now
                log.warning("drain of %s outlasted its lock: the next drain goes on", stream)
                done.drained_until = _stream_id(entries[-1].name)[0] / 1000 - 0.001
                break
            if not reached and time.monotonic() > deadline:
                # Out of time: drained up to the last entry written (its millisecond may hold
                # more entries, not yet read).
                done.drained_until = _stream_id(entries[-1].name)[0] / 1000 - 0.001
                break
        redis.set(drained_until_key(stream), f"{done.drained_until:.3f}")
        reset_if_empty(redis, stream)
        today = datetime.now(UTC).date()
        done.expired_days = len(remove_expired(sink.folder, retention_days, today))
    finally:
        with suppress(LockError):  # expired meanwhile: nothing of ours to release
            lock.release()
    return done
