"""The committed golden models still give their recorded answers in-process (to 1e-9): feature
code or library changes that would move served predictions show up here first."""

import numpy as np
import pandas as pd
import pytest

from shared.modeling import predict_matrix
from shared.schema import PRICE_CATEGORIES
from tests.golden.fixtures import (
    KINDS,
    TOLERANCE,
    expected_answers,
    expected_frame,
    expected_prices,
    golden_listings,
    golden_model,
)


@pytest.mark.parametrize("kind", KINDS)
def test_golden_model_gives_the_recorded_answers(kind):
    proba, prices = predict_matrix(golden_model(kind), pd.DataFrame(golden_listings()))
    frame = pd.DataFrame(proba, columns=list(PRICE_CATEGORIES))
    pd.testing.assert_frame_equal(
        frame, expected_frame(kind), check_exact=False, rtol=0, atol=TOLERANCE
    )
    assert list(frame.idxmax(axis=1)) == [a["price_category"] for a in expected_answers(kind)]
    expected = expected_prices(kind)
    if expected is None:
        assert prices is None
    else:
        np.testing.assert_allclose(prices, expected, rtol=1e-12, atol=0)


def test_the_blend_estimates_prices_inside_its_interval():
    prices = expected_prices("price_blend")
    assert prices is not None
    assert ((prices[:, 1] < prices[:, 0]) & (prices[:, 0] < prices[:, 2])).all()
