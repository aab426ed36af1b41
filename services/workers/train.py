"""Train stage: fit one candidate on the shared split, score it, log its scores as a child run.

The fitted model is staged on disk, not logged to MLflow here: select logs the winner's, and
archive the others' once the winner is promoted and explained, so the decision never waits
for models that lose (logging the notebook's 500-tree forest alone takes seconds).
"""

from pathlib import Path
from typing import Any

from services.workers.context import StageContext, job_context, run_tracked
from shared.modeling import (
    Split,
    fit_candidate,
    probabilities,
    score_predictions,
    single_row_latency_ms,
    split_dataset,
)
from shared.params import PipelineParams
from shared.queues import threads_per_training_worker
from shared.selection import REPORT_COLUMNS
from shared.storage import read_parquet, staged_model_path, write_staged_model

# Metrics a run's status shows per candidate (the report's); MLflow holds them all.
SUMMARY_METRICS = tuple(key for key, *_ in REPORT_COLUMNS)


def load_split(params: PipelineParams, processed_path: str) -> Split:
    """The run's shared train/test split of the cleaned dataset."""
    return split_dataset(
        read_parquet(Path(processed_path)), params.split.test_size, params.split.random_state
    )


def summary(metrics: dict[str, float]) -> dict[str, float]:
    return {key: round(metrics[key], 6) for key in SUMMARY_METRICS if key in metrics}


def run_train(
    context: StageContext,
    run_id: str,
    name: str,
    inputs: dict[str, Any],
    threads: int | None = None,
) -> dict[str, Any]:
    """Fit, score, log the scores of and stage one candidate; one finished by an earlier try
    (its run finished, its model staged) is kept.

    threads caps the fit's threads; None lets the candidate's own n_jobs decide.
    """
    tracker, params = context.tracker, context.params
    staged = staged_model_path(context.staging_dir, run_id, name)
    done = tracker.finished_child_run(run_id, "candidate", name)
    if done is not None and staged.is_file():
        return {"mlflow_run_id": done.info.run_id, "metrics": summary(done.data.metrics)}
    spec = params.train.candidate(name)
    split = load_split(params, inputs["processed_path"])
    child = tracker.start_child_run(
        inputs["parent_run_id"], run_id, "candidate", name, tags={"data_hash": inputs["data_hash"]}
    )
    try:
        tracker.log_values(
            child,
            {
                "estimator": spec.estimator,
                "features": spec.features,
                **spec.params,
                "test_size": params.split.test_size,
                "split_random_state": params.split.random_state,
            },
            {},
        )
        pipeline, fit_seconds = fit_candidate(spec, split, threads)
        metrics = score_predictions(split.y_test, probabilities(pipeline, split.x_test))
        metrics["predict_ms_single_row"] = single_row_latency_ms(pipeline, split.x_test)
        metrics["fit_seconds"] = fit_seconds
        metrics["model_size_bytes"] = write_staged_model(pipeline, staged)  # pickled bytes
        tracker.log_values(child, {}, metrics)
    except BaseException:
        tracker.end_run(child, "FAILED")
        raise
    tracker.end_run(child)  # finished = scored and staged; select relies on both
    return {"mlflow_run_id": child, "metrics": summary(metrics)}


def train_job(run_id: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """RQ entry: train one candidate of a run."""
    context = job_context()
    threads = threads_per_training_worker(context.redis)  # workers side by side share cores
    return run_tracked(
        context,
        run_id,
        f"candidate:{name}",
        lambda: run_train(context, run_id, name, inputs, threads),
    )
