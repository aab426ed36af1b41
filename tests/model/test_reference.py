"""The notebook's model, trained on the shipped data, scores what the notebook reported."""

import math

import pytest

from shared.cleaning import clean_listings
from shared.modeling import fit_candidate, probabilities, score_predictions, split_dataset
from shared.params import load_params
from shared.settings import PROJECT_DIR
from shared.storage import read_raw_listings

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def default_split():
    params = load_params(PROJECT_DIR / "config" / "pipeline.yaml")
    clean, _ = clean_listings(read_raw_listings(PROJECT_DIR / "data/raw/listings.csv.gz"))
    return params, split_dataset(clean, params.split.test_size, params.split.random_state)


def test_notebook_rf_matches_the_notebook(default_split):
    params, split = default_split
    pipeline, _ = fit_candidate(params.train.candidate("notebook_rf"), split)
    metrics = score_predictions(split.y_test, probabilities(pipeline, split.x_test))
    assert metrics["accuracy"] == pytest.approx(0.6047, abs=0.015)
    assert metrics["roc_auc_ovr"] == pytest.approx(0.818, abs=0.015)


def test_shared_split_is_the_notebooks(default_split):
    _, split = default_split
    assert len(split.x_test) == math.ceil(0.15 * 28642)  # train_test_split rounds the test up
    assert not set(split.x_test["id"]) & set(split.x_train["id"])
