"""Stages that cannot succeed: the run fails with its reason, nothing hangs, and the champion
keeps answering predictions throughout."""

from pathlib import Path

import pytest

from shared.launch import launch_run
from shared.queues import connect
from tests.integration.conftest import Stack, wait_for_run
from tests.reliability.faults import (
    QUICK_GRID,
    SHIPPED_DATA,
    SLOW_GRID,
    PredictionLoop,
    champion_version,
    replace_worker,
    versions_of,
    wait_for_jobs_to_end,
)
from tests.unit.raw_fuzz import BROKEN_FILES

pytestmark = pytest.mark.reliability

# LightGBM rejects num_leaves=1 when fitting: an error no retry can fix, but not one our
# code recognises as bad config, so the job is retried until its retries run out. Beside it a
# candidate that trains fine, so the failed run has a staged model to clean up.
FAILING_GRID = [
    *QUICK_GRID,
    {
        "name": "broken",
        "estimator": "lightgbm",
        "features": "all",
        "params": {"n_estimators": 5, "num_leaves": 1, "verbose": -1},
    },
]


def test_corrupt_input_and_exhausted_retries_fail_the_run_while_predictions_go_on(
    isolated_stack: Stack, fault_gateway: str, tmp_path: Path
):
    stack = isolated_stack
    redis = connect(stack.settings.redis_url)
    assert stack.runs().active() is None  # no earlier run may promote meanwhile
    champion = champion_version(stack)
    corrupt = tmp_path / "corrupt.csv"
    corrupt.write_text("id,price\n1,$75.00\n")

    with PredictionLoop(fault_gateway) as predictions:
        stack.write_grid(QUICK_GRID)
        bad_input = wait_for_run(stack, launch_run(redis, stack.settings, str(corrupt)))
        stack.write_grid(FAILING_GRID)
        exhausted_id = launch_run(redis, stack.settings, SHIPPED_DATA)
        exhausted = wait_for_run(stack, exhausted_id)

    assert bad_input["state"] == "failed"
    assert bad_input["stages"]["prep"]["attempts"] == 1  # bad data is not retried
    assert "lack required column(s)" in bad_input["stages"]["prep"]["error"]
    assert "neighbourhood_group_cleansed" in bad_input["stages"]["prep"]["error"]

    assert exhausted["state"] == "failed"
    broken = exhausted["candidates"]["broken"]
    assert broken["state"] == "failed"
    assert broken["attempts"] == 1 + len(stack.settings.retry_intervals)
    assert "num_leaves" in broken["error"]
    assert exhausted["stages"]["train"]["state"] == "failed"
    assert exhausted["candidates"]["quick_lgbm"]["state"] == "finished"
    assert versions_of(stack, exhausted_id) == []
    assert stack.staged_models(exhausted_id) == []  # its staged model is deleted

    assert champion_version(stack) == champion
    assert predictions.total > 20
    assert predictions.failures == {}


def test_training_past_its_timeout_is_retried_then_failed_never_left_started(
    isolated_stack: Stack,
):
    stack = isolated_stack
    # The prep stage enqueues training, so its worker's settings set the training timeout.
    replace_worker(stack, "prep", {"PRICE_CATEGORY_TRAIN_TIMEOUT": "2"})
    try:
        # Far past 2 s on any machine (500 trees took under 2 s once the suite had a core).
        stack.write_grid(
            [{**c, "params": {**c["params"], "n_estimators": 5000}} for c in SLOW_GRID]
        )
        run = wait_for_run(
            stack, launch_run(connect(stack.settings.redis_url), stack.settings, SHIPPED_DATA)
        )
    finally:
        replace_worker(stack, "prep")

    assert run["state"] == "failed"
    slow = run["candidates"]["slow_rf"]
    assert slow["state"] == "failed"
    assert slow["attempts"] == 1 + len(stack.settings.retry_intervals)
    assert "timeout" in slow["error"].lower()
    # Select still runs after the failed candidate (to clean up); once it has ended, no stage
    # is left looking started.
    ended = wait_for_jobs_to_end(stack, run["run_id"])
    assert all(stage["state"] != "started" for stage in ended["stages"].values()), ended


def test_broken_raw_files_fail_their_runs_and_never_crash_the_prep_worker(
    isolated_stack: Stack, tmp_path: Path
):
    stack = isolated_stack
    redis = connect(stack.settings.redis_url)
    worker_pid = stack.workers["prep"].pid
    runs = {}
    for kind, (write, suffix, message) in BROKEN_FILES.items():
        raw = tmp_path / f"{kind.replace(' ', '-')}{suffix}"
        write(raw)
        runs[kind] = (launch_run(redis, stack.settings, str(raw)), message)

    for kind, (run_id, message) in runs.items():
        run = wait_for_run(stack, run_id, timeout=60)
        assert run["state"] == "failed", (kind, run)
        assert message in run["stages"]["prep"]["error"], (kind, run["stages"]["prep"])
        assert run["stages"]["prep"]["attempts"] == 1
    assert stack.workers["prep"].pid == worker_pid  # never restarted
    assert stack.workers["prep"].poll() is None
