"""A data_path parsed as the gateway and prep both parse it, and prep's side of an s3:// dump:
the object's bytes in a temporary file for the block, deleted after; not turned on, malformed
or not there is a DataError (no retry helps)."""

import boto3
import pytest
from moto import mock_aws

from shared.errors import DataError
from shared.raw_data import DataPathError, DataSource, local_raw_file
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
        (True, f"s3://{BUCKET}/2026-11/missing.csv", "no such object"),
        (True, f"s3://{BUCKET}/../listings.csv", "is named s3://<bucket>/<key"),
    ],
)
def test_what_no_retry_can_fix_is_a_data_error(store, s3_dumps, name, why):
    with pytest.raises(DataError, match=why), local_raw_file(Settings(s3_dumps=s3_dumps), name):
        pass


RUN = "0123456789abcdef0123456789abcdef"
ON = Settings(s3_dumps=True)


@pytest.mark.parametrize(
    "name",
    [
        "s3://ab/listings.csv",  # a bucket name is 3 to 63 characters
        "s3://Upper_Case/listings.csv",
        f"s3://{BUCKET}/a/./listings.csv",
        f"s3://{BUCKET}/a/..",
        f"s3://{BUCKET}/<b>x</b>.csv",  # the name reaches rq-dashboard's pages
        f"s3://{BUCKET}/",
        "runs:/not-a-run-id/listings.csv.gz",
        f"runs:/{RUN}/../secrets.json",  # out of the run's folder
        f"runs:/{RUN}/a/../../b.csv",
        f"runs:/{RUN}/./listings.csv",
        f"runs:/{RUN}/<b>x</b>.csv",
        f"runs:/{RUN}/",
    ],
)
def test_names_that_are_not_plain_are_refused_with_the_reason(name):
    with pytest.raises(DataPathError) as refused:
        DataSource.parse(name, ON)
    assert refused.value.why.startswith(("not an s3://", "not a runs:/"))


def test_a_plain_name_gives_where_its_dump_is():
    name = f"s3://{BUCKET}/2026-11/listings.csv.gz"
    assert DataSource.parse(name, ON) == DataSource("s3", name, (BUCKET, "2026-11/listings.csv.gz"))
    name = f"runs:/{RUN}/dumps/listings.csv.gz"
    assert DataSource.parse(name, ON) == DataSource("runs", name, (RUN, "dumps/listings.csv.gz"))
    assert DataSource.parse("data/raw/x.csv", ON) == DataSource("file", "data/raw/x.csv")


def test_prep_refuses_a_file_that_is_not_there_for_good(tmp_path):
    with pytest.raises(DataError, match="no such file"), local_raw_file(ON, str(tmp_path / "x")):
        pass
