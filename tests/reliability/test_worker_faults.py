"""A training job's process killed mid-job: the job runs again and the run still completes."""

import os
import signal
import time
from pathlib import Path

import pytest

from services.stack import processes
from shared.launch import launch_run
from shared.queues import connect
from tests.integration.conftest import Stack, wait_for_run
from tests.reliability.faults import (
    SHIPPED_DATA,
    TwoTrainWorkers,
    fresh_slow_grid,
    replace_worker,
    versions_of,
    wait_for_horse,
)

pytestmark = pytest.mark.reliability


def test_killed_work_horse_is_retried_and_the_run_completes(isolated_stack: Stack):
    stack = isolated_stack
    stack.write_grid(fresh_slow_grid())
    run_id = launch_run(connect(stack.settings.redis_url), stack.settings, SHIPPED_DATA)
    _, horse = wait_for_horse(stack, run_id, [stack.workers["train"].pid])
    time.sleep(1.0)  # well inside the fit

    os.kill(horse, signal.SIGKILL)  # as the out-of-memory killer would

    run = wait_for_run(stack, run_id, timeout=180)
    assert run["state"] == "finished", run
    assert run["candidates"]["slow_rf"]["attempts"] == 2  # the status shows the retry
    assert len(versions_of(stack, run_id)) == 1


def test_killed_parent_worker_leaves_its_horse_to_finish_one_version_one_explain(
    isolated_stack: Stack,
):
    stack = isolated_stack
    stack.write_grid(fresh_slow_grid())
    with TwoTrainWorkers(stack) as workers:
        run_id = launch_run(connect(stack.settings.redis_url), stack.settings, SHIPPED_DATA)
        parent, _ = workers.horse_of(run_id)

        os.kill(parent, signal.SIGKILL)  # the horse keeps running

        run = wait_for_run(stack, run_id, timeout=240)
        assert run["state"] == "finished", run
        assert len(versions_of(stack, run_id)) == 1
        assert run["stages"]["explain"]["attempts"] == 1  # one explain job
        assert run["stages"]["select"]["state"] == "finished"


def test_killed_worker_and_horse_job_runs_again_on_a_survivor(isolated_stack: Stack):
    stack = isolated_stack
    stack.write_grid(fresh_slow_grid())
    with TwoTrainWorkers(stack) as workers:
        run_id = launch_run(connect(stack.settings.redis_url), stack.settings, SHIPPED_DATA)
        parent, horse = workers.horse_of(run_id)
        killed_at = time.time()  # wall clock, as run status records times
        os.kill(parent, signal.SIGKILL)
        os.kill(horse, signal.SIGKILL)

        run = wait_for_run(stack, run_id, timeout=240)

        assert run["state"] == "finished", run
        retried_after = run["candidates"]["slow_rf"]["started_at"] - killed_at
        assert retried_after < 120  # found and run again within two minutes
        assert len(versions_of(stack, run_id)) == 1


def running(pid: int) -> bool:
    """Whether the process exists and has not ended (a zombie has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_killed_workers_scheduler_ends_with_it(isolated_stack: Stack):
    stack = isolated_stack
    # A fresh idle worker: its one child is its scheduler, once it holds the queue's lock
    # (at start, or at a maintenance pass once a former scheduler's lock has lapsed).
    worker = replace_worker(stack, "explain")
    processes.wait_until(lambda: len(processes.children(worker.pid)) == 1, 150, "a scheduler")
    [scheduler] = processes.children(worker.pid)

    os.kill(worker.pid, signal.SIGKILL)

    processes.wait_until(lambda: not running(scheduler), 15, f"scheduler {scheduler} to end")
