"""Train stage: fit one candidate on the shared split, score it, log its scores as a child run.

The fitted model is staged (shared.staged_models), not logged as a model here: select logs the
winner's, and archive the others' once the winner is promoted and explained, so the decision
never waits for models that lose (logging the notebook's 500-tree forest alone takes seconds).
"""

from services.workers.context import StageContext
from shared.modeling import fit_candidate, score_on_test, single_row_latency_ms
from shared.pipeline import RunInputs, stage_named
from shared.queues import threads_per_worker
from shared.selection import REPORTED_METRICS
from shared.stage_records import Prepared, Trained


def summary(metrics: dict[str, float]) -> dict[str, float]:
    """The reported metrics, as a run's status shows them per candidate."""
    return {key: round(metrics[key], 6) for key in REPORTED_METRICS if key in metrics}


def fit_threads(context: StageContext) -> int | None:
    """Threads one fit may use: in a worker, the cores shared among the training workers side
    by side; in-process, None lets the candidate's own n_jobs decide."""
    if context.in_process:
        return None
    return threads_per_worker(context.redis, stage_named("train").queue)


def run_train(context: StageContext, run: RunInputs) -> Trained:
    """Fit, score, log the scores of and stage one candidate. A retry fits again: its run,
    the newest, supersedes any an earlier try finished, and its model replaces that one's."""
    tracker, params, run_id, name = context.tracker, context.params, run.run_id, run.candidate
    if name is None:
        raise ValueError("train runs per candidate: no candidate given")
    spec = params.train.candidate(name)
    prepared = run.get(Prepared)
    split = params.split.read(context.dataset_file(prepared))
    child = tracker.start_child_run(
        prepared.parent_run_id, run_id, "candidate", name, tags={"data_hash": prepared.data_hash}
    )
    try:
        tracker.log_values(
            child,
            {
                "estimator": spec.estimator,
                "features": spec.features,
                **spec.params,
                "test_size": params.split.test_size,
                "split_salt": params.split.salt,
            },
            {},
        )
        pipeline, fit_seconds = fit_candidate(spec, split, fit_threads(context))
        metrics = score_on_test(pipeline, split)
        metrics["predict_ms_single_row"] = single_row_latency_ms(pipeline, split.x_test)
        metrics["fit_seconds"] = fit_seconds
        digest, metrics["model_size_bytes"] = context.staged_models.put(  # pickled bytes
            prepared.parent_run_id, name, pipeline
        )
        tracker.log_values(child, {}, metrics)
    except BaseException:
        tracker.end_run(child, "FAILED")
        raise
    tracker.end_run(child)  # finished = scored and staged; select relies on both
    return Trained(mlflow_run_id=child, metrics=summary(metrics), staged_sha256=digest)
