"""Which stages of a run have no live job: every status a job can be in, against each record."""

import pytest

from shared.liveness import LOST_JOB_GRACE_SECONDS, JobView, StageJob, dead_stages

NOW = 10_000.0
RUN = {"run_id": "r", "created_at": NOW - 5}
JOBS = [
    StageJob("stage:prep", "r-prep", "r-select"),
    StageJob("candidate:a", "r-train-a"),
    StageJob("stage:select", "r-select", "r-explain"),
]
KILLED = "Work-horse terminated unexpectedly; waitpid returned 9 (signal 9); "


def check(records: dict, statuses: dict) -> dict[str, str]:
    def lookup(job_id: str) -> JobView:
        status = statuses.get(job_id)
        return JobView(status, KILLED if status == "failed" else "")

    return dead_stages(RUN, records, JOBS, lookup, NOW)


def started(attempts: int = 1, at: float = NOW - 5) -> dict:
    return {"state": "started", "attempts": attempts, "started_at": at}


@pytest.mark.parametrize("status", ["queued", "started", "scheduled", "deferred", "finished"])
def test_a_stage_whose_job_lives_or_waits_for_a_retry_is_left_alone(status):
    assert check({"stage:prep": started()}, {"r-prep": status}) == {}


@pytest.mark.parametrize("status", ["failed", "stopped", "canceled"])
def test_a_started_stage_whose_job_died_for_good_fails_with_its_attempts(status):
    dead = check({"stage:prep": started(attempts=3)}, {"r-prep": status})
    assert list(dead) == ["stage:prep"]
    assert "worker died on attempt 3" in dead["stage:prep"]


def test_the_job_error_is_the_reason_shown():
    dead = check({"candidate:a": started()}, {"r-train-a": "failed"})
    assert dead["candidate:a"].endswith(KILLED)


@pytest.mark.parametrize(
    ("age", "lost"), [(LOST_JOB_GRACE_SECONDS - 1, False), (LOST_JOB_GRACE_SECONDS + 1, True)]
)
def test_a_missing_job_is_lost_only_after_the_grace(age, lost):
    records = {"stage:prep": {"state": "queued", "enqueued_at": NOW - age}}
    dead = check(records, {})
    assert ("stage:prep" in dead) is lost
    if lost:
        assert "r-prep is gone" in dead["stage:prep"]


def test_a_queued_record_without_times_counts_from_the_run_creation():
    old_run = {**RUN, "created_at": NOW - LOST_JOB_GRACE_SECONDS - 1}
    dead = dead_stages(
        old_run, {"candidate:a": {"state": "queued"}}, JOBS, lambda _: JobView(None), NOW
    )
    assert list(dead) == ["candidate:a"]


def test_a_stage_killed_after_its_work_but_before_queuing_the_next_fails():
    records = {"stage:prep": {"state": "finished", "attempts": 1}}
    dead = check(records, {"r-prep": "failed"})
    assert "before queuing the next stage" in dead["stage:prep"]
    # Had it queued the next stage, the run goes on: nothing is failed.
    assert check(records, {"r-prep": "failed", "r-select": "deferred"}) == {}


@pytest.mark.parametrize("state", ["failed", "pending", "finished"])
def test_ended_or_not_yet_queued_stages_are_not_failed_again(state):
    assert check({"stage:select": {"state": state}}, {"r-select": None, "r-prep": "finished"}) == {}
