from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from shared.cleaning import clean_listings
from shared.errors import ConfigError
from shared.features import ListingFeatures, location_features
from shared.modeling import (
    CandidateSpec,
    build_pipeline,
    fit_candidate,
    probabilities,
    probability_matrix,
    score_predictions,
)
from shared.schema import PRICE_CATEGORIES
from shared.splitting import Split, SplitRule
from tests.unit.listings import raw_frame

PRICES = ["$50.00", "$150.00", "$300.00", "$900.00"]


@pytest.fixture(scope="module")
def tiny_split():
    """80 cleaned listings, 20 per category, price rising with size and Manhattan."""
    rows = []
    for i in range(80):
        category = i % 4
        rows.append(
            {
                "price": PRICES[category],
                "accommodates": 1 + category * 2,
                "bedrooms": float(category),
                "neighbourhood_group_cleansed": "Manhattan" if category >= 2 else "Bronx",
                "latitude": 40.70 + 0.001 * i,
            }
        )
    clean, _ = clean_listings(raw_frame(*rows))
    return SplitRule("unit", 0.25).split(clean)


@pytest.mark.parametrize(
    ("estimator", "features", "params"),
    [
        ("random_forest", "notebook", {"n_estimators": 10, "random_state": 0, "n_jobs": 2}),
        ("hist_gradient_boosting", "all", {"max_iter": 10, "min_samples_leaf": 2}),
        ("dummy", "notebook", {}),
    ],
)
def test_candidates_map_request_fields_to_probabilities(tiny_split, estimator, features, params):
    pipeline, fit_seconds = fit_candidate(
        CandidateSpec("c", estimator, features, params), tiny_split
    )
    proba = probabilities(pipeline, tiny_split.x_test)
    assert list(proba.columns) == list(PRICE_CATEGORIES)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert fit_seconds >= 0
    model = pipeline.named_steps["model"]
    assert model.get_params().get("n_jobs") in (None, 1)  # served single-threaded


@pytest.mark.parametrize("estimator", ["lightgbm", "hist_gradient_boosting"])
def test_threads_change_speed_not_answers(tiny_split, estimator):
    pipeline, _ = fit_candidate(
        CandidateSpec(
            "c",
            estimator,
            "all",
            {"min_child_samples": 2} if estimator == "lightgbm" else {"max_iter": 10},
        ),
        tiny_split,
    )
    pd.testing.assert_frame_equal(
        probabilities(pipeline, tiny_split.x_test, threads=2),
        probabilities(pipeline, tiny_split.x_test),
    )
    assert pipeline.named_steps["model"].get_params().get("n_jobs") in (None, 1)


def _in_label_order(pipeline, proba: np.ndarray) -> np.ndarray:
    classes = list(pipeline.classes_)
    return np.column_stack(
        [
            proba[:, classes.index(c)] if c in classes else np.zeros(len(proba))
            for c in PRICE_CATEGORIES
        ]
    )


@pytest.mark.parametrize("categories", [4, 3, 2])
def test_lightgbm_s_booster_answers_as_its_scikit_learn_wrapper(tiny_split, categories):
    """The fast path (the booster, without the wrapper's per-call checks) gives exactly the
    wrapper's probabilities, in label order, also for a model that never saw some labels."""
    kept = tiny_split.y_train.isin(PRICE_CATEGORIES[:categories])
    split = replace(tiny_split, x_train=tiny_split.x_train[kept], y_train=tiny_split.y_train[kept])
    pipeline, _ = fit_candidate(
        CandidateSpec("c", "lightgbm", "all", {"min_child_samples": 2}), split
    )
    assert len(pipeline.classes_) == categories

    fast = probability_matrix(pipeline, tiny_split.x_test)

    np.testing.assert_array_equal(
        fast, _in_label_order(pipeline, pipeline.predict_proba(tiny_split.x_test))
    )
    records = tiny_split.x_test.to_dict("records")
    np.testing.assert_array_equal(probability_matrix(pipeline, records), fast)


def test_pipeline_accepts_requests_without_optional_fields(tiny_split):
    pipeline, _ = fit_candidate(
        CandidateSpec("c", "hist_gradient_boosting", "all", {"max_iter": 5}), tiny_split
    )
    request = tiny_split.x_test.drop(columns=["property_type", "kitchen", "breakfast"])
    assert len(probabilities(pipeline, request)) == len(request)


