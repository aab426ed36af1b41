"""POST /retrain with an s3:// dump: refused with the field named unless the deployment turned
S3 dumps on and the object is there; 503 while the store does not answer. (A dump that is
there trains: tests/integration/test_data_by_uri.py, against an S3-compatible server.)"""

import boto3
import pytest
from moto import mock_aws

from services.gateway.app import create_app
from services.stack.processes import free_port

TOKEN = {"Authorization": "Bearer s3cret-token-0123456789"}
BUCKET = "price-category-dumps"


@pytest.fixture
def s3_client(settings, source):
    app = create_app(settings.model_copy(update={"s3_dumps": True}), source, watch_champion=False)
    return app.test_client()


def _retrain(client, data_path: str):
    return client.post("/retrain", json={"data_path": data_path}, headers=TOKEN)


def test_s3_dumps_are_refused_where_not_turned_on(client):
    reply = _retrain(client, f"s3://{BUCKET}/listings.csv.gz")
    assert reply.status_code == 400
    assert reply.get_json()["fields"] == [{"path": "data_path", "message": "s3:// not enabled"}]


@mock_aws
def test_an_object_that_is_not_there_is_a_400(s3_client, aws_env):
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    for name in (f"s3://{BUCKET}/missing.csv.gz", "s3://no-such-bucket-here/listings.csv.gz"):
        reply = _retrain(s3_client, name)
        assert reply.status_code == 400, name
        assert reply.get_json()["fields"] == [{"path": "data_path", "message": "object not found"}]


def test_a_store_that_does_not_answer_is_a_503(s3_client, aws_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    reply = _retrain(s3_client, f"s3://{BUCKET}/listings.csv.gz")
    assert reply.status_code == 503
    assert reply.get_json()["error"] == "s3_unavailable"
