"""Behavioural checks of the trained champion: what a pricing model must never get wrong."""

import numpy as np
import pandas as pd
import pytest

from shared.modeling import probabilities
from shared.schema import PRICE_CATEGORIES

pytestmark = pytest.mark.model
RANKS = np.arange(len(PRICE_CATEGORIES))  # Low=0 .. Lux=3


def expected_rank(pipeline, rows: pd.DataFrame) -> np.ndarray:
    """Expected price category (0..3) of each row."""
    return probabilities(pipeline, rows).to_numpy() @ RANKS


@pytest.fixture(scope="module")
def sample(default_split) -> pd.DataFrame:
    return default_split.x_test.sample(n=500, random_state=0)


def test_probabilities_sum_to_one(champion, sample):
    _, pipeline, _ = champion
    np.testing.assert_allclose(probabilities(pipeline, sample).sum(axis=1), 1.0, atol=1e-9)


def test_changing_id_never_changes_the_answer(champion, sample):
    _, pipeline, _ = champion
    other = sample.assign(id=np.arange(len(sample)) + 10_000_000)
    pd.testing.assert_frame_equal(probabilities(pipeline, sample), probabilities(pipeline, other))


def test_the_same_flat_is_not_cheaper_in_manhattan_than_in_the_bronx(champion, sample):
    _, pipeline, _ = champion
    flats = sample[sample["room_type"] == "Entire home/apt"]
    manhattan = flats.assign(neighbourhood="Manhattan", latitude=40.7614, longitude=-73.9776)
    bronx = flats.assign(neighbourhood="Bronx", latitude=40.8448, longitude=-73.8648)
    dearer = expected_rank(pipeline, manhattan) - expected_rank(pipeline, bronx)
    assert (dearer > 0).all(), flats[dearer <= 0]  # every flat, not on average


def test_more_room_never_lowers_an_entire_homes_expected_category(champion, sample):
    _, pipeline, _ = champion
    homes = sample[sample["room_type"] == "Entire home/apt"]
    bigger = homes.assign(bedrooms=homes["bedrooms"] + 2, accommodates=homes["accommodates"] + 4)
    gained = expected_rank(pipeline, bigger) - expected_rank(pipeline, homes)
    assert (gained >= 0).all(), homes[gained < 0]  # every home, not on average
