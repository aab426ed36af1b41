"""A stage's work-horse killed on its last attempt (out of memory, SIGKILL) records nothing
itself: the run still ends failed with the reason within the bound, and the next retrain is
accepted. The same holds for a run recorded without its job."""

import os
import signal
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import requests

from shared.launch import launch_run
from shared.pipeline import QUEUES, STAGES
from shared.queues import connect
from shared.runs import RunStore, now
from shared.settings import PROJECT_DIR
from tests.integration.conftest import GATEWAY_TOKEN, Stack, wait_for_run
from tests.reliability.faults import (
    QUICK_GRID,
    fresh_slow_grid,
    replace_worker,
    wait_for_jobs_to_end,
)

pytestmark = pytest.mark.reliability
AUTH = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
# README's bound: a run whose job died ends failed within two minutes.
BOUND_SECONDS = 120
# Caught while each runs: every stage's field, in the pipeline's order (the slow forest's, for
# the stage that trains each candidate). Its fit and its model's logging (archive) take
# seconds; the others about one.
VICTIMS = [stage.status_field("slow_rf") for stage in STAGES]


def kill_when_started(stack: Stack, run_id: str, field: str, timeout: float = 180) -> float:
    """SIGKILL the work-horse running the field as soon as it records itself started; when."""
    kind, name = field.split(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = stack.runs().get(run_id) or {}
        record = run.get("stages" if kind == "stage" else "candidates", {}).get(name, {})
        if record.get("state") == "started":
            os.kill(int(record["pid"]), signal.SIGKILL)
            return time.time()
        assert run.get("state") not in ("finished", "failed"), (field, run)
        time.sleep(0.02)
    raise AssertionError(f"{field} of {run_id} never started")


def wait_for_failed(stack: Stack, run_id: str, field: str) -> dict:
    """The run once the field's own record says failed (a candidate's run may fail sooner,
    through select)."""
    kind, name = field.split(":")
    deadline = time.monotonic() + BOUND_SECONDS + 60
    while time.monotonic() < deadline:
        run = stack.runs().get(run_id) or {}
        record = run.get("stages" if kind == "stage" else "candidates", {}).get(name, {})
        if record.get("state") == "failed":
            return run
        time.sleep(0.5)
    raise AssertionError(f"{field} of {run_id} not failed: {stack.runs().get(run_id)}")


def retrain(gateway: str) -> requests.Response:
    return requests.post(f"{gateway}/retrain", json={"reason": "after"}, headers=AUTH, timeout=30)


@pytest.fixture
def no_retries(isolated_stack: Stack):
    """Workers whose jobs get no retry, so that every attempt is the last."""
    for queue in QUEUES:
        replace_worker(isolated_stack, queue, {"PRICE_CATEGORY_JOB_RETRIES": "0"})
    yield
    for queue in QUEUES:
        replace_worker(isolated_stack, queue)


def test_each_stage_killed_on_its_last_attempt_fails_the_run_and_frees_retrain(
    isolated_stack: Stack, fault_gateway: str, no_retries, tmp_path: Path
):
    stack = isolated_stack
    stack.write_grid([*fresh_slow_grid(), *QUICK_GRID])
    # Prep is caught cleaning a file never cleaned before (seconds), launched with no retry.
    raw = tmp_path / "listings.csv"
    pd.read_csv(PROJECT_DIR / "data" / "raw" / "listings.csv.gz").to_csv(raw, index=False)
    no_retry = stack.settings.model_copy(update={"job_retries": 0})
    run_id = launch_run(connect(stack.settings.redis_url), no_retry, str(raw))
    for field, following in zip(VICTIMS, [*VICTIMS[1:], None], strict=True):
        killed_at = kill_when_started(stack, run_id, field)

        run = wait_for_failed(stack, run_id, field)

        ended_in = time.time() - killed_at
        assert run["state"] == "failed", (field, run)
        kind, name = field.split(":")
        record = run["stages" if kind == "stage" else "candidates"][name]
        assert "worker died on attempt 1" in record["error"], record
        assert "signal 9" in record["error"], record
        assert ended_in < BOUND_SECONDS, (field, ended_in)
        print(f"{field}: run failed {ended_in:.0f} s after its work-horse was killed")  # noqa: T201
        # Nothing staged is left behind once the run's other jobs have ended (a candidate killed
        # for good fails the run while the next one may still be training and staging).
        wait_for_jobs_to_end(stack, run_id)
        staged = stack.staged_models(run_id)
        assert staged == [], (field, staged, stack.runs().get(run_id))
        # The next retrain is accepted (no 409) and, unless it is the last, the next victim.
        stack.write_grid([*fresh_slow_grid(), *QUICK_GRID])
        accepted = retrain(fault_gateway)
        assert accepted.status_code == 202, (field, accepted.text)
        run_id = accepted.json()["run_id"]
        if following is None:
            assert wait_for_run(stack, run_id)["state"] == "finished"


def test_a_run_recorded_without_its_job_is_failed_within_the_bound(isolated_stack: Stack):
    stack = isolated_stack
    runs = RunStore(connect(stack.settings.redis_url), stack.settings.run_ttl_seconds)
    orphan = str(uuid.uuid4())
    runs.create(orphan, {"data_path": "data/raw/listings.csv.gz"})  # no job: as a crash leaves
    runs.update(orphan, "stage:prep", enqueued_at=now() - 61)  # past the grace for a new job
    started = time.monotonic()

    run = wait_for_run(stack, orphan, timeout=BOUND_SECONDS)

    assert run["state"] == "failed"
    assert f"its job {orphan}-prep is gone" in run["stages"]["prep"]["error"]
    print(f"orphan run failed after {time.monotonic() - started:.0f} s")  # noqa: T201


def test_launching_a_run_records_it_only_with_its_job(isolated_stack: Stack, monkeypatch):
    stack = isolated_stack
    redis = connect(stack.settings.redis_url)
    before = redis.zcard("runs")

    def enqueue_fails(*_args, **_kwargs):
        raise ConnectionError("Redis went away between the two writes")

    monkeypatch.setattr("shared.launch.enqueue_stage", enqueue_fails)
    with pytest.raises(ConnectionError):
        launch_run(redis, stack.settings, "data/raw/listings.csv.gz")

    assert redis.zcard("runs") == before  # no run recorded, so none can look queued forever
