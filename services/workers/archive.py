"""Archive stage: log the models of the candidates that did not win, once the winner is promoted
and explained, then delete the run's staged models.

Nobody waits for these models to decide or serve anything, so they are logged last, off the
path from `POST /retrain` to a promoted, explained champion. Each candidate run ends with its
model, as if it had been logged when it was trained.
"""

from typing import Any

from services.workers.context import StageContext, job_context, run_tracked
from services.workers.select import finished_candidates, logged_model
from shared.storage import remove_staged_models


def run_archive(context: StageContext, run_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Log every candidate's model not logged yet (a retry skips those an earlier try logged),
    then close the pipeline run: the run is complete."""
    candidates = finished_candidates(context, run_id, inputs["candidates"])
    uris = {
        name: logged_model(context, run_id, name, candidate)
        for name, candidate in candidates.items()
    }
    remove_staged_models(context.staging_dir, run_id)
    context.tracker.end_run(inputs["parent_run_id"])
    return {"models": uris}


def archive_job(run_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """RQ entry: archive the candidates' models of a run."""
    context = job_context()
    return run_tracked(
        context, run_id, "stage:archive", lambda: run_archive(context, run_id, inputs)
    )
