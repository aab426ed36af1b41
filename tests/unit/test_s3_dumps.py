"""Prep's side of an s3:// dump: the object's bytes in a temporary file for the block, deleted
after; not turned on, malformed or not there is a DataError (no retry helps)."""

import boto3
import pytest
from moto import mock_aws

from shared.errors import DataError
from shared.raw_data import local_raw_file, s3_object_of
from shared.settings import Settings

BUCKET = "price-category-dumps"
DUMP = b"id,price\n1,$75.00\n"


@pytest.fixture
def store(aws_env):
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key="2026-11/listings.csv", Body=DUMP)
        yield client


def test_the_object_is_read_from_a_temporary_copy_of_its_bytes(store):
    with local_raw_file(Settings(s3_dumps=True), f"s3://{BUCKET}/2026-11/listings.csv") as path:
        assert path.read_bytes() == DUMP
        assert path.name == "listings.csv"
    assert not path.parent.exists()


@pytest.mark.parametrize(
    ("s3_dumps", "name", "why"),
    [
        (False, f"s3://{BUCKET}/2026-11/listings.csv", "not enabled"),
        (True, f"s3://{BUCKET}/2026-11/missing.csv", "not found"),
        (True, f"s3://{BUCKET}/../listings.csv", "malformed"),
    ],
)
def test_what_no_retry_can_fix_is_a_data_error(store, s3_dumps, name, why):
    with pytest.raises(DataError, match=why), local_raw_file(Settings(s3_dumps=s3_dumps), name):
        pass


@pytest.mark.parametrize(
    "name",
    [
        "s3://ab/listings.csv",  # a bucket name is 3 to 63 characters
        "s3://Upper_Case/listings.csv",
        f"s3://{BUCKET}/a/./listings.csv",
        f"s3://{BUCKET}/a/..",
        f"s3://{BUCKET}/<b>x</b>.csv",  # the name reaches rq-dashboard's pages
        f"s3://{BUCKET}/",
    ],
)
def test_names_that_are_not_plain_bucket_and_key_are_refused(name):
    assert s3_object_of(name) is None


def test_a_plain_name_gives_its_bucket_and_key():
    assert s3_object_of(f"s3://{BUCKET}/2026-11/listings.csv.gz") == (
        BUCKET,
        "2026-11/listings.csv.gz",
    )
