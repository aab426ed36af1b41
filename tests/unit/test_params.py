import pytest

from shared.errors import ConfigError
from shared.params import load_params
from shared.settings import PROJECT_DIR


def test_default_grid_holds_the_notebook_model_exactly():
    params = load_params(PROJECT_DIR / "config" / "pipeline.yaml")
    notebook = params.train.candidate("notebook_rf")
    assert notebook.estimator == "random_forest"
    assert notebook.features == "notebook"
    assert notebook.params == {
        "n_estimators": 500,
        "class_weight": "balanced",
        "random_state": 0,
        "n_jobs": -1,
    }
    assert params.split.test_size == 0.15  # the notebook's share, held out by id
    assert any(
        c.features == "all" and c.estimator == "hist_gradient_boosting"
        for c in params.train.candidates
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train: {candidates: []}", "candidates"),
        ("train: {candidates: [{name: a, estimator: magic, features: all}]}", "unknown estimator"),
        (
            "train: {candidates: [{name: a, estimator: dummy, features: all},"
            " {name: a, estimator: dummy, features: all}]}",
            "unique",
        ),
        (
            "train: {candidates: [{name: a, estimator: dummy, features: all}]}\n"
            "select: {metric: loss}",
            "metric",
        ),
        ("train: [unclosed", "invalid pipeline parameters"),
    ],
)
def test_bad_parameters_are_config_errors(tmp_path, text, message):
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_params(path)
