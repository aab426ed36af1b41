"""A training job's process killed mid-job: the job runs again and the run still completes."""

import os
import re
import signal
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from services.stack import processes
from shared.launch import launch_run
from shared.queues import connect
from tests.integration.conftest import Stack, wait_for_run

pytestmark = pytest.mark.reliability
SHIPPED_DATA = "data/raw/listings.csv.gz"

# One candidate slow enough (several seconds, one thread) to be caught mid-fit.
SLOW_GRID = [
    {
        "name": "slow_rf",
        "estimator": "random_forest",
        "features": "notebook",
        "params": {"n_estimators": 300, "random_state": 0, "n_jobs": 1},
    }
]


def children(pid: int) -> list[int]:
    return [
        int(c)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for c in (task / "children").read_text().split()
    ]


def scheduler_pid(stack: Stack) -> int:
    """The train worker's scheduler process, as the worker logs it when it starts it."""
    log = stack.folder / "worker-train.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if found := re.search(r"Scheduler for train started with PID (\d+)", log.read_text()):
            return int(found.group(1))
        time.sleep(0.2)
    raise AssertionError("the train worker's scheduler never started")


def wait_for_horse(stack: Stack, run_id: str, timeout: float = 120) -> int:
    """The work-horse forked for the run's candidate: the train worker's other child."""
    scheduler = scheduler_pid(stack)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        candidate = (stack.runs().get(run_id) or {}).get("candidates", {}).get("slow_rf", {})
        horses = set(children(stack.workers["train"].pid)) - {scheduler}
        if candidate.get("state") == "started" and horses:
            return horses.pop()
        time.sleep(0.2)
    raise AssertionError(f"training of run {run_id} never started")


def test_killed_work_horse_is_retried_and_the_run_completes(isolated_stack: Stack):
    stack = isolated_stack
    stack.write_grid(SLOW_GRID)
    run_id = launch_run(connect(stack.settings.redis_url), stack.settings, SHIPPED_DATA)
    horse = wait_for_horse(stack, run_id)
    time.sleep(1.0)  # well inside the fit

    os.kill(horse, signal.SIGKILL)  # as the out-of-memory killer would

    run = wait_for_run(stack, run_id, timeout=180)
    assert run["state"] == "finished", run
    assert run["candidates"]["slow_rf"]["attempts"] == 2  # the status shows the retry
    client = MlflowClient(stack.settings.mlflow_tracking_uri)
    versions = client.search_model_versions(
        f"name = '{stack.settings.model_name}' and tags.pipeline_run_id = '{run_id}'"
    )
    assert len(versions) == 1


def test_killed_worker_and_horse_job_runs_again_on_a_survivor(isolated_stack: Stack):
    stack = isolated_stack
    stack.write_grid(SLOW_GRID)
    survivor = processes.start_worker("train", stack.folder, stack.env, "worker-train-2")
    try:
        run_id = launch_run(connect(stack.settings.redis_url), stack.settings, SHIPPED_DATA)
        horse = wait_for_horse(stack, run_id)
        killed_at = time.time()  # wall clock, as run status records times
        os.kill(stack.workers["train"].pid, signal.SIGKILL)
        os.kill(horse, signal.SIGKILL)

        run = wait_for_run(stack, run_id, timeout=240)

        assert run["state"] == "finished", run
        retried_after = run["candidates"]["slow_rf"]["started_at"] - (
            time.time() - (time.monotonic() - killed_at)
        )
        assert retried_after < 120  # found and run again within two minutes
        client = MlflowClient(stack.settings.mlflow_tracking_uri)
        versions = client.search_model_versions(
            f"name = '{stack.settings.model_name}' and tags.pipeline_run_id = '{run_id}'"
        )
        assert len(versions) == 1
    finally:
        processes.stop(survivor)
