"""The notebook's model, trained on the shipped data, scores what the notebook reported."""

import math

import pytest

pytestmark = pytest.mark.model


def test_notebook_rf_matches_the_notebook(grid_results):
    _, metrics = grid_results["notebook_rf"]
    assert metrics["accuracy"] == pytest.approx(0.6047, abs=0.015)
    assert metrics["roc_auc_ovr"] == pytest.approx(0.818, abs=0.015)


def test_shared_split_is_the_notebooks(default_split):
    assert len(default_split.x_test) == math.ceil(0.15 * 28642)  # the test split rounds up
    assert not set(default_split.x_test["id"]) & set(default_split.x_train["id"])
