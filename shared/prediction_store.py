"""The prediction log at rest: Parquet files partitioned by day, one row per answered listing.

The monitor worker (services.workers.drain) turns the gateway's stream entries (one per
request, its listings and answers as two JSON arrays) into these rows. Each batch it drains is
written as one file per day it spans, named by the batch's first stream id, and written whole
or not at all (a temporary file renamed into place): writing the same batch again after a crash
replaces its file instead of adding a second copy.

    <folder>/day=2026-11-30/part-1764513600000-0.parquet
"""

import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from shared.prediction_ids import listing_prediction_id
from shared.schema import PRICE_CATEGORIES

# The request contract's fields (shared.contracts.Listing), typed; a test holds the two equal.
LISTING_COLUMNS: dict[str, pa.DataType] = {
    "id": pa.string(),  # an integer or a string in a request: kept as text
    "accommodates": pa.int64(),
    "room_type": pa.string(),
    "beds": pa.int64(),
    "bedrooms": pa.int64(),
    "bathrooms": pa.float64(),
    "neighbourhood": pa.string(),
    "latitude": pa.float64(),
    "longitude": pa.float64(),
    "tv": pa.int8(),
    "elevator": pa.int8(),
    "internet": pa.int8(),
    "property_type": pa.string(),
    "kitchen": pa.int8(),
    "heating": pa.int8(),
    "wifi": pa.int8(),
    "air_conditioning": pa.int8(),
    "breakfast": pa.int8(),
}
PROBABILITY_COLUMNS = {f"probability_{c}": c for c in PRICE_CATEGORIES}
# The estimated nightly price and its interval; null from models that estimate none (and in
# files written before prices were estimated: read with SCHEMA, missing columns are null).
PRICE_COLUMNS = ("estimated_price", "price_low", "price_high")
SCHEMA = pa.schema(
    [
        ("entry_id", pa.string()),  # the stream entry the row came from
        ("prediction_id", pa.string()),  # the listing's answer's: what feedback names
        ("request_id", pa.string()),  # the client's X-Request-ID: tracing only
        ("time", pa.timestamp("us", tz="UTC")),
        ("model_version", pa.string()),
        ("latency_ms", pa.float64()),  # the whole request's
        *LISTING_COLUMNS.items(),
        ("price_category", pa.string()),
        *((column, pa.float64()) for column in PROBABILITY_COLUMNS),
        *((column, pa.float64()) for column in PRICE_COLUMNS),
    ]
)
DAY_PREFIX = "day="


class UnreadableEntryError(ValueError):
    """A stream entry that is not one the gateway writes (missing fields, broken JSON)."""


def rows_of_entry(entry_id: str, fields: Mapping[bytes, bytes]) -> list[dict[str, Any]]:
    """One stream entry's rows, one per listing, in the request's order."""
    try:
        entry = {key.decode(): value.decode() for key, value in fields.items()}
        listings = json.loads(entry["listings"])
        answers = json.loads(entry["answers"])
        if len(listings) != len(answers):
            raise ValueError(f"{len(listings)} listings but {len(answers)} answers")
        request_prediction_id = entry["prediction_id"]
        common = {
            "entry_id": entry_id,
            "request_id": entry["request_id"],
            "time": datetime.fromtimestamp(float(entry["time"]), UTC),
            "model_version": entry["model_version"],
            "latency_ms": float(entry["latency_ms"]),
        }
        rows = []
        for index, (listing, answer) in enumerate(zip(listings, answers, strict=True)):
            row = {**common, **{name: listing.get(name) for name in LISTING_COLUMNS}}
            row["prediction_id"] = listing_prediction_id(request_prediction_id, index)
            row["id"] = None if row["id"] is None else str(row["id"])
            row["price_category"] = answer["price_category"]
            for column, category in PROBABILITY_COLUMNS.items():
                row[column] = float(answer["probabilities"][category])
            if "estimated_price" in answer:
                low, high = answer["price_interval"]
                row["estimated_price"] = float(answer["estimated_price"])
                row["price_low"], row["price_high"] = float(low), float(high)
            rows.append(row)
        return rows
    except (KeyError, TypeError, AttributeError, ValueError, UnicodeDecodeError) as error:
        raise UnreadableEntryError(f"stream entry {entry_id}: {error!r}") from None


