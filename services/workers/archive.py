"""Archive stage: log the models of the candidates that did not win, once the winner is
promoted (beside its explanation), then delete the run's staged models.

Nobody waits for these models to decide or serve anything, so they are logged last, off the
path from `POST /retrain` to a promoted, explained champion. Each candidate run ends with its
model, as if it had been logged when it was trained.
"""

from functools import partial

from services.workers.context import StageContext
from shared.pipeline import RunInputs
from shared.stage_records import Archived, Prepared


def run_archive(context: StageContext, run: RunInputs) -> Archived:
    """Log every candidate's model not logged yet (a retry skips those an earlier try logged),
    then delete the staged models."""
    tracker, prepared = context.tracker, run.get(Prepared)
    candidates = tracker.finished_candidates(run.run_id, prepared.candidates)
    uris = {
        name: tracker.ensure_model_logged(candidate, partial(context.staged_model, run, name))
        for name, candidate in candidates.items()
    }
    context.staged_models.remove(prepared.parent_run_id)
    return Archived(models=uris)
