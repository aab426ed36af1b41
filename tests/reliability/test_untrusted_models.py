"""A model that runs code as it loads, registered and made champion by anyone who can reach
MLflow, is never loaded: not by the gateway's refresh, not by select's champion check. The
previous champion keeps serving, /health/ready names the refused version, and the next run
replaces it."""

import time
from pathlib import Path

import mlflow
import mlflow.sklearn
import pytest
import requests
from mlflow.tracking import MlflowClient

from services.stack import processes
from shared.contracts import CHALLENGE_EXAMPLE
from shared.launch import launch_run
from shared.queues import connect
from tests.integration.conftest import Stack, wait_for_run
from tests.reliability.faults import QUICK_GRID, champion_version
from tests.unit.test_model_files import WritesMarker

pytestmark = pytest.mark.reliability


def register_pickled_champion(stack: Stack, marker: Path) -> str:
    """Log, register and alias champion a pickled model whose unpickling writes marker."""
    uri = stack.settings.mlflow_tracking_uri
    client = MlflowClient(uri)
    mlflow.set_tracking_uri(uri)
    experiment = client.get_experiment_by_name(stack.settings.experiment_name)
    run = client.create_run(experiment.experiment_id, run_name="hostile")
    info = mlflow.sklearn.log_model(
        WritesMarker(marker),
        name="model",
        run_id=run.info.run_id,
        serialization_format="pickle",
        pip_requirements=[],  # inferring them would load the model in a subprocess
    )
    client.set_terminated(run.info.run_id)
    version = mlflow.register_model(info.model_uri, stack.settings.model_name)
    client.set_registered_model_alias(stack.settings.model_name, "champion", version.version)
    return str(version.version)


def test_a_pickled_champion_is_never_loaded_and_the_previous_keeps_serving(
    isolated_stack: Stack, fault_gateway: str, tmp_path: Path
):
    stack = isolated_stack
    served = requests.get(f"{fault_gateway}/health/ready", timeout=10).json()["model_version"]
    marker = tmp_path / "code-ran"
    hostile = register_pickled_champion(stack, marker)
    assert not marker.exists()  # logging and registering it ran nothing

    def refused() -> bool:
        error = requests.get(f"{fault_gateway}/health/ready", timeout=10).json()["champion_error"]
        return bool(error) and f"version {hostile}" in error

    processes.wait_until(refused, 30, f"the gateway refusing version {hostile}")
    time.sleep(5)  # more refresh polls (every 2 s): each one refuses it again
    ready = requests.get(f"{fault_gateway}/health/ready", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["model_version"] == served
    assert "stored as 'pickle', not skops" in ready.json()["champion_error"]
    answer = requests.post(f"{fault_gateway}/predict", json=CHALLENGE_EXAMPLE, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["model_version"] == served
    assert not marker.exists()

    # Select checks the champion before deciding: it cannot compare with it, so it compares the
    # new model with the last promoted version it can (the one still serving) and says so;
    # the run finishes and its model replaces the refused one.
    stack.write_grid(QUICK_GRID)
    run = wait_for_run(stack, launch_run(connect(stack.settings.redis_url), stack.settings,
                                         "data/raw/listings.csv.gz"))  # fmt: skip
    assert run["state"] == "finished", run
    assert not marker.exists()
    select = run["stages"]["select"]
    assert select["champion_version"] == hostile
    assert select["compared_version"] == served
    assert f"compared with v{served}, the last promoted version that could be" in select["reason"]
    # Passed over before anything of it is read: it records no split rule (nor anything else
    # a run records), so its training listings are unknown.
    assert f"v{hostile} trained before listings were split by id" in select["reason"]
    assert champion_version(stack) == select["version"]