@dataclass
class Batch:
    """Rows drained together, and the stream id that names their files."""

    first_id: str
    rows: list[dict[str, Any]] = field(default_factory=list)


def day_folder(folder: Path, day: date) -> Path:
    return folder / f"{DAY_PREFIX}{day.isoformat()}"


def write_batch(
    folder: Path, batch: Batch, schema: pa.Schema = SCHEMA, time_column: str = "time"
) -> list[Path]:
    """Write a batch's rows, one file per day of their time_column; each file appears whole or
    not at all, and writing the same batch again replaces its files."""
    by_day: dict[date, list[dict[str, Any]]] = {}
    for row in batch.rows:
        by_day.setdefault(row[time_column].date(), []).append(row)
    written = []
    for day, rows in sorted(by_day.items()):
        target = day_folder(folder, day) / f"part-{batch.first_id}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), partial)
        os.replace(partial, target)
        written.append(target)
    return written


def days_between(start: datetime, end: datetime) -> list[date]:
    """The days from start's to end's, both included: the partitions a time window reads."""
    return [start.date() + timedelta(days=n) for n in range((end.date() - start.date()).days + 1)]


def day_folders(folder: Path) -> list[tuple[date, Path]]:
    """The day partitions present, oldest first (anything else in the folder is ignored)."""
    found = []
    for path in folder.glob(f"{DAY_PREFIX}*"):
        try:
            found.append((date.fromisoformat(path.name.removeprefix(DAY_PREFIX)), path))
        except ValueError:
            continue
    return sorted(found)


def remove_expired(folder: Path, retention_days: int, today: date) -> list[date]:
    """Delete the day partitions older than retention_days before today; the days removed."""
    oldest_kept = today - timedelta(days=retention_days - 1)
    removed = []
    for day, path in day_folders(folder):
        if day < oldest_kept:
            shutil.rmtree(path)
            removed.append(day)
    return removed


def _files(folder: Path, days: Iterable[date] | None) -> Sequence[str]:
    chosen = set(days) if days is not None else None
    return [
        str(path)
        for day, partition in day_folders(folder)
        if chosen is None or day in chosen
        for path in sorted(partition.glob("part-*.parquet"))
    ]


def read_predictions(
    folder: Path,
    days: Iterable[date] | None = None,
    schema: pa.Schema = SCHEMA,
    since: datetime | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """The rows stored (of the given days, else all; made at or after `since` if given), in
    one table of the schema (or of the given columns)."""
    files = _files(folder, days)
    if not files:
        empty = schema.empty_table()
        return empty if columns is None else empty.select(list(columns))
    condition = None
    if since is not None:
        condition = pc.field("time") >= pa.scalar(since, schema.field("time").type)
    dataset = ds.dataset(files, schema=schema, format="parquet")
    return dataset.to_table(columns=None if columns is None else list(columns), filter=condition)


def read_matching(
    folder: Path,
    column: str,
    values: Iterable[str],
    columns: Sequence[str],
    days: Iterable[date] | None = None,
    until: datetime | None = None,
) -> pa.Table:
    """The given columns of the stored rows whose `column` is one of values (and made at or
    before `until`), of the given days (else all). Read batch by batch, filtered as read: what
    it holds at once is the matches and one batch, not the month."""
    wanted = sorted(set(values))
    files = _files(folder, days)
    if not files or not wanted:
        return SCHEMA.empty_table().select(list(columns))
    condition = pc.field(column).isin(pa.array(wanted, pa.string()))
    if until is not None:
        condition &= pc.field("time") <= pa.scalar(until, SCHEMA.field("time").type)
    dataset = ds.dataset(files, schema=SCHEMA, format="parquet")
    # One file, one batch at a time: arrow's readahead (16 batches of 4 files) held ~100 MB
    # for a 200,000-row day, far more than the matches.
    return dataset.to_table(
        columns=list(columns), filter=condition, batch_readahead=1, fragment_readahead=1
    )
