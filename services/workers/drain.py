"""Draining a stream into Parquet, each entry exactly once: the prediction log, and the
realised prices sent to POST /feedback (services.workers.feedback_join).

The stream is read through a consumer group, so an entry stays pending until acknowledged,
and it is acknowledged only after its rows are on disk. A drainer killed between the two
leaves its batch pending; the next drain reads the pending entries first, and alone (a batch is
either all pending entries or all new ones), so it starts at the same first id and writes the
same file name: the file is replaced, never doubled. One drainer per stream runs at a time (a
lock), so every drain reads as one consumer.
"""

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import LockError, ResponseError

from shared.prediction_store import (
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
# Drained entries stay in the stream this long (for whoever tails it), then are trimmed: the
# Parquet files hold them. The stream's cap (XADD MAXLEN) bounds it while no drain runs.
KEEP_DRAINED_SECONDS = 3600
BATCH_LISTINGS = 100_000  # listings per file, about; a batch stops at the first read past it


@dataclass(frozen=True)
class Sink:
    """Where a stream's entries go: how an entry becomes rows (UnreadableEntryError for one
    that cannot), how a batch is written (returning the files written), and the folder whose
    day partitions expire."""

    rows_of: Callable[[str, Mapping[bytes, bytes]], list[dict[str, Any]]]
    write: Callable[[Batch], int]
    folder: Path


def prediction_sink(folder: Path) -> Sink:
    """The prediction log's rows, one per answered listing, by day under folder."""
    return Sink(rows_of_entry, lambda batch: len(write_batch(folder, batch)), folder)


@dataclass
class Drained:
    """What one drain did."""

    entries: int = 0
    rows: int = 0  # listings, for the prediction log
    unreadable: int = 0  # entries that were not the gateway's: logged, acknowledged, skipped
    files: int = 0
    expired_days: int = 0
    busy: bool = False  # another drain held the lock: this one did nothing

    def as_dict(self) -> dict[str, int | bool]:
        return dict(vars(self))


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


def trim_drained(redis: Redis, stream: str, now: float) -> None:
    """Trim the entries drained more than KEEP_DRAINED_SECONDS ago; never one still pending
    or not yet read."""
    group = next(g for g in redis.xinfo_groups(stream) if g["name"] in (GROUP, GROUP.encode()))
    undrained = group["last-delivered-id"]
    if group["pending"]:
        undrained = redis.xpending(stream, GROUP)["min"]
    undrained = undrained.decode() if isinstance(undrained, bytes) else str(undrained)
    keep_from = f"{int((now - KEEP_DRAINED_SECONDS) * 1000)}-0"
    redis.xtrim(stream, minid=min(undrained, keep_from, key=_stream_id), approximate=False)


def _read(redis: Redis, stream: str, after: str) -> list[tuple[bytes, dict[bytes, bytes] | None]]:
    """Up to READ_COUNT entries: pending ones after `after` (an id), or new ones (`>`). A
    pending entry trimmed from the stream since comes back without fields."""
    # [[stream, [(id, fields), ...]]]: the client's RESP2 reply (redis-py types it loosely)
    reply: Any = redis.xreadgroup(GROUP, CONSUMER, {stream: after}, count=READ_COUNT)
    return list(reply[0][1]) if reply else []


def _batches(
    redis: Redis, stream: str, sink: Sink, newest: str | None
) -> Iterator[tuple[Batch, list[bytes], int]]:
    """Batches to write: the pending ones first, then new ones; each with its entry ids and
    the count of unreadable entries among them. Entries after `newest` (a stream id) are left
    pending, for a later drain."""
    pending = True
    after = "0"
    unsettled = False
    while not unsettled:
        batch: Batch | None = None
        ids: list[bytes] = []
        unreadable = 0
        while not unsettled and (batch is None or len(batch.rows) < BATCH_LISTINGS):
            entries = _read(redis, stream, after if pending else ">")
            if not entries:
                break
            for entry_id, fields in entries:
                name = entry_id.decode()
                if newest is not None and _stream_id(name) > _stream_id(newest):
                    unsettled = True
                    break
                batch = batch or Batch(name)
                ids.append(entry_id)
                if pending:
                    after = name
                if not fields:  # trimmed away while pending: nothing left to write
                    continue
                try:
                    batch.rows.extend(sink.rows_of(name, fields))
                except UnreadableEntryError as error:
                    unreadable += 1
                    log.warning("skipped: %s", error)
        if batch is not None:
            yield batch, ids, unreadable
        elif pending and not unsettled:
            pending = False  # a batch is all pending entries or all new ones, never both
        else:
            return


def drain(
    redis: Redis,
    stream: str,
    sink: Sink,
    retention_days: int,
    lock_seconds: int,
    budget_seconds: float,
    wait_seconds: float = 0,
    settle_seconds: float = 0,
) -> Drained:
    """Move everything in the stream so far into the sink (or until budget_seconds have
    passed), then delete the days past retention. While another drain runs, wait for it up to
    wait_seconds (it may have started before the newest entries came), else do nothing.
    Entries younger than settle_seconds are left for a later drain."""
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
        ensure_group(redis, stream)
        deadline = time.monotonic() + budget_seconds
        newest = f"{int((time.time() - settle_seconds) * 1000)}-0" if settle_seconds else None
        for batch, ids, unreadable in _batches(redis, stream, sink, newest):
            done.files += sink.write(batch) if batch.rows else 0
            redis.xack(stream, GROUP, *ids)
            done.entries += len(ids)
            done.rows += len(batch.rows)
            done.unreadable += unreadable
            if time.monotonic() > deadline:
                break
        trim_drained(redis, stream, time.time())
        today = datetime.now(UTC).date()
        done.expired_days = len(remove_expired(sink.folder, retention_days, today))
    finally:
        with suppress(LockError):  # expired meanwhile: nothing of ours to release
            lock.release()
    return done
