"""The one job every worker runs: perform a declared stage of a run, then enqueue what follows.

A stage's module holds only its work, `(StageContext, RunInputs) -> record`; which stage
comes next, and how its start, end or failure is recorded, is decided here from the
declaration (shared.pipeline), for every stage alike.
"""

import importlib
from collections.abc import Callable
from typing import Any

from services.workers.context import StageContext, job_context, run_tracked
from shared.pipeline import RunInputs, Stage, following, stage_named
from shared.queues import enqueue_following
from shared.runs import now
from shared.stage_records import Prepared, StageRecord

Work = Callable[[StageContext, RunInputs], StageRecord]


def work_of(stage: Stage) -> Work:
    """The stage's work function, imported from its declared dotted path."""
    module, name = stage.work.rsplit(".", 1)
    work: Work = getattr(importlib.import_module(module), name)
    return work


def run_inputs(context: StageContext, run_id: str, candidate: str | None) -> RunInputs:
    run = context.runs.get(run_id)
    if run is None:
        raise LookupError(f"run {run_id} has no status (expired or never created)")
    return RunInputs.of_run(run, candidate)


def mark_candidates_queued(
    context: StageContext, run_id: str, stage: Stage, names: list[str]
) -> None:
    """Record the candidates of a per-candidate stage as queued; a retry keeps their progress."""
    for name in names:
        field = stage.status_field(name)
        if not context.runs.field(run_id, field):
            context.runs.update(run_id, field, state="queued", enqueued_at=now())


def perform_stage(stage_name: str, run_id: str, candidate: str | None = None) -> dict[str, Any]:
    """RQ entry: run one stage (for one candidate, if it runs per candidate), recording it in
    the run's status, then enqueue what follows it."""
    stage = stage_named(stage_name)
    context = job_context()
    inputs = run_inputs(context, run_id, candidate)
    work = work_of(stage)
    outputs = run_tracked(
        context, run_id, stage.status_field(candidate), lambda: work(context, inputs).as_status()
    )
    if stage.per_candidate:  # what follows was queued with this stage's jobs, waiting for all
        return outputs
    candidates: list[str] = []
    for after in following(stage):
        if after.per_candidate:
            candidates = inputs.with_record(stage, outputs).candidates
            mark_candidates_queued(context, run_id, after, candidates)
    enqueue_following(context.redis, context.settings, stage, run_id, candidates)
    close_if_finished(context, run_id)
    return outputs


def close_if_finished(context: StageContext, run_id: str) -> None:
    """Close the run's MLflow parent run once every stage has finished. Stages side by side
    each record their own end before looking at the others', so the last to end sees them
    all finished (both may: closing twice is harmless)."""
    run = context.runs.get(run_id)
    if run is not None and run["state"] == "finished":
        context.tracker.end_run(RunInputs.of_run(run).get(Prepared).parent_run_id)
