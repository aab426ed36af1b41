import gzip
import hashlib

import pandas as pd
import pytest

from shared.errors import DataError
from shared.storage import (
    file_md5,
    read_raw_listings,
    write_parquet_atomic,
)
from tests.unit.listings import raw_frame


def test_file_md5_is_the_md5_of_the_bytes(tmp_path):
    path = tmp_path / "listings.csv"
    path.write_bytes(b"id,price\n1,$75.00\n")
    assert file_md5(path) == hashlib.md5(b"id,price\n1,$75.00\n").hexdigest()


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_read_raw_listings_reads_csv_and_gzip(tmp_path, suffix):
    path = tmp_path / f"listings{suffix}"
    text = raw_frame({}, {"price": "$1,250.00"}).to_csv(index=False)
    if suffix == ".csv.gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    frame = read_raw_listings(path)
    assert list(frame["price"]) == ["$275.00", "$1,250.00"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("listings.csv", b"", "empty"),
        ("listings.csv", b"\n\n", "empty"),
        ("listings.csv.gz", b"\x1f\x8b not really gzip", "not a readable CSV"),
        ("listings.csv.gz", b"plain text with a gzip name", "not a readable CSV"),
    ],
)
def test_read_raw_listings_explains_unreadable_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_raw_listings(path)


def test_read_raw_listings_names_a_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_raw_listings(tmp_path / "absent.csv")


def test_write_parquet_atomic_leaves_no_partial_file_on_failure(tmp_path):
    target = tmp_path / "out" / "data.parquet"
    unwritable = pd.DataFrame({"x": [object()]})  # pyarrow cannot store a bare object
    with pytest.raises(Exception):  # noqa: B017 - whichever error pyarrow raises
        write_parquet_atomic(unwritable, target)
    assert list(target.parent.iterdir()) == []


def test_write_parquet_atomic_round_trips(tmp_path):
    target = tmp_path / "data.parquet"
    frame = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    write_parquet_atomic(frame, target)
    pd.testing.assert_frame_equal(pd.read_parquet(target), frame)
