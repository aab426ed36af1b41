"""A dump named by an MLflow artifact (readable from any node, not only where it was copied):
uploaded with `price-category upload-data`, trained on through POST /retrain, and refused with
the field named when the artifact does not exist or the name is malformed."""

import os
import subprocess

import pytest
import requests

from services.stack.processes import VENV_BIN
from shared.settings import PROJECT_DIR
from shared.storage import file_md5
from tests.integration.conftest import FAST_GRID, GATEWAY_TOKEN, wait_for_run

AUTH = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}


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
