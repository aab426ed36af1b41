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
from tests.reliability.faults import SHIPPED_DATA, fresh_slow_grid, kill_tree, versions_of

pytestmark = pytest.mark.reliability
OUTAGE_SECONDS = 5


def record_of(stack: Stack, run_id: str, field: str) -> dict:
    kind, name = field.split(":")
    run = stack.runs().get(run_id) or {}
    return run.get("stages" if kind == "stage" else "candidates", {}).get(name, {})


def mlflow_log_size(stack: Stack) -> int:
    return (stack.folder / "mlflow" / "mlflow.log").stat().st_size


def mlflow_logged_since(stack: Stack, offset: int, text: str) -> bool:
    with (stack.folder / "mlflow" / "mlflow.log").open("rb") as log:
        log.seek(offset)
        return text.encode() in log.read()


def assert_met(record: dict, fault_at: float, repaired_at: float) -> None:
    """The stage met the fault: it was at work when it struck (or was tried again because of
    it), and it could only end once the fault was repaired."""
    assert record["attempts"] > 1 or record["started_at"] < fault_at, record
    assert record["ended_at"] > repaired_at, record


def wait_for_stage(stack: Stack, run_id: str, field: str, timeout: float = 120) -> None:
    """Until the run's stage or candidate (e.g. "stage:select", "candidate:slow_rf") started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = stack.runs().get(run_id) or {}
        kind, name = field.split(":")
        record = run.get("stages" if kind == "stage" else "candidates", {}).get(name, {})
        if record.get("state") == "started":
            return
        time.sleep(0.1)
    raise AssertionError(f"{field} of run {run_id} never started")


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
    stack.write_grid(fresh_slow_grid())
    run_id = launch_run(connect(stack.settings.redis_url), stack.settings, SHIPPED_DATA)
    wait_for_stage(stack, run_id, "candidate:slow_rf")

    folder = stack.folder / "postgres"
    log_offset = mlflow_log_size(stack)
    stop_postgres_immediately(folder, stack.services["postgres"])
    stopped_at = time.time()
    # Down until the stage's tracking calls reach it: the fit ends, the stage logs its scores,
    # and MLflow fails on the missing database (the client retries meanwhile).
    deadline = time.monotonic() + 120
    while not mlflow_logged_since(stack, log_offset, "OperationalError"):
        assert time.monotonic() < deadline, "MLflow never met the stopped database"
        time.sleep(0.5)
    time.sleep(OUTAGE_SECONDS)
    stack.services["postgres"] = run_postgres(folder, stack.ports["postgres"])
    restarted_at = time.time()

    assert_completed_once(stack, run_id)
    # The fault was met: the candidate was training when the database stopped, and could only
    # finish once it was back.
    assert_met(record_of(stack, run_id, "candidate:slow_rf"), stopped_at, restarted_at)


def test_mlflow_killed_while_a_model_is_logged(isolated_stack: Stack):
    stack = isolated_stack
    stack.write_grid(fresh_slow_grid())
    run_id = launch_run(connect(stack.settings.redis_url), stack.settings, SHIPPED_DATA)
    # Select logs the winner's model (a 500-tree forest: seconds of serialising and uploading).
    wait_for_stage(stack, run_id, "stage:select")

    kill_tree(stack.services["mlflow"].pid)  # the server and its workers, mid-upload
    killed_at = time.time()
    stack.services["mlflow"].wait(10)
    time.sleep(OUTAGE_SECONDS)
    stack.services["mlflow"], _ = processes.start_mlflow(
        stack.folder / "mlflow",
        f"postgresql+psycopg2://postgres@127.0.0.1:{stack.ports['postgres']}/mlflow",
        stack.ports["mlflow"],
    )
    restarted_at = time.time()

    assert_completed_once(stack, run_id)
    # The fault was met: select was at work when MLflow died, and ended only after it was back.
    assert_met(record_of(stack, run_id, "stage:select"), killed_at, restarted_at)
