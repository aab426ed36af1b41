"""The prediction log at rest: a stream entry's rows, files written whole and once, retention."""

import json
from datetime import UTC, date, datetime

import pyarrow.parquet as pq
import pytest

from services.gateway.prediction_log import Answered
from shared.contracts import CHALLENGE_EXAMPLE, Listing
from shared.prediction_store import (
    LISTING_COLUMNS,
    SCHEMA,
    Batch,
    UnreadableEntryError,
    read_predictions,
    remove_expired,
    rows_of_entry,
    write_batch,
)
from shared.schema import PRICE_CATEGORIES

PROBABILITIES = {"Low": 0.1, "Mid": 0.6, "High": 0.2, "Lux": 0.1}


PREDICTION_ID = f"20251130-{'5' * 24}"
PRICED = {"estimated_price": 142.37, "price_interval": [98.4, 231.05]}


def _entry(ids: list, at: float = 1_764_513_600.5, **priced: object) -> dict[bytes, bytes]:
    """A stream entry exactly as the gateway writes it (and as Redis returns it: bytes); each
    answer has the fields of priced too (a model that estimates prices)."""
    listings = [vars(Listing.model_validate({**CHALLENGE_EXAMPLE, "id": i})) for i in ids]
    answers = [
        {
            "id": i,
            "price_category": "Mid",
            "probabilities": PROBABILITIES,
            "model_version": "7",
            **priced,
        }
        for i in ids
    ]
    answered = Answered(PREDICTION_ID, "req-9", at, "7", listings, answers, latency_ms=1.25)
    return {
        str(key).encode(): value if isinstance(value, bytes) else str(value).encode()
        for key, value in answered.entry().fields.items()
    }


def test_the_store_keeps_every_field_of_the_request_contract():
    assert set(LISTING_COLUMNS) == set(Listing.model_fields)


def test_an_entry_becomes_one_row_per_listing_in_order():
    rows = rows_of_entry("1764513600500-0", _entry([5, "abc", 2**70]))
    assert [row["id"] for row in rows] == ["5", "abc", str(2**70)]
    first = rows[0]
    assert [row["prediction_id"] for row in rows] == [f"{PREDICTION_ID}-{i}" for i in range(3)]
    assert first["entry_id"] == "1764513600500-0"
    assert first["request_id"] == "req-9"
    assert first["model_version"] == "7"
    assert first["time"] == datetime(2025, 11, 30, 14, 40, 0, 500000, tzinfo=UTC)
    assert first["latency_ms"] == 1.25
    assert first["neighbourhood"] == "Brooklyn" and first["bathrooms"] == 2.0
    assert first["kitchen"] is None  # optional and not sent
    assert first["price_category"] == "Mid"
    assert [first[f"probability_{c}"] for c in PRICE_CATEGORIES] == [0.1, 0.6, 0.2, 0.1]
    assert "estimated_price" not in first  # a model that estimates no prices: null when read


def test_an_estimated_price_and_its_interval_are_kept():
    entry = _entry([5], **PRICED)
    row = rows_of_entry("1764513600500-0", entry)[0]
    assert (row["estimated_price"], row["price_low"], row["price_high"]) == (142.37, 98.4, 231.05)


def test_files_written_before_prices_were_estimated_read_them_as_null(tmp_path):
    older = SCHEMA.remove(SCHEMA.get_field_index("estimated_price"))
    older = older.remove(older.get_field_index("price_low"))
    older = older.remove(older.get_field_index("price_high"))
    write_batch(tmp_path, _batch("100-0", [1], 1_764_513_600.5), schema=older)
    write_batch(tmp_path, Batch("200-0", rows_of_entry("200-0", _entry([2], **PRICED))))
    table = read_predictions(tmp_path).sort_by("id")
    assert table.column("estimated_price").to_pylist() == [None, 142.37]
    assert table.column("price_high").to_pylist() == [None, 231.05]


@pytest.mark.parametrize(
    "broken",
    [
        {b"request_id": b"r"},  # fields missing
        {**_entry([1]), b"listings": b"[{"},  # broken JSON
        {**_entry([1]), b"answers": b"[]"},  # fewer answers than listings
        {**_entry([1]), b"answers": json.dumps([{"price_category": "Mid"}]).encode()},
        {**_entry([1]), b"time": b"yesterday"},
        {**_entry([1]), b"listings": b"\xff"},
    ],
)
def test_an_entry_the_gateway_did_not_write_is_unreadable_not_a_crash(broken):
    with pytest.raises(UnreadableEntryError, match="stream entry 1-0"):
        rows_of_entry("1-0", broken)


def _batch(first_id: str, ids: list, at: float) -> Batch:
    return Batch(first_id, rows_of_entry(first_id, _entry(ids, at)))


def test_a_batch_is_written_per_day_and_writing_it_again_replaces_it(tmp_path):
    before_midnight = datetime(2026, 11, 29, 23, 59, 59, tzinfo=UTC).timestamp()
    after_midnight = before_midnight + 2
    batch = _batch("100-0", [1, 2], before_midnight)
    batch.rows += rows_of_entry("101-0", _entry([3], after_midnight))

    written = write_batch(tmp_path, batch)
    assert [path.relative_to(tmp_path).as_posix() for path in written] == [
        "day=2026-11-29/part-100-0.parquet",
        "day=2026-11-30/part-100-0.parquet",
    ]
    write_batch(tmp_path, batch)  # a drain that died before acknowledging, done again
    table = read_predictions(tmp_path)
    assert sorted(table.column("id").to_pylist()) == ["1", "2", "3"]
    assert table.schema == SCHEMA
    assert read_predictions(tmp_path, [date(2026, 11, 30)]).column("id").to_pylist() == ["3"]
    assert not list(tmp_path.rglob(".*"))  # no partial file left behind
    assert pq.read_schema(written[0]).equals(SCHEMA)


def test_nothing_logged_reads_as_an_empty_table(tmp_path):
    assert read_predictions(tmp_path / "missing").num_rows == 0
    assert read_predictions(tmp_path).schema == SCHEMA


def test_retention_deletes_whole_days_past_it_and_nothing_else(tmp_path):
    for day in ("2026-11-01", "2026-11-02", "2026-11-30"):
        (tmp_path / f"day={day}").mkdir()
    (tmp_path / "day=not-a-date").mkdir()
    (tmp_path / "notes.txt").write_text("kept")
    removed = remove_expired(tmp_path, retention_days=29, today=date(2026, 11, 30))
    assert removed == [date(2026, 11, 1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "day=2026-11-02",
        "day=2026-11-30",
        "day=not-a-date",
        "notes.txt",
    ]
