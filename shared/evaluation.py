"""The explain stage's work on a winner: SHAP importances, evaluation figures and the drift
reference of its training data. No tracking, no I/O: a fitted pipeline and the cleaned data in,
numbers and figures out."""

from dataclasses import dataclass
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from shared.drift import reference_profile
from shared.explaining import class_importances, explain
from shared.modeling import probabilities
from shared.params import PipelineParams
from shared.plots import (
    beeswarm,
    calibration_figure,
    category_effects,
    class_report_figure,
    confusion_figure,
    importance_bars,
    price_by_neighbourhood,
)


@dataclass
class Evaluation:
    """SHAP importances per class, on how many test rows, the figures by artifact path, and the
    training split's profile that drift checks compare requests with (shared.drift)."""

    sample_size: int
    importances: dict[str, dict[str, float]]
    figures: dict[str, Figure]
    drift_reference: dict[str, Any]


def evaluate_winner(pipeline: Any, clean: pd.DataFrame, params: PipelineParams) -> Evaluation:
    """SHAP on a sample of the test split, the evaluation plots, the drift reference."""
    split = params.split.rule().split(clean)
    settings = params.explain
    sample = split.x_test.sample(n=min(settings.sample_size, len(split.x_test)), random_state=0)
    explanation = explain(pipeline, sample)
    importances = class_importances(explanation)
    figures = {"explain/importance_bars.png": importance_bars(importances, settings.top_features)}
    for label in importances:
        figures[f"explain/beeswarm_{label.lower()}.png"] = beeswarm(
            explanation, label, settings.top_features
        )
        figures[f"explain/categories_{label.lower()}.png"] = category_effects(explanation, label)
    proba = probabilities(pipeline, split.x_test)
    predicted = proba.idxmax(axis=1)
    figures |= {
        "evaluation/calibration.png": calibration_figure(split.y_test, proba),
        "evaluation/confusion_matrix.png": confusion_figure(split.y_test, predicted),
        "evaluation/class_report.png": class_report_figure(split.y_test, predicted),
        "evaluation/price_by_neighbourhood.png": price_by_neighbourhood(clean),
    }
    reference = reference_profile(split.x_train, split.y_train)
    return Evaluation(len(sample), importances, figures, reference)
