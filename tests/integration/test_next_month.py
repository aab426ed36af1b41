"""Next month's dump, as Inside Airbnb publishes it (mostly the same listings, some gone, some
new, some prices changed): the gate scores the champion only on listings it never trained on,
so its comparison score is its honest one and a candidate at least as good is promoted.

The champion is trained on the shipped data less a held-back slice; the slice is listings no
model of this stack has seen before the last dump, so the champion's score on it is its honest
score. A stack of its own: the session stack's champion was trained on the whole shipped file.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.cleaning import clean_listings
from shared.datasets import DATASET_KIND, REPORT_FILE
from shared.launch import launch_run
from shared.modeling import probabilities, score_predictions
from shared.params import SelectParams
from shared.queues import connect
from shared.registry import Registry
from shared.schema import TARGET
from shared.settings import PROJECT_DIR
from shared.storage import file_md5
from shared.tracking import Tracker
from tests.integration.conftest import FAST_GRID, Stack, running_stack, wait_for_run

pytestmark = pytest.mark.integration

HELD_BACK = 0.15  # of the shipped listings: next month's new ones
METRIC = "roc_auc_ovr"
TOLERANCE = SelectParams().champion_tolerance  # the stack's pipeline.yaml leaves the default


@pytest.fixture(scope="module")
def month_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("next-month")) as running:
        running.write_grid(FAST_GRID)
        yield running


@pytest.fixture(scope="module")
def shipped() -> pd.DataFrame:
    return pd.read_csv(PROJECT_DIR / "data" / "raw" / "listings.csv.gz", dtype=str)


@pytest.fixture(scope="module")
def held_back(shipped: pd.DataFrame) -> pd.Series:
    """True for the listings of the slice held back from this month's dump."""
    return pd.Series(np.random.default_rng(7).random(len(shipped)) < HELD_BACK, shipped.index)


def retrain(stack: Stack, frame: pd.DataFrame, path: Path) -> dict:
    frame.to_csv(path, index=False)
    return run_on(stack, path)


def run_on(stack: Stack, path: Path) -> dict:
    run_id = launch_run(connect(stack.settings.redis_url), stack.settings, str(path))
    run = wait_for_run(stack, run_id)
    assert run["state"] == "finished", run
    return run


def honest_score(stack: Stack, version: str, listings: pd.DataFrame) -> float:
    """The version's score on raw listings it never trained on."""
    clean, _ = clean_listings(listings)
    model = Registry(stack.settings).load_version(version)
    return score_predictions(clean[TARGET], probabilities(model, clean))[METRIC]


def removed(frame: pd.DataFrame, _: pd.Series) -> pd.DataFrame:
    """2% of the listings delisted."""
    return frame.sample(frac=0.98, random_state=1)


def prices_moved(frame: pd.DataFrame, _: pd.Series) -> pd.DataFrame:
    """10% of the prices moved by up to 10%, up or down."""
    rng = np.random.default_rng(2)
    price = pd.to_numeric(frame["price"].str.replace(r"[$,]", "", regex=True), errors="coerce")
    moved = rng.random(len(frame)) < 0.10
    factor = np.where(moved, 1 + rng.uniform(-0.10, 0.10, len(frame)), 1.0)
    return frame.assign(price=[f"${value:,.2f}" for value in price * factor])


def added(_: pd.DataFrame, whole: pd.Series) -> pd.DataFrame:
    """The held-back listings listed too (the whole shipped file)."""
    return whole


# Each changes the month's dump; the champion may change between them, never by training on
# the held-back slice before the last.
NEXT_MONTHS: list[tuple[str, Callable]] = [
    ("removed", removed),
    ("prices-moved", prices_moved),
    ("added", added),
]


def test_next_months_dumps_compare_the_champion_on_listings_it_never_saw_and_promote(
    month_stack: Stack, shipped: pd.DataFrame, held_back: pd.Series, tmp_path: Path
):
    stack = month_stack
    this_month = shipped[~held_back]
    first = retrain(stack, this_month, tmp_path / "this-month.csv.gz")["stages"]["select"]
    assert first["promoted"] is True, first

    promoted = 0
    for name, next_month in NEXT_MONTHS:
        champion = str(Registry(stack.settings).champion().version)
        # prices_moved moves the held-back listings' prices too: the champion's honest score
        # is on next month's data, with its prices.
        whole = next_month(shipped, shipped) if name == "prices-moved" else shipped
        dump = next_month(whole[~held_back], shipped)
        honest = honest_score(stack, champion, whole[held_back])

        run = retrain(stack, dump, tmp_path / f"{name}.csv.gz")
        select = run["stages"]["select"]

        assert select["champion_version"] == champion == select["compared_version"], select
        # Every test listing of the new dump is one the champion never trained on.
        tested = round(run["stages"]["prep"]["rows_out"] * 0.15)
        assert select["compared_rows"] == pytest.approx(tested, rel=0.1), (name, select)
        assert select["champion_score"] == pytest.approx(honest, abs=0.01), (name, select)
        # At least as good, within the noise of ~4,000 listings (select.champion_tolerance):
        # promoted, since every dump clears the floor and the margin.
        shortfall = select["champion_score"] - select["compared_candidate_score"]
        assert select["promoted"] is (shortfall <= TOLERANCE), (name, select)
        promoted += select["promoted"]
    assert promoted >= 2  # next month's data replaces the champion, month after month


def test_a_dataset_planted_in_mlflow_under_the_dumps_md5_is_never_used(
    month_stack: Stack, shipped: pd.DataFrame, tmp_path: Path
):
    # Whoever reaches MLflow logs a finished run tagged as the dataset of a dump's md5, its
    # Parquet doctored (every listing Lux), before the dump is ever retrained on.
    stack = month_stack
    dump = tmp_path / "planted.csv.gz"
    shipped.sample(frac=0.97, random_state=5).to_csv(dump, index=False)
    honest, _ = clean_listings(pd.read_csv(dump, dtype=str))
    doctored = honest.assign(**{TARGET: "Lux"})
    data_hash = file_md5(dump)
    planted_file = tmp_path / f"{data_hash}.parquet"
    doctored.to_parquet(planted_file)
    tracker = Tracker(stack.settings)
    with tracker.complete_run(DATASET_KIND, "dataset-planted", {"data_hash": data_hash}) as planted:
        tracker.client.log_artifact(planted, str(planted_file))
        tracker.log_dict(planted, {"rows_in": 1, "rows_out": 1, "dropped": {}}, REPORT_FILE)

    run = run_on(stack, dump)

    prep, validate = run["stages"]["prep"], run["stages"]["validate"]
    assert prep["data_hash"] == data_hash
    assert prep["dataset_run_id"] != planted
    assert prep["dataset_reused"] is False  # the run says it cleaned afresh
    assert prep["rows_out"] == len(honest)
    assert validate["category_shares"]["Lux"] == pytest.approx(
        (honest[TARGET] == "Lux").mean(), abs=1e-6
    )
    # What prep logged itself is reused by the next run on the same dump.
    again = run_on(stack, dump)["stages"]["prep"]
    assert again["dataset_reused"] is True
    assert again["dataset_run_id"] == prep["dataset_run_id"]
