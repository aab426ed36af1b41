"""The champion's trees compiled by TL2cgen with the real gcc: the same answers as LightGBM's to
the last bit, refused when they are not, and served by the gateway once proven."""

import json
import logging
import urllib.request

import lightgbm
import numpy as np
import pytest
import requests
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline

from bench.measure import request_listings
from services.stack import processes
from shared import compiled_trees
from shared.compiled_trees import compile_pipeline, difference, proven_compiled, proving_sample
from shared.modeling import predict_matrix
from shared.registry import Registry
from tests.golden.fixtures import FOLDER as GOLDEN
from tests.golden.fixtures import KINDS, golden_listings, golden_model
from tests.integration.conftest import Stack


@pytest.mark.parametrize("kind", KINDS)
def test_compiled_trees_answer_exactly_as_lightgbm(kind: str):
    plain = golden_model(kind)
    compiled = proven_compiled(plain)
    assert compiled is not None
    for listings in (proving_sample(), golden_listings(), request_listings(2_000)):
        assert difference(plain, compiled, listings) == 0.0
    # More threads (a big batch on every core) answer the same.
    proba, prices = predict_matrix(compiled, proving_sample(), threads=2)
    assert np.array_equal(proba, predict_matrix(plain, proving_sample())[0])


def test_trees_treelite_4_1_refused_compile_and_answer_exactly(tmp_path):
    """One iteration of a default-grid lgbm_all trained on the shipped data, whose categorical
    splits treelite 4.1.2 (tl2cgen's own version) refused ("Node key cannot be negative"),
    with missing values, in a big batch and row by row."""
    booster = lightgbm.Booster(model_file=GOLDEN / "lgbm_all_iteration_74.txt")
    x = np.column_stack(
        [np.random.default_rng(0).integers(0, 25, 1_000)] * 3
        + [np.random.default_rng(i).uniform(-5, 50, 1_000) for i in range(17)]
    )
    x[::7, 5] = np.nan  # missing values, as a left-out optional field may give
    x[::11, 0] = np.nan
    compiled = compiled_trees.CompiledBooster(booster, tmp_path)
    assert np.array_equal(compiled.predict(x), booster.predict(x))
    # A few rows go through the library's own function, one by one: the same answers.
    for rows in (x[:1], x[7:8], x[: compiled_trees.ROW_BY_ROW]):
        assert np.array_equal(compiled.predict(rows), booster.predict(rows))
    assert compiled_trees.ROW_BY_ROW > 1


def test_compiled_trees_that_answer_otherwise_are_not_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    predict = compiled_trees.CompiledBooster.predict

    def off_by_a_little(self, x, num_threads=1):
        return predict(self, x, num_threads) + 1e-7

    monkeypatch.setattr(compiled_trees.CompiledBooster, "predict", off_by_a_little)
    with caplog.at_level(logging.WARNING):
        assert proven_compiled(golden_model()) is None
    assert "differ from LightGBM's" in caplog.text


def test_a_model_without_lightgbm_trees_is_left_as_it_is():
    assert compile_pipeline(Pipeline([("model", DummyClassifier())])) is None


def test_the_gateway_predicts_with_compiled_trees_once_proven(
    stack: Stack, gateway: str, served_champion: str
):
    def every_process_compiled() -> bool:
        with urllib.request.urlopen(f"{gateway}/metrics", timeout=5) as reply:
            return "\ngateway_compiled_trees 1.0\n" in reply.read().decode()

    processes.wait_until(every_process_compiled, 120, "the champion's trees compiled")
    with urllib.request.urlopen(f"{gateway}/model", timeout=5) as reply:
        assert json.load(reply)["compiled_trees"] is True
    listings = request_listings(200)
    answered = requests.post(f"{gateway}/predict", json=listings, timeout=30).json()
    plain = Registry(stack.settings).load_version(served_champion)
    proba, _ = predict_matrix(plain, listings)
    served = [list(p["probabilities"].values()) for p in answered["predictions"]]
    assert np.array_equal(np.array(served), proba)
