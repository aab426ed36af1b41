"""The promotion gate on real data gone wrong: meaningless prices never reach the champion,
retraining on what made the champion registers nothing new, and a better ROC AUC bought with
Lux's recall is refused.

Shuffled prices keep every column's values as they were, so they pass validate and only the
gate can stop them; prices that change the category mix are stopped earlier, at validate
(tests/reliability/test_bad_dumps.py)."""

from collections.abc import Iterator

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from shared.launch import launch_run
from shared.queues import connect
from shared.schema import PRICE_CATEGORIES
from shared.settings import PROJECT_DIR
from tests.integration.conftest import (
    FAST_GRID,
    Stack,
    promotable_grid,
    running_stack,
    wait_for_run,
)

pytestmark = pytest.mark.integration


def retrain(stack: Stack, data_path: str) -> dict:
    run_id = launch_run(connect(stack.settings.redis_url), stack.settings, data_path)
    return wait_for_run(stack, run_id)


def champion(stack: Stack) -> str:
    client = MlflowClient(stack.settings.mlflow_tracking_uri)
    name, alias = stack.settings.model_name, stack.settings.champion_alias
    return str(client.get_model_version_by_alias(name, alias).version)


@pytest.fixture(scope="module")
def shipped_listings() -> pd.DataFrame:
    return pd.read_csv(PROJECT_DIR / "data" / "raw" / "listings.csv.gz", dtype=str)


def shuffled_prices(listings: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The same file, columns and price distribution; each price moved to another listing."""
    prices = listings["price"].sample(frac=1, random_state=seed).to_numpy()
    return listings.assign(price=prices)


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(lambda frame: shuffled_prices(frame, 0), id="shuffled-0"),
        pytest.param(lambda frame: shuffled_prices(frame, 1), id="shuffled-1"),
        pytest.param(lambda frame: shuffled_prices(frame, 2), id="shuffled-2"),
    ],
)
def test_meaningless_prices_are_never_promoted_and_the_run_says_why(
    stack: Stack, served_champion: str, shipped_listings, garbage, tmp_path
):
    stack.write_grid(FAST_GRID)
    path = tmp_path / "listings.csv.gz"
    garbage(shipped_listings).to_csv(path, index=False)
    before = champion(stack)

    run = retrain(stack, str(path))

    assert run["state"] == "finished", run
    select = run["stages"]["select"]
    assert select["promoted"] is False
    assert select["decision"] == "not_promoted"
    # Near chance: under the floor, and far below what the champion scored when promoted.
    assert {"min_score", "max_drop"} <= set(select["failed_conditions"])
    assert f"{select['score']:.4f} is below the floor 0.7500" in select["reason"]
    assert champion(stack) == before
    version = MlflowClient(stack.settings.mlflow_tracking_uri).get_model_version(
        stack.settings.model_name, select["version"]
    )
    assert version.tags["decision"] == "not_promoted"
    assert version.tags["reason"] == select["reason"]


def test_the_same_data_code_and_parameters_register_nothing_new(
    stack: Stack, served_champion: str, shipped_data: str
):
    client = MlflowClient(stack.settings.mlflow_tracking_uri)
    name = stack.settings.model_name
    stack.write_grid(promotable_grid())
    first = retrain(stack, shipped_data)
    assert first["state"] == "finished", first
    assert first["stages"]["select"]["decision"] == "promoted", first["stages"]["select"]
    versions = len(client.search_model_versions(f"name = '{name}'"))

    again = retrain(stack, shipped_data)  # the grid written above, unchanged

    assert again["state"] == "finished", again
    select = again["stages"]["select"]
    assert select["decision"] == "unchanged"
    assert select["promoted"] is False
    assert select["version"] is None
    assert f"identical to champion v{first['stages']['select']['version']}" in select["reason"]
    assert len(client.search_model_versions(f"name = '{name}'")) == versions
    assert champion(stack) == first["stages"]["select"]["version"]
    # The run is still complete: explained and archived, every candidate's model logged.
    assert set(again["stages"]["archive"]["models"]) == {c["name"] for c in FAST_GRID}


def lightgbm(class_weight: dict | None) -> list[dict]:
    params = {"n_estimators": 60, "random_state": 0, "verbose": -1}
    if class_weight:
        params["class_weight"] = class_weight
    return [{"name": "lgbm", "estimator": "lightgbm", "features": "all", "params": params}]


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose first champion is this module's: the session's has another history."""
    with running_stack(tmp_path_factory.mktemp("gate")) as running:
        yield running


def test_a_better_roc_auc_that_gives_up_lux_is_refused_naming_both_recalls(
    own_stack: Stack, shipped_data: str
):
    stack = own_stack
    gate = {"max_recall_drop": 0.05, "max_calibration_error_rise": 0.01}
    # Lux weighted 3x: ROC AUC 0.8748 and Lux recall 0.65 on the default split.
    stack.write_grid(lightgbm({"Low": 1, "Mid": 1, "High": 1, "Lux": 3}), gate)
    first = retrain(stack, shipped_data)["stages"]["select"]
    assert first["promoted"] is True, first
    # Unweighted: ROC AUC 0.8764, but Lux recall 0.41.
    stack.write_grid(lightgbm(None), gate)

    run = retrain(stack, shipped_data)

    assert run["state"] == "finished", run
    select = run["stages"]["select"]
    assert select["promoted"] is False, select
    assert select["failed_conditions"] == ["recall_lux"]
    assert "Lux recall" in select["reason"] and "(select.max_recall_drop)" in select["reason"]
    checks = {check["condition"]: check for check in select["conditions"]}
    recalls = {f"recall_{category.lower()}" for category in PRICE_CATEGORIES}
    assert set(checks) == {"min_score", "champion_now", *recalls, "calibration_error", "max_drop"}
    lux = checks["recall_lux"]
    # Both numbers: the candidate's on the test split (every test listing is one the champion
    # never trained on), the champion's as the first run scored it.
    assert lux["value"] == pytest.approx(select["candidates"]["lgbm"]["recall_lux"], abs=1e-6)
    assert lux["champion"] == pytest.approx(first["candidates"]["lgbm"]["recall_lux"], abs=1e-6)
    assert lux["bound"] == pytest.approx(lux["champion"] - 0.05)
    assert lux["passed"] is False
    assert checks["champion_now"]["passed"] is True  # the better ROC AUC alone would promote
    assert champion(stack) == first["version"]