def test_ids_do_not_change_predictions(tiny_split):
    pipeline, _ = fit_candidate(
        CandidateSpec("c", "random_forest", "notebook", {"n_estimators": 5, "random_state": 0}),
        tiny_split,
    )
    other_ids = tiny_split.x_test.assign(id=range(1000, 1000 + len(tiny_split.x_test)))
    pd.testing.assert_frame_equal(
        probabilities(pipeline, tiny_split.x_test), probabilities(pipeline, other_ids)
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (CandidateSpec("c", "quantum_forest", "notebook"), "unknown estimator"),
        (CandidateSpec("c", "random_forest", "everything"), "unknown feature set"),
        (CandidateSpec("c", "random_forest", "notebook", {"trees": 5}), "candidate 'c'"),
    ],
)
def test_bad_candidate_specs_are_config_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        build_pipeline(spec)


def test_score_predictions_on_a_known_answer():
    y_true = pd.Series(["Low", "Mid", "High", "Lux"])
    proba = pd.DataFrame(np.eye(4), columns=list(PRICE_CATEGORIES))
    proba.iloc[3] = [0.0, 0.0, 0.6, 0.4]  # the Lux listing predicted High
    metrics = score_predictions(y_true, proba)
    assert metrics["accuracy"] == 0.75
    assert metrics["recall_lux"] == 0.0
    assert metrics["precision_high"] == 0.5
    assert metrics["roc_auc_ovr"] == pytest.approx((1 + 1 + 1 + 1) / 4)


def test_location_features_measure_from_midtown():
    out = location_features(np.array([40.7580, 40.8480]), np.array([-73.9855, -73.9855]))
    assert out["midtown_km"][0] == pytest.approx(0.0)
    assert out["midtown_km"][1] == pytest.approx(9.99, abs=0.01)
    assert out["midtown_dy"][1] > 0


def test_rare_property_types_share_one_code():
    x = pd.DataFrame(
        {
            "property_type": ["Loft"] * 3 + ["Castle"],
            "neighbourhood": ["Bronx"] * 4,
            "room_type": ["Hotel room"] * 4,
            "latitude": [40.7] * 4,
        }
    )
    features = ListingFeatures("all", min_frequency=2).fit(x)
    matrix = features.transform(x)
    names = list(features.get_feature_names_out())
    assert list(matrix[:, names.index("property_type")]) == [0, 0, 0, 1]  # Loft, then "other"
    assert matrix[0, names.index("neighbourhood")] == 0  # Bronx, first of the boroughs
    assert features.categorical_indices == [0, 1, 2]


def test_left_out_optional_fields_are_filled_as_training_saw_them():
    train = pd.DataFrame(
        {
            "room_type": ["Private room", "Private room", "Private room", "Entire home/apt"],
            "property_type": ["Room in loft", "Room in loft", "Castle", "Entire condo"],
            "kitchen": [1, 1, 1, 0],
            "wifi": [0, 0, 0, 0],
            "neighbourhood": ["Queens"] * 4,
        }
    )
    features = ListingFeatures("all", min_frequency=1).fit(train)
    names = list(features.get_feature_names_out())
    request = pd.DataFrame(
        {
            "room_type": ["Private room", "Entire home/apt"],
            "neighbourhood": ["Queens"] * 2,
            "kitchen": [None, 0],
        }
    )
    matrix = features.transform(request)
    assert list(matrix[:, names.index("kitchen")]) == [0.75, 0.0]  # its share; the given 0
    assert list(matrix[:, names.index("wifi")]) == [0.0, 0.0]
    codes = features.categories_["property_type"]
    assert list(matrix[:, names.index("property_type")]) == [
        codes["Room in loft"],
        codes["Entire condo"],
    ]


def test_a_blend_candidate_needs_a_split_with_prices(tiny_split):
    spec = CandidateSpec("blend", "price_blend", "all", {"folds": 2})
    without = Split(tiny_split.x_train, tiny_split.x_test, tiny_split.y_train, tiny_split.y_test)
    with pytest.raises(ConfigError, match="'blend' learns from prices"):
        fit_candidate(spec, without)


def test_every_feature_of_every_set_has_a_label_a_person_reads():
    from shared.features import FEATURE_SETS
    from shared.schema import FEATURE_LABELS

    for categorical, numeric in FEATURE_SETS.values():
        assert set(categorical) | set(numeric) <= set(FEATURE_LABELS)
