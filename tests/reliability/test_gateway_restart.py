"""A gateway killed (its gunicorn master and workers, SIGKILL) while MLflow is away: started
again on the same host, it serves the champion it had from its node-local copy within seconds;
a gateway without a copy answers 503 until MLflow is back."""

import time
from pathlib import Path

import pytest
import requests

from services.stack import processes
from services.stack.__main__ import COPY_SETTING
from shared.contracts import CHALLENGE_EXAMPLE
from tests.integration.conftest import Stack
from tests.reliability.faults import champion_version, kill_tree

pytestmark = pytest.mark.reliability


def predicts(url: str) -> requests.Response:
    return requests.post(f"{url}/predict", json=CHALLENGE_EXAMPLE, timeout=10)


def serving(url: str, version: str) -> bool:
    reply = predicts(url)
    return reply.status_code == 200 and reply.json()["model_version"] == version


def restart_mlflow(stack: Stack) -> None:
    stack.services["mlflow"], _ = processes.start_mlflow(
        stack.folder / "mlflow",
        f"postgresql+psycopg2://postgres@127.0.0.1:{stack.ports['postgres']}/mlflow",
        stack.ports["mlflow"],
    )


def test_a_gateway_started_again_while_mlflow_is_away_serves_its_copy(
    isolated_stack: Stack, fault_gateway: str, tmp_path: Path
):
    stack = isolated_stack
    version = champion_version(stack)  # the fault gateway's: trained if there was none
    assert version is not None
    with_copy = {**stack.env, COPY_SETTING: str(tmp_path / "copy")}
    first, port = processes.start_gateway(tmp_path / "first", with_copy)
    try:
        url = f"http://127.0.0.1:{port}"
        processes.wait_until(lambda: serving(url, version), 60, "the first gateway serving")
        assert (tmp_path / "copy" / "champion.json").is_file()

        kill_tree(stack.services["mlflow"].pid)
        stack.services["mlflow"].wait(10)
        kill_tree(first.pid)  # the master and its workers, as the OOM killer or a lost node
        first.wait(10)
    finally:
        processes.stop(first)

    started = []
    try:
        killed_at = time.monotonic()
        again, port = processes.start_gateway(tmp_path / "again", with_copy)
        started.append(again)
        url = f"http://127.0.0.1:{port}"
        processes.wait_until(lambda: serving(url, version), 10, "serving from the copy", again)
        print(f"serving again {time.monotonic() - killed_at:.1f} s after the kill")  # noqa: T201
        ready = requests.get(f"{url}/health/ready", timeout=10).json()
        assert ready["failing"] == ["mlflow"] and ready["model_version"] == version, ready

        # Without a copy: nothing to serve until MLflow answers.
        without, port = processes.start_gateway(tmp_path / "without", stack.env)
        started.append(without)
        time.sleep(3)  # it looked for a champion several times (every 0.5 s)
        reply = predicts(f"http://127.0.0.1:{port}")
        assert reply.status_code == 503 and reply.json()["error"] == "no_model", reply.text
    finally:
        for process in started:
            processes.stop(process)
        restart_mlflow(stack)  # repaired for the tests after this one
