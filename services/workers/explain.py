"""Explain stage: SHAP importances and evaluation plots for a run's winner."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from services.workers.context import StageContext, job_context, run_tracked
from shared.explaining import class_importances, explain
from shared.modeling import probabilities, split_dataset
from shared.params import PipelineParams
from shared.plots import (
    beeswarm,
    calibration_figure,
    class_report_figure,
    confusion_figure,
    importance_bars,
    price_by_neighbourhood,
)
from shared.queues import enqueue_archive
from shared.storage import read_parquet
from shared.tracking import IMPORTANCES_ARTIFACT


@dataclass
class ExplainOutputs:
    """What the explain stage logs: SHAP importances per class and the figures by artifact path."""

    sample_size: int
    importances: dict[str, dict[str, float]]
    figures: dict[str, Figure]


def explain_winner(pipeline: Any, clean: pd.DataFrame, params: PipelineParams) -> ExplainOutputs:
    """SHAP on a sample of the test split and the evaluation plots; no tracking, no I/O."""
    split = split_dataset(clean, params.split.test_size, params.split.random_state)
    settings = params.explain
    sample = split.x_test.sample(n=min(settings.sample_size, len(split.x_test)), random_state=0)
    explanation = explain(pipeline, sample)
    importances = class_importances(explanation)
    figures = {"explain/importance_bars.png": importance_bars(importances, settings.top_features)}
    for label in importances:
        figures[f"explain/beeswarm_{label.lower()}.png"] = beeswarm(
            explanation, label, settings.top_features
        )
    proba = probabilities(pipeline, split.x_test)
    predicted = proba.idxmax(axis=1)
    figures |= {
        "evaluation/calibration.png": calibration_figure(split.y_test, proba),
        "evaluation/confusion_matrix.png": confusion_figure(split.y_test, predicted),
        "evaluation/class_report.png": class_report_figure(split.y_test, predicted),
        "evaluation/price_by_neighbourhood.png": price_by_neighbourhood(clean),
    }
    return ExplainOutputs(len(sample), importances, figures)


def run_explain(context: StageContext, run_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Log SHAP and evaluation artifacts on the winner's run."""
    tracker, winner_run = context.tracker, inputs["winner_run_id"]
    pipeline = tracker.load_model(inputs["model_uri"])
    clean = read_parquet(Path(inputs["processed_path"]))
    result = explain_winner(pipeline, clean, context.params)
    tracker.log_dict(
        winner_run,
        {"sample_size": result.sample_size, "mean_abs_shap": result.importances},
        IMPORTANCES_ARTIFACT,
    )
    for artifact, figure in result.figures.items():
        tracker.log_figure(winner_run, figure, artifact)
    if inputs["version"] is not None:  # None: the run registered nothing (an unchanged model)
        tracker.tag_version(inputs["version"], {"importances_artifact": IMPORTANCES_ARTIFACT})
    return {
        "winner_run_id": winner_run,
        "importances_artifact": IMPORTANCES_ARTIFACT,
        "explained_rows": result.sample_size,
    }


def explain_job(run_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """RQ entry: explain the winner of a run."""
    context = job_context()
    outputs = run_tracked(
        context, run_id, "stage:explain", lambda: run_explain(context, run_id, inputs)
    )
    enqueue_archive(context.redis, context.settings, run_id, inputs)
    return outputs
