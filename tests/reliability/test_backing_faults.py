"""PostgreSQL or the MLflow server dies mid-run: the stage waits or retries, the run completes,
no MLflow run is left running, and exactly one complete version is registered."""

import time

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from services.stack import processes
from shared.contracts import CHALLENGE_EXAMPLE
from shared.launch import launch_run
from shared.queues import connect
from shared.tracking import Tracker
from tests.integration.conftest import Stack, wait_for_run
from tests.integration.postgres import run_postgres, stop_postgres_immediately
from tests.reliability.faults import SHIPPED_DATA, SLOW_GRID, kill_tree, versions_of

pytestmark = pytest.mark.reliability
OUTAGE_SECONDS = 5


def wait_for_candidate(stack: Stack, run_id: str, ready: str, timeout: float = 120) -> None:
    """Until the run's candidate is fitting (ready="started") or has its scores logged
    (ready="scored": the model is being logged next)."""
    client = MlflowClient(stack.settings.mlflow_tracking_uri)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        candidate = (stack.runs().get(run_id) or {}).get("candidates", {}).get("slow_rf", {})
        if ready == "started" and candidate.get("state") == "started":
            return
        if ready == "scored":
            found = client.search_runs(
                [Tracker(stack.settings).experiment_id],
                f"tags.pipeline_run_id = '{run_id}' and tags.kind = 'candidate'",
            )
            if any("accuracy" in run.data.metrics for run in found):
                return
        time.sleep(0.1)
    raise AssertionError(f"candidate of run {run_id} never {ready}")


def assert_completed_once(stack: Stack, run_id: str) -> None:
    run = wait_for_run(stack, run_id, timeout=300)
    assert run["state"] == "finished", run
    versions = versions_of(stack, run_id)
    assert len(versions) == 1
    client = MlflowClient(stack.settings.mlflow_tracking_uri)
    running = client.search_runs(
        [Tracker(stack.settings).experiment_id],
        f"tags.pipeline_run_id = '{run_id}' and attributes.status = 'RUNNING'",
    )
    assert running == []
    # The registered version's artifacts are whole: it loads and predicts.
    model = Tracker(stack.settings).load_model(versions[0].source)
    example = pd.DataFrame([CHALLENGE_EXAMPLE]).drop(columns=["id"])
    assert model.predict_proba(example).shape == (1, 4)


def test_postgres_stopped_immediately_during_training(isolated_stack: Stack):
    stack = isolated_stack
    stack.write_grid(SLOW_GRID)
    run_id = launch_run(connect(stack.settings.redis_url), stack.settings, SHIPPED_DATA)
    wait_for_candidate(stack, run_id, "started")

    folder = stack.folder / "postgres"
    stop_postgres_immediately(folder, stack.services["postgres"])
    time.sleep(OUTAGE_SECONDS)
    stack.services["postgres"] = run_postgres(folder, stack.ports["postgres"])

    assert_completed_once(stack, run_id)


def test_mlflow_killed_while_a_model_is_logged(isolated_stack: Stack):
    stack = isolated_stack
    stack.write_grid(SLOW_GRID)
    run_id = launch_run(connect(stack.settings.redis_url), stack.settings, SHIPPED_DATA)
    wait_for_candidate(stack, run_id, "scored")

    kill_tree(stack.services["mlflow"].pid)  # the server and its workers, mid-upload
    stack.services["mlflow"].wait(10)
    time.sleep(OUTAGE_SECONDS)
    stack.services["mlflow"], _ = processes.start_mlflow(
        stack.folder / "mlflow",
        f"postgresql+psycopg2://postgres@127.0.0.1:{stack.ports['postgres']}/mlflow",
        stack.ports["mlflow"],
    )

    assert_completed_once(stack, run_id)
