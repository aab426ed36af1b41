"""Ending runs whose stage can no longer end by itself (its job died or vanished).

Every worker runs this between jobs, with RQ's own maintenance (every --maintenance-interval
seconds): after RQ has moved a dead worker's job to failed or retried it, whatever is still
recorded as running without a live job is failed for good, with the reason, and the run's
staged models and MLflow run are closed as for any failed run.
"""

import logging
from typing import Any

from services.workers.context import StageContext, fail_run
from shared.liveness import StageJob, dead_stages
from shared.pipeline import STAGES, Stage, following, stage_named
from shared.queues import job_id, job_view
from shared.runs import now

log = logging.getLogger(__name__)


def successor_job_id(stage: Stage, run_id: str) -> str | None:
    """The job a stage's success queues last: the last next stage's, or, when that runs per
    candidate, that of the stage waiting for them (queued after all the candidates' jobs)."""
    after = following(stage)
    if after and after[-1].per_candidate:
        after = following(after[-1])
    return job_id(run_id, after[-1].name) if after else None


def stage_jobs(run_id: str, candidates: list[str]) -> list[StageJob]:
    """Each status field of a run with its job, and the job its success queues."""
    jobs: list[StageJob] = []
    for stage in STAGES:
        if stage.per_candidate:  # their successor is queued with them, not by them
            jobs += [
                StageJob(stage.status_field(name), job_id(run_id, stage.name, name))
                for name in candidates
            ]
        else:
            jobs.append(
                StageJob(
                    stage.status_field(),
                    job_id(run_id, stage.name),
                    successor_job_id(stage, run_id),
                )
            )
    return jobs


def reconcile_run(context: StageContext, run: dict[str, Any]) -> dict[str, str]:
    """Fail the dead stages of one run; {field: reason} of those failed."""
    run_id = run["run_id"]
    records = {
        stage_named(name).status_field(): record
        for name, record in run["stages"].items()
        if not stage_named(name).per_candidate
    }
    records |= {f"candidate:{name}": r for name, r in run["candidates"].items()}
    jobs = stage_jobs(run_id, list(run["candidates"]))
    dead = dead_stages(run, records, jobs, lambda id_: job_view(context.redis, id_), now())
    for field, reason in dead.items():
        fail_run(context, run_id, field, reason)
    return dead


def reconcile_runs(context: StageContext) -> dict[str, dict[str, str]]:
    """Fail the dead stages of the recent runs not finished; run id -> {field: reason} of those
    failed. Failed runs too: a candidate killed for good fails the run through select, and its
    own record must not stay "started"."""
    failed: dict[str, dict[str, str]] = {}
    for run in context.runs.recent(limit=50):
        if run["state"] == "finished":
            continue
        try:
            if dead := reconcile_run(context, run):
                failed[run["run_id"]] = dead
        except Exception:  # noqa: BLE001 - one run's trouble must not stall the others
            log.exception("could not reconcile run %s", run.get("run_id"))
    return failed
