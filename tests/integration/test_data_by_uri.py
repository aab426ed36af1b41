"""A dump named by an MLflow artifact or an S3 object (readable from any node, not only where
it was copied): uploaded with `price-category upload-data` or put in an S3-compatible store
(moto's server, on loopback), trained on through POST /retrain, and refused with the field
named when it does not exist or the name is malformed."""

import os
import subprocess
from typing import Any

import boto3
import pytest
import requests

from services.stack.processes import VENV_BIN
from shared.settings import PROJECT_DIR
from shared.storage import file_md5
from tests.integration.conftest import FAST_GRID, GATEWAY_TOKEN, S3_CREDENTIALS, wait_for_run

AUTH = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
BUCKET = "price-category-dumps"


def _retrain(gateway: str, data_path: str) -> requests.Response:
    body = {"data_path": data_path, "reason": "dump by URI", "force": True}
    return requests.post(f"{gateway}/retrain", json=body, headers=AUTH, timeout=30)


def test_a_dump_uploaded_to_mlflow_trains_like_the_same_file(stack, gateway, shipped_data):
    command = [str(VENV_BIN / "price-category"), "upload-data", shipped_data]
    done = subprocess.run(
        command,
        env={**os.environ, **stack.env},
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    uri = done.stdout.strip()
    assert uri.startswith("runs:/") and uri.endswith("/listings.csv.gz"), uri

    stack.write_grid(FAST_GRID)
    reply = _retrain(gateway, uri)
    assert reply.status_code == 202, reply.text
    assert reply.json()["data_path"] == uri
    run = wait_for_run(stack, reply.json()["run_id"])
    assert run["state"] == "finished", run
    assert run["data_path"] == uri
    # The same bytes as the file: the same data version.
    assert run["stages"]["prep"]["data_hash"] == file_md5(PROJECT_DIR / shipped_data)

    missing = uri.rsplit("/", 1)[0] + "/no-such-dump.csv.gz"
    reply = _retrain(gateway, missing)
    assert reply.status_code == 400, reply.text
    assert reply.json()["fields"][0]["path"] == "data_path"
    assert "no such artifact" in reply.json()["message"]


@pytest.mark.parametrize(
    "name",
    [
        "runs:/not-a-run-id/listings.csv.gz",
        "runs:/0123456789abcdef0123456789abcdef/../secrets.json",
        "runs:/0123456789abcdef0123456789abcdef/<b>x</b>.csv",
    ],
)
def test_a_malformed_artifact_name_is_a_400_naming_data_path(gateway, name):
    reply = _retrain(gateway, name)
    assert reply.status_code == 400, reply.text
    assert reply.json()["fields"][0]["path"] == "data_path"


def test_an_artifact_of_a_run_that_does_not_exist_is_a_400(gateway):
    reply = _retrain(gateway, "runs:/0123456789abcdef0123456789abcdef/listings.csv.gz")
    assert reply.status_code == 400, reply.text
    assert reply.json()["fields"][0]["path"] == "data_path"


@pytest.fixture(scope="module")
def bucket(stack) -> Any:
    """The stack's S3-compatible store, as a user's boto3 reaches it, with a bucket for dumps."""
    client = boto3.client(
        "s3",
        endpoint_url=stack.env["AWS_ENDPOINT_URL_S3"],
        region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket=BUCKET)
    return client


def test_a_dump_in_an_s3_store_trains_like_the_same_file(stack, gateway, shipped_data, bucket):
    bucket.upload_file(str(PROJECT_DIR / shipped_data), BUCKET, "2026-11/listings.csv.gz")
    uri = f"s3://{BUCKET}/2026-11/listings.csv.gz"

    stack.write_grid(FAST_GRID)
    reply = _retrain(gateway, uri)
    assert reply.status_code == 202, reply.text
    run = wait_for_run(stack, reply.json()["run_id"])
    assert run["state"] == "finished", run
    assert run["data_path"] == uri
    assert run["stages"]["prep"]["data_hash"] == file_md5(PROJECT_DIR / shipped_data)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        (f"s3://{BUCKET}/2026-11/no-such-dump.csv.gz", "object not found"),
        ("s3://no-such-bucket-here/listings.csv.gz", "object not found"),
        ("s3://Not_A_Bucket/listings.csv.gz", "not an s3://<bucket>/<key> name"),
        (f"s3://{BUCKET}/../secrets.json", "not an s3://<bucket>/<key> name"),
        (f"s3://{BUCKET}/<b>x</b>.csv", "not an s3://<bucket>/<key> name"),
    ],
)
def test_a_missing_or_malformed_s3_object_is_a_400_naming_data_path(gateway, bucket, name, why):
    reply = _retrain(gateway, name)
    assert reply.status_code == 400, reply.text
    assert reply.json()["fields"] == [{"path": "data_path", "message": why}]
