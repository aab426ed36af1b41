"""Explain stage: SHAP importances and evaluation plots for a run's winner."""

from pathlib import Path
from typing import Any

from services.workers.context import StageContext, job_context, run_tracked
from shared.explaining import class_importances, explain
from shared.modeling import probabilities, split_dataset
from shared.plots import (
    beeswarm,
    calibration_figure,
    class_report_figure,
    confusion_figure,
    importance_bars,
    price_by_neighbourhood,
)
from shared.storage import read_parquet
from shared.tracking import IMPORTANCES_ARTIFACT


def run_explain(context: StageContext, run_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Log SHAP and evaluation artifacts on the winner's run; close the pipeline run."""
    tracker, params = context.tracker, context.params.explain
    winner_run = inputs["winner_run_id"]
    pipeline = tracker.load_model(inputs["model_uri"])
    clean = read_parquet(Path(inputs["processed_path"]))
    split = split_dataset(clean, context.params.split.test_size, context.params.split.random_state)
    sample = split.x_test.sample(n=min(params.sample_size, len(split.x_test)), random_state=0)
    explanation = explain(pipeline, sample)
    importances = class_importances(explanation)
    tracker.log_dict(
        winner_run, {"sample_size": len(sample), "mean_abs_shap": importances}, IMPORTANCES_ARTIFACT
    )
    tracker.log_figure(
        winner_run, importance_bars(importances, params.top_features), "explain/importance_bars.png"
    )
    for label in importances:
        tracker.log_figure(
            winner_run,
            beeswarm(explanation, label, params.top_features),
            f"explain/beeswarm_{label.lower()}.png",
        )
    proba = probabilities(pipeline, split.x_test)
    predicted = proba.idxmax(axis=1)
    tracker.log_figure(
        winner_run, calibration_figure(split.y_test, proba), "evaluation/calibration.png"
    )
    tracker.log_figure(
        winner_run, confusion_figure(split.y_test, predicted), "evaluation/confusion_matrix.png"
    )
    tracker.log_figure(
        winner_run, class_report_figure(split.y_test, predicted), "evaluation/class_report.png"
    )
    tracker.log_figure(
        winner_run, price_by_neighbourhood(clean), "evaluation/price_by_neighbourhood.png"
    )
    tracker.tag_version(inputs["version"], {"importances_artifact": IMPORTANCES_ARTIFACT})
    tracker.end_run(inputs["parent_run_id"])
    return {
        "winner_run_id": winner_run,
        "importances_artifact": IMPORTANCES_ARTIFACT,
        "explained_rows": len(sample),
    }


def explain_job(run_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """RQ entry: explain the winner of a run."""
    context = job_context()
    return run_tracked(
        context, run_id, "stage:explain", lambda: run_explain(context, run_id, inputs)
    )
