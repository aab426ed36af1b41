"""The MLflow server the stack starts (the same command and settings as `make run` and
compose): it serves the registry to the stack's account only, and nothing else burns the cores
the workers train on."""

import os
from pathlib import Path

import pytest
import requests

from services.stack import processes
from shared.settings import MLFLOW_USERNAME

pytestmark = pytest.mark.integration


def _tree(pid: int) -> list[int]:
    return [pid, *(p for child in processes.children(pid) for p in _tree(child))]


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def test_the_mlflow_server_runs_no_job_runners(stack):
    """MLflow 3 starts server-side job runners by default (Huey consumers for GenAI scorers
    and trace archival) that poll without pause, about one core of this machine's two; the
    project runs none of their jobs."""
    commands = [_command(pid) for pid in _tree(stack.services["mlflow"].pid)]

    assert any("uvicorn" in command for command in commands), commands  # the tree was read
    runners = [c for c in commands if "huey" in c or "mlflow.server.jobs" in c]
    assert runners == []


def test_the_mlflow_server_answers_401_without_the_stacks_login(stack):
    uri = stack.settings.mlflow_tracking_uri
    search = f"{uri}/api/2.0/mlflow/experiments/search?max_results=1"
    protected = [
        search,
        f"{uri}/",  # the UI
        f"{uri}/api/2.0/mlflow/registered-models/search",
        f"{uri}/api/2.0/mlflow-artifacts/artifacts",  # the proxied artifacts
    ]
    for url in protected:
        assert requests.get(url, timeout=10).status_code == 401, url
    assert requests.get(search, auth=(MLFLOW_USERNAME, "guessed"), timeout=10).status_code == 401
    login = (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"])
    assert login[0] == MLFLOW_USERNAME
    assert requests.get(search, auth=login, timeout=10).status_code == 200
    # Health checks (compose's, Kubernetes' probes, the stack's waits) need no login.
    assert requests.get(f"{uri}/health", timeout=10).status_code == 200
