"""Dumps wrong as a whole clean without complaint, so they are stopped at validate, before
anything trains: the run fails there with every broken expectation named, in its status and in
an MLflow report, and the champion keeps serving."""

import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.tracking import MlflowClient

from shared.launch import launch_run
from shared.queues import connect
from shared.settings import PROJECT_DIR
from shared.tracking import Tracker
from tests.integration.conftest import Stack, wait_for_run
from tests.reliability.faults import SHIPPED_DATA, champion_version

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def shipped_listings() -> pd.DataFrame:
    return pd.read_csv(PROJECT_DIR / SHIPPED_DATA, dtype=str)


def random_prices(listings: pd.DataFrame) -> pd.DataFrame:
    """Prices drawn at random over the categories' range, unrelated to the listings."""
    drawn = np.random.default_rng(3).uniform(11, 1000, len(listings))
    return listings.assign(price=[f"${value:,.2f}" for value in drawn])


def prices_in_another_unit(listings: pd.DataFrame) -> pd.DataFrame:
    """Every price ten times what it was (another currency, or cents read as dimes)."""
    dollars = listings["price"].str.replace(r"[$,]", "", regex=True).astype(float)
    return listings.assign(price=[f"${value * 10:,.2f}" for value in dollars])


def half_with_columns_swapped(listings: pd.DataFrame) -> pd.DataFrame:
    """Two exports glued together, the second with price and accommodates in each other's
    place: cleaning drops most of those rows (a price of 4 dollars) and keeps the rest."""
    swapped = listings.copy()
    half = swapped.index >= len(swapped) // 2
    swapped.loc[half, ["price", "accommodates"]] = swapped.loc[
        half, ["accommodates", "price"]
    ].to_numpy()
    return swapped


def without_lux(listings: pd.DataFrame) -> pd.DataFrame:
    """Every listing over $400 gone (an export cut at a price): 4.7% of the rows, under the
    category-shift limit, but no model can learn or be scored on a category it never sees."""
    dollars = listings["price"].str.replace(r"[$,]", "", regex=True).astype(float)
    return listings[dollars <= 400]


@pytest.mark.parametrize(
    ("make_dump", "named"),
    [
        pytest.param(random_prices, "share of Low is 8.3%, was 40.3%", id="random-prices"),
        pytest.param(prices_in_another_unit, "share of Lux is 93.0%, was 4.7%", id="unit"),
        pytest.param(half_with_columns_swapped, "dropped 50.0% of 28656 rows", id="swapped"),
        pytest.param(without_lux, "no Lux listing: every category must be present", id="no-lux"),
    ],
)
def test_a_bad_dump_is_stopped_at_validate_and_the_champion_keeps_serving(
    isolated_stack: Stack, fault_gateway: str, shipped_listings, make_dump, named, tmp_path
):
    stack = isolated_stack
    client = MlflowClient(stack.settings.mlflow_tracking_uri)
    versions_before = len(client.search_model_versions(f"name = '{stack.settings.model_name}'"))
    serving = champion_version(stack)  # trained on the shipped dump, which passed validate
    path = tmp_path / "listings.csv.gz"
    make_dump(shipped_listings).to_csv(path, index=False)

    run_id = launch_run(connect(stack.settings.redis_url), stack.settings, str(path))
    wait_for_run(stack, run_id)
    run = requests.get(f"{fault_gateway}/runs/{run_id}", timeout=10).json()

    assert run["state"] == "failed"
    assert run["stages"]["prep"]["state"] == "finished"  # it cleaned without complaint
    validate = run["stages"]["validate"]
    assert validate["state"] == "failed"
    assert validate["attempts"] == 1  # bad data is not retried
    assert validate["error"].startswith("data failed validation: ")
    assert named in validate["error"]
    assert run["candidates"] == {}  # nothing trained
    assert run["stages"]["train"]["state"] == "pending"
    assert run["stages"]["select"]["state"] == "pending"
    # The report a person reads, on the run's failed data-validation run.
    checked = client.search_runs(
        [client.get_experiment_by_name(stack.settings.experiment_name).experiment_id],
        filter_string=f"tags.pipeline_run_id = '{run_id}' and tags.kind = 'data-validation'",
    )
    assert [r.info.status for r in checked] == ["FAILED"]
    report = Tracker(stack.settings).load_dict(checked[0].info.run_id, "validation/report.json")
    assert report["passed"] is False
    assert any(named in failure for failure in report["failures"])
    assert {a.path for a in client.list_artifacts(checked[0].info.run_id, "validation")} == {
        "validation/report.json",
        "validation/report.md",
    }
    # The champion is untouched and still answers.
    assert champion_version(stack) == serving
    assert len(client.search_model_versions(f"name = '{stack.settings.model_name}'")) == (
        versions_before
    )
    health = requests.get(f"{fault_gateway}/health/ready", timeout=10).json()
    assert health["model_version"] == serving
