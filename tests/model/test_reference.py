"""The notebook's model, trained on the shipped data, scores what the notebook reported; the
pipeline's own split holds out the notebook's share of listings, each on a side fixed by its id."""

import math

import pytest
from sklearn.model_selection import train_test_split

from shared.modeling import fit_candidate, probabilities, score_predictions
from shared.schema import MODEL_INPUTS, TARGET
from shared.splitting import Split

pytestmark = pytest.mark.model


def test_notebook_rf_on_the_notebooks_split_matches_the_notebook(params, clean):
    x_train, x_test, y_train, y_test = train_test_split(
        clean[["id", *MODEL_INPUTS]], clean[TARGET], test_size=0.15, random_state=1
    )
    pipeline, _ = fit_candidate(
        params.train.candidate("notebook_rf"), Split(x_train, x_test, y_train, y_test)
    )
    metrics = score_predictions(y_test, probabilities(pipeline, x_test))
    assert len(x_test) == math.ceil(0.15 * 28642)  # the notebook's split rounds up
    assert metrics["accuracy"] == pytest.approx(0.6047, abs=0.015)
    assert metrics["roc_auc_ovr"] == pytest.approx(0.818, abs=0.015)


def test_notebook_rf_on_the_pipelines_split_scores_like_the_notebook(grid_results):
    _, metrics = grid_results["notebook_rf"]
    assert metrics["accuracy"] == pytest.approx(0.6047, abs=0.02)
    assert metrics["roc_auc_ovr"] == pytest.approx(0.818, abs=0.02)


def test_the_pipelines_split_holds_out_the_notebooks_share_by_id(default_split, clean):
    assert len(default_split.x_test) == pytest.approx(0.15 * len(clean), rel=0.05)
    assert not set(default_split.x_test["id"]) & set(default_split.x_train["id"])
